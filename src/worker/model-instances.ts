import { Worker } from 'node:worker_threads';
import { errors, fromWire } from '../errors.js';
import type { ModelSignature } from '../protocol/signature.js';
import type { Tensor } from '../protocol/tensor.js';
import type { InstanceRequest, InstanceRequestBody, InstanceResponse, RunTiming, SessionSettings, ThreadTensor } from './instance-messages.js';

const threadScript = new URL('./instance-thread.js', import.meta.url);

interface Pending {
  resolve: (response: InstanceResponse) => void;
  reject: (error: Error) => void;
}

/** One worker thread holding one onnxruntime session, with request/response matching by id. */
class InstanceThread {
  private readonly thread: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private exitError: Error | undefined;

  constructor(private readonly onExit: (error: Error) => void) {
    this.thread = new Worker(threadScript);
    this.thread.on('message', (response: InstanceResponse) => {
      const waiter = this.pending.get(response.id);
      if (waiter === undefined) return;
      this.pending.delete(response.id);
      waiter.resolve(response);
    });
    const stop = (error: Error) => {
      if (this.exitError !== undefined) return;
      this.exitError = error;
      for (const waiter of this.pending.values()) waiter.reject(error);
      this.pending.clear();
      this.onExit(error);
    };
    this.thread.on('error', stop);
    this.thread.on('exit', (code) => stop(new Error(`instance thread exited with code ${code}`)));
  }

  get inFlight(): number {
    return this.pending.size;
  }

  send(request: InstanceRequestBody, transfer: ArrayBuffer[] = []): Promise<InstanceResponse> {
    if (this.exitError !== undefined) return Promise.reject(this.exitError);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.thread.postMessage({ ...request, id } as InstanceRequest, transfer);
    });
  }

  async terminate(): Promise<void> {
    this.exitError ??= new Error('instance terminated');
    await this.thread.terminate();
  }
}

export interface LoadedModel {
  signature: ModelSignature;
  warmup: string;
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

  private constructor() {}

  /**
   * Starts `count` threads and loads the model in each; the first one also runs the warm-up inference.
   * @throws GantryError(INVALID_MODEL) when onnxruntime cannot load the file.
   */
  static async load(modelPath: string, count: number, settings: SessionSettings): Promise<{ instances: ModelInstances; loaded: LoadedModel }> {
    const instances = new ModelInstances();
    try {
      let loaded: LoadedModel | undefined;
      for (let index = 0; index < count; index++) {
        const thread = new InstanceThread((error) => {
          instances.broken = error;
        });
        instances.threads.push(thread);
        const response = await thread.send({ type: 'load', modelPath, settings, warmup: index === 0 });
        if (!response.ok) throw fromWire(response.error);
        if (response.type !== 'load') throw new Error('unexpected response to load');
        loaded ??= { signature: response.signature, warmup: response.warmup };
      }
      return { instances, loaded: loaded! };
    } catch (error) {
      await instances.close();
      throw error;
    }
  }

  /** True when some instance has nothing to do, so a batch sent now starts at once. */
  hasIdleInstance(): boolean {
    return this.threads.some((thread) => thread.inFlight === 0);
  }

  get count(): number {
    return this.threads.length;
  }

  /** False once a thread died (a native crash, say): the cache then drops and reloads the model. */
  get healthy(): boolean {
    return this.broken === undefined;
  }

  /**
   * Runs one inference. The input bytes cross to the instance thread as one transferred ArrayBuffer. With
   * `inputsOwned` the caller hands over the buffer its inputs view (a freshly concatenated batch): when all
   * inputs lie in one buffer at 8-byte-aligned offsets, that buffer is transferred as it is and must not be used
   * by the caller afterwards. Otherwise the bytes are copied once into a fresh buffer, so a pooled or shared
   * source (a job payload is a view into ioredis's reply pool) is never detached.
   */
  async run(inputs: readonly Tensor[], outputNames: string[], options: { inputsOwned?: boolean } = {}): Promise<RunOutput> {
    const thread = this.threads.reduce((best, candidate) => (candidate.inFlight < best.inFlight ? candidate : best));
    const handOver = (options.inputsOwned === true ? inPlace(inputs) : undefined) ?? copiedTogether(inputs);
    const response = await thread.send({ type: 'run', inputs: handOver.inputs, outputNames }, [handOver.buffer]);
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

  async close(): Promise<void> {
    await Promise.all(this.threads.map((thread) => thread.terminate()));
  }
}

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
    inputs: inputs.map((input) => ({ name: input.name, datatype: input.datatype, shape: input.shape, buffer, byteOffset: input.data.byteOffset, byteLength: input.data.byteLength })),
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
