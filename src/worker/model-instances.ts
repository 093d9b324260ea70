import { Worker } from 'node:worker_threads';
import { errors, fromWire, type GantryError } from '../errors.js';
import type { ModelSignature } from '../protocol/signature.js';
import type { Tensor } from '../protocol/tensor.js';
import { decodeJsonData } from '../protocol/json-tensor-codec.js';
import type { WarmupReport } from '../registry/warmup-report.js';
import type { WarmupSample } from '../registry/warmup-samples.js';
import type {
  BackgroundScheduling,
  InstanceRequest,
  InstanceRequestBody,
  InstanceResponse,
  RunTiming,
  SessionSettings,
  ThreadTensor,
} from './instance-messages.js';
import type { CurrentWork, RunRequester, RunWatchdog, WatchedThread } from './run-watchdog.js';

const threadScript = new URL('./instance-thread.js', import.meta.url);

/**
 * Threads that were told to end but have not (inside a native call that never returns). While there are any,
 * the process cannot exit normally: Node's exit joins every worker thread first (measured: process.exit() hangs).
 */
const unendedThreads = new Set<object>();

/** True while some instance thread was given up or told to end but is still running (see worker-exit.ts). */
export function hasUnendedThreads(): boolean {
  return unendedThreads.size > 0;
}

interface Pending extends CurrentWork {
  resolve: (response: InstanceResponse) => void;
  reject: (error: Error) => void;
}

/**
 * One worker thread holding one onnxruntime session, with request/response matching by id. It tells the
 * watchdog what it is doing: the oldest unanswered message and when it was sent.
 */
class InstanceThread implements WatchedThread {
  private readonly thread: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private exitError: Error | undefined;
  private readonly unwatch: () => void;
  private reported = false;
  /** Set once the watchdog gave up on the thread (stuck in a native call): it is never sent work again. */
  retired = false;
  /** True once the thread has really ended (a stuck thread never does). */
  exited = false;

  constructor(
    readonly label: string,
    watchdog: RunWatchdog | undefined,
    private readonly onExit: (error: Error) => void,
  ) {
    this.thread = new Worker(threadScript);
    this.unwatch = watchdog?.watch(this) ?? (() => undefined);
    this.thread.on('message', (response: InstanceResponse) => {
      const waiter = this.pending.get(response.id);
      if (waiter === undefined) return;
      this.pending.delete(response.id);
      waiter.resolve(response);
    });
    this.thread.on('error', (error) => this.stop(error));
    this.thread.on('exit', (code) => {
      this.exited = true;
      unendedThreads.delete(this);
      this.stop(new Error(`instance thread exited with code ${code}`));
    });
  }

  /** Fails everything waiting on the thread (once) and reports the thread as gone. */
  private stop(error: Error): void {
    this.exitError ??= error;
    this.unwatch();
    this.rejectPending(error);
    if (this.reported) return;
    this.reported = true;
    this.onExit(error);
  }

  private rejectPending(error: Error): void {
    for (const waiter of this.pending.values()) waiter.reject(error);
    this.pending.clear();
  }

  get inFlight(): number {
    return this.pending.size;
  }

  currentWork(): CurrentWork | undefined {
    for (const waiter of this.pending.values()) return waiter;
    return undefined;
  }

  abandon(error: GantryError): void {
    this.retired = true;
    unendedThreads.add(this);
    this.stop(error);
    // Ends the thread if the native call ever returns; awaiting it would wait forever while it does not.
    void this.thread.terminate();
  }

  send(request: InstanceRequestBody, transfer: ArrayBuffer[], work: CurrentWork): Promise<InstanceResponse> {
    if (this.exitError !== undefined) return Promise.reject(this.exitError);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, kind: work.kind, startedAt: work.startedAt, requesters: work.requesters });
      this.thread.postMessage({ ...request, id } as InstanceRequest, transfer);
    });
  }

  /**
   * Ends the thread: what is still waiting is answered with `error`. Resolves once the thread has exited, or
   * after `graceMs` if it has not (it is inside a native call): never waits longer.
   */
  async terminate(error: Error, graceMs: number): Promise<void> {
    this.exitError ??= error;
    this.unwatch();
    this.rejectPending(error);
    const exited = this.thread.terminate().then(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
      timer.unref();
    });
    await Promise.race([exited, gaveUp]);
    clearTimeout(timer);
    if (!this.exited) unendedThreads.add(this);
  }
}

export interface LoadedModel {
  signature: ModelSignature;
  /** For a background session: how its thread could be scheduled (instance-thread.ts). */
  backgroundScheduling?: BackgroundScheduling;
  /** The intra-op threads each session runs with (absent: not set, onnxruntime's default). */
  intraOpThreads?: number;
  /** With automatic threads: the first instance's median zero-filled run (ms) the count was chosen from. */
  measuredRunMs?: number;
}

export interface RunOutput {
  outputs: Tensor[];
  timing: RunTiming;
}

/**
 * The instances (sessions in threads) of one model version in this worker process, like Triton's
 * instance_group. Requests go to the least busy instance.
 */
export class ModelInstances {
  private readonly threads: InstanceThread[] = [];
  private broken: Error | undefined;
  private closed = false;

  private constructor() {}

  /**
   * Starts `count` threads and loads the model in each (the warm-up is `warm`'s). With a watchdog, the loads
   * must end within its load deadline, counted from this call.
   * @param label names the model in the watchdog's logs (its sha256).
   * @throws GantryError(INVALID_MODEL) when onnxruntime cannot load the file or the load deadline passed.
   */
  static async load(
    modelPath: string,
    count: number,
    settings: SessionSettings,
    options: { watchdog?: RunWatchdog; label?: string } = {},
  ): Promise<{ instances: ModelInstances; loaded: LoadedModel }> {
    const instances = new ModelInstances();
    const work: CurrentWork = { kind: 'load', startedAt: performance.now(), requesters: [] };
    try {
      let loaded: LoadedModel | undefined;
      let instanceSettings = settings;
      for (let index = 0; index < count; index++) {
        const thread = new InstanceThread(options.label ?? modelPath, options.watchdog, (error) => {
          instances.broken = error;
        });
        instances.threads.push(thread);
        const response = await thread.send({ type: 'load', modelPath, settings: instanceSettings }, [], work);
        if (!response.ok) throw fromWire(response.error);
        if (response.type !== 'load') throw new Error('unexpected response to load');
        loaded ??= {
          signature: response.signature,
          ...(response.backgroundScheduling === undefined ? {} : { backgroundScheduling: response.backgroundScheduling }),
          ...(response.intraOpThreads === undefined ? {} : { intraOpThreads: response.intraOpThreads }),
          ...(response.measuredRunMs === undefined ? {} : { measuredRunMs: response.measuredRunMs }),
        };
        // The first instance's measured choice holds for the others: the instances of a model run alike, and a
        // choice near the threshold could otherwise differ between them by noise.
        if (settings.autoIntraOpThreads === true && response.intraOpThreads !== undefined) {
          instanceSettings = { ...settings, intraOpThreads: response.intraOpThreads, autoIntraOpThreads: false };
        }
      }
      return { instances, loaded: loaded! };
    } catch (error) {
      await instances.close();
      throw error;
    }
  }

  /**
   * Runs the warm-up on every instance, not only one: each session pays its first-run costs (allocations, kernel
   * choices) before it serves, and a sample that fails on any instance is known before any serves. Without a
   * sample, zero-filled inputs run. Returns the first report that is not ok, or ok. With a watchdog, each
   * instance's warm-up must end within the load deadline.
   */
  async warm(sample?: WarmupSample): Promise<WarmupReport> {
    let inputs: ThreadTensor[] | undefined;
    if (sample !== undefined) {
      try {
        inputs = sample.inputs.map((input) => {
          const bytes = decodeJsonData(input.name, input.datatype, input.shape, input.data);
          return {
            name: input.name,
            datatype: input.datatype,
            shape: input.shape,
            buffer: bytes.buffer as ArrayBuffer,
            byteOffset: bytes.byteOffset,
            byteLength: bytes.byteLength,
          };
        });
      } catch (error) {
        return { status: 'failed', reason: (error instanceof Error ? error.message : String(error)).slice(0, 500) };
      }
    }
    const work: CurrentWork = { kind: 'load', startedAt: performance.now(), requesters: [] };
    // Each thread gets its own copy of the sample (nothing is transferred), so they run side by side.
    const reports = await Promise.all(
      this.threads.map(async (thread, index) => {
        const response = await thread.send(inputs === undefined ? { type: 'warmup' } : { type: 'warmup', inputs }, [], work);
        if (!response.ok) throw fromWire(response.error);
        if (response.type !== 'warmup') throw errors.internal('unexpected response to warmup');
        return response.report.status === 'ok' || this.threads.length === 1
          ? response.report
          : { ...response.report, reason: `instance ${index + 1} of ${this.threads.length}: ${response.report.reason ?? ''}` };
      }),
    );
    return reports.find((report) => report.status !== 'ok') ?? { status: 'ok' };
  }

  /** True when some instance has nothing to do, so a batch sent now starts at once. */
  hasIdleInstance(): boolean {
    return this.threads.some((thread) => thread.inFlight === 0 && !thread.retired);
  }

  /** True when no instance is running anything (the model can be unloaded without cutting a run short). */
  get idle(): boolean {
    return this.threads.every((thread) => thread.inFlight === 0);
  }

  get count(): number {
    return this.threads.length;
  }

  /**
   * False once a thread died (a native crash, say) or was given up by the watchdog: the cache then drops and
   * reloads the model.
   */
  get healthy(): boolean {
    return this.broken === undefined && !this.closed;
  }

  /**
   * Runs one inference. The input bytes cross to the instance thread as one transferred ArrayBuffer. With
   * `inputsOwned` the caller hands over the buffer its inputs view (a freshly concatenated batch): when all
   * inputs lie in one buffer at 8-byte-aligned offsets, that buffer is transferred as it is and must not be used
   * by the caller afterwards. Otherwise the bytes are copied once into a fresh buffer, so a pooled or shared
   * source (a job payload is a view into ioredis's reply pool) is never detached. `requesters` name the model
   * versions whose requests are in the run, for the watchdog's strike if it has to stop the run.
   */
  async run(
    inputs: readonly Tensor[],
    outputNames: string[],
    options: { inputsOwned?: boolean; requesters?: readonly RunRequester[] } = {},
  ): Promise<RunOutput> {
    let thread: InstanceThread | undefined;
    for (const candidate of this.threads) {
      if (!candidate.retired && (thread === undefined || candidate.inFlight < thread.inFlight)) thread = candidate;
    }
    if (thread === undefined || this.closed) throw errors.modelUnloaded();
    const handOver = (options.inputsOwned === true ? inPlace(inputs) : undefined) ?? copiedTogether(inputs);
    const work: CurrentWork = { kind: 'run', startedAt: performance.now(), requesters: options.requesters ?? noRequesters };
    const response = await thread.send({ type: 'run', inputs: handOver.inputs, outputNames }, [handOver.buffer], work);
    if (!response.ok) throw fromWire(response.error);
    if (response.type !== 'run') throw errors.internal('unexpected response to run');
    return {
      outputs: response.outputs.map((output) => ({
        name: output.name,
        datatype: output.datatype,
        shape: output.shape,
        data: new Uint8Array(output.buffer, output.byteOffset, output.byteLength),
      })),
      timing: response.timing,
    };
  }

  /**
   * Unloads: runs in progress get up to `graceMs` to finish, then whatever is still waiting is answered with an
   * UNAVAILABLE error and the threads are ended. Returns `stuck: true` when a thread is still inside a native
   * call after the grace: only ending the process stops it (the caller restarts the worker).
   * @param graceMs how long runs in progress may take to finish; default 500 ms.
   */
  async close(graceMs = 500): Promise<{ stuck: boolean }> {
    this.closed = true;
    const until = performance.now() + graceMs;
    while (!this.idle && performance.now() < until) await new Promise((resolve) => setTimeout(resolve, 10));
    const unloaded = errors.modelUnloaded();
    const busy = this.threads.filter((thread) => thread.inFlight > 0 || thread.retired);
    await Promise.all(this.threads.map((thread) => thread.terminate(unloaded, busy.includes(thread) ? 100 : graceMs)));
    return { stuck: this.threads.some((thread) => !thread.exited) };
  }
}

const noRequesters: readonly RunRequester[] = [];

function alignTo8(length: number): number {
  return Math.ceil(length / 8) * 8;
}

interface ThreadInputs {
  buffer: ArrayBuffer;
  inputs: ThreadTensor[];
}

/** The inputs as they lie, when they all view one ArrayBuffer at offsets every typed array can start at. */
function inPlace(inputs: readonly Tensor[]): ThreadInputs | undefined {
  const buffer = inputs[0]?.data.buffer;
  if (!(buffer instanceof ArrayBuffer)) return undefined;
  if (!inputs.every((input) => input.data.buffer === buffer && input.data.byteOffset % 8 === 0)) return undefined;
  return {
    buffer,
    inputs: inputs.map((input) => ({
      name: input.name,
      datatype: input.datatype,
      shape: input.shape,
      buffer,
      byteOffset: input.data.byteOffset,
      byteLength: input.data.byteLength,
    })),
  };
}

/** The inputs copied into one fresh buffer, each at an 8-byte-aligned offset. */
function copiedTogether(inputs: readonly Tensor[]): ThreadInputs {
  let total = 0;
  for (const input of inputs) total += alignTo8(input.data.byteLength);
  const buffer = new ArrayBuffer(total);
  const bytes = new Uint8Array(buffer);
  const threadInputs: ThreadTensor[] = [];
  let offset = 0;
  for (const input of inputs) {
    bytes.set(input.data, offset);
    threadInputs.push({ name: input.name, datatype: input.datatype, shape: input.shape, buffer, byteOffset: offset, byteLength: input.data.byteLength });
    offset += alignTo8(input.data.byteLength);
  }
  return { buffer, inputs: threadInputs };
}
