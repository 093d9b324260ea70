/**
 * One model instance: an onnxruntime session living in its own worker thread. `InferenceSession.run()` is a
 * synchronous native call that blocks its event loop for the whole inference, so it must never run on the
 * worker process's main thread, which has to keep BullMQ's locks and Redis connections alive.
 */
import { spawnSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import path from 'node:path';
import { parentPort } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { ErrorCode } from '../errors.js';
import { byteSizeOf, datatypeOfOrtType, ortTypeOf } from '../protocol/datatypes.js';
import { typedView } from '../protocol/typed-view.js';
import { maxElementsPerTensor, validateInputs } from '../protocol/validate-inputs.js';
import type { WarmupReport } from '../registry/warmup-report.js';
import { readBytesStrings, writeBytesStrings } from '../protocol/bytes-elements.js';
import type { ModelSignature, TensorSpec } from '../protocol/signature.js';
import type { BackgroundScheduling, InstanceRequest, InstanceResponse, SessionSettings, ThreadTensor } from './instance-messages.js';
import { chosenIntraOpThreads, medianRunMs } from './thread-choice.js';

if (parentPort === null) throw new Error('instance-thread must run as a worker thread');
const port = parentPort;
let session: ort.InferenceSession | undefined;
let loadedSignature: ModelSignature | undefined;

function fail(id: number, code: ErrorCode, message: string): InstanceResponse {
  return { id, ok: false, error: { code, message } };
}

function toSpec(metadata: ort.InferenceSession.ValueMetadata): TensorSpec {
  if (!metadata.isTensor) throw new Error(`'${metadata.name}' is not a tensor (sequences and maps are not supported)`);
  const datatype = datatypeOfOrtType(metadata.type);
  if (datatype === undefined) throw new Error(`'${metadata.name}' has element type ${metadata.type}, which Gantry cannot carry`);
  // Symbolic (named or unnamed) dimensions are dynamic: -1 in the Open Inference Protocol.
  return { name: metadata.name, datatype, shape: metadata.shape.map((dimension) => (typeof dimension === 'number' && dimension >= 0 ? dimension : -1)) };
}

/** Refuses models declaring a tensor no request could ever fill: its fixed dimensions alone are too many elements. */
function rejectAbsurdShapes(signature: ModelSignature): void {
  for (const spec of [...signature.inputs, ...signature.outputs]) {
    const fixedElements = spec.shape.reduce((product, dimension) => (dimension > 0 ? product * dimension : product), 1);
    if (fixedElements > maxElementsPerTensor) {
      throw new Error(
        `'${spec.name}' declares shape [${spec.shape.join(',')}] (${fixedElements} elements), more than the ${maxElementsPerTensor} a tensor may have`,
      );
    }
  }
}

function readSignature(loaded: ort.InferenceSession): ModelSignature {
  return { inputs: loaded.inputMetadata.map(toSpec), outputs: loaded.outputMetadata.map(toSpec) };
}

function toOrtTensor(input: ThreadTensor): ort.Tensor {
  if (input.datatype === 'BYTES') {
    // One string per element is what onnxruntime needs; nothing else is made per element (GANTRY_MAX_BYTES_ELEMENTS bounds the count).
    return new ort.Tensor('string', readBytesStrings(new Uint8Array(input.buffer, input.byteOffset, input.byteLength), input.name), input.shape);
  }
  const data = typedView(input.datatype, new Uint8Array(input.buffer, input.byteOffset, input.byteLength));
  return new ort.Tensor(ortTypeOf(input.datatype) as 'float32', data as unknown as Float32Array, input.shape);
}

function fromOrtTensor(name: string, tensor: ort.Tensor): ThreadTensor {
  const datatype = datatypeOfOrtType(tensor.type);
  if (datatype === undefined) throw new Error(`output '${name}' has element type ${tensor.type}, which Gantry cannot carry`);
  const shape = tensor.dims.map(Number);
  if (datatype === 'BYTES') {
    const bytes = writeBytesStrings(tensor.data as string[]);
    return { name, datatype, shape, buffer: bytes.buffer as ArrayBuffer, byteOffset: bytes.byteOffset, byteLength: bytes.byteLength };
  }
  const data = tensor.data as unknown as ArrayBufferView;
  return { name, datatype, shape, buffer: data.buffer as ArrayBuffer, byteOffset: data.byteOffset, byteLength: data.byteLength };
}

/** Zero-filled inputs that fit the signature (dynamic dimensions become 1), for the warm-up run. */
function syntheticInputs(signature: ModelSignature): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const spec of signature.inputs) {
    const shape = spec.shape.map((dimension) => (dimension < 0 ? 1 : dimension));
    const count = shape.reduce((product, dimension) => product * dimension, 1);
    if (spec.datatype === 'BYTES') {
      feeds[spec.name] = new ort.Tensor('string', new Array<string>(count).fill(''), shape);
    } else {
      const data = typedView(spec.datatype, new Uint8Array(count * byteSizeOf(spec.datatype)));
      feeds[spec.name] = new ort.Tensor(ortTypeOf(spec.datatype) as 'float32', data as unknown as Float32Array, shape);
    }
  }
  return feeds;
}

function sessionOptions(settings: SessionSettings): ort.InferenceSession.SessionOptions {
  const spinning = settings.allowSpinning === true ? '1' : '0';
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: settings.executionProviders,
    graphOptimizationLevel: settings.graphOptimizationLevel,
    // Session config entries (onnxruntime_session_options_config_keys.h), flattened by onnxruntime-node.
    extra: { session: { intra_op: { allow_spinning: spinning }, inter_op: { allow_spinning: spinning } } },
  };
  if (settings.intraOpThreads !== undefined) options.intraOpNumThreads = settings.intraOpThreads;
  if (settings.interOpThreads !== undefined) options.interOpNumThreads = settings.interOpThreads;
  if (settings.optimizedModelPath !== undefined) options.optimizedModelFilePath = settings.optimizedModelPath;
  return options;
}

/**
 * The nice value of a background session's thread: the lowest priority, so the kernel runs it only on CPU time the
 * other threads leave idle (Linux weighs nice 19 at about 1.5% of nice 0 when both want a core).
 */
const backgroundNice = 19;

/**
 * Puts this thread (and the threads onnxruntime starts from it) at the lowest scheduling priority. Nice 19 alone still
 * lets a running background thread hold a core for a while after a primary's thread wakes up (measured: a 100% slow
 * shadow raised the primary's p50 by 13%); SCHED_IDLE is preempted at once by any normal thread (measured: 0%). Node
 * has no call for the scheduling policy, so util-linux's `chrt` sets it on this thread's id, once per background
 * session; where it is missing (or not Linux), nice 19 stays and the worker logs it.
 */
function scheduleAsBackground(): BackgroundScheduling {
  setPriority(backgroundNice);
  try {
    // /proc/thread-self names this thread's task: `<pid>/task/<tid>`.
    const threadId = readlinkSync('/proc/thread-self').split('/').pop()!;
    const outcome = spawnSync('chrt', ['--idle', '--pid', '0', threadId], { stdio: 'ignore', timeout: 5000 });
    return outcome.status === 0 ? 'idle' : 'nice';
  } catch {
    return 'nice';
  }
}

async function load(request: Extract<InstanceRequest, { type: 'load' }>): Promise<InstanceResponse> {
  let signature: ModelSignature;
  // Set before the session exists: on Linux nice values and scheduling policies are per thread (pid 0 is this
  // thread, not the process), and the threads onnxruntime starts for the session inherit them. Lowering one's own
  // priority needs no privilege.
  const backgroundScheduling = request.settings.background === true ? scheduleAsBackground() : undefined;
  let threads: ThreadChoice = { intraOpThreads: request.settings.intraOpThreads };
  try {
    session = await ort.InferenceSession.create(request.modelPath, sessionOptions(request.settings));
    signature = readSignature(session);
    rejectAbsurdShapes(signature);
    if (request.settings.autoIntraOpThreads === true) threads = await chooseThreads(request.modelPath, request.settings, signature);
  } catch (error) {
    await session?.release().catch(() => undefined);
    session = undefined;
    // onnxruntime names files and folders; callers never need the server's paths, so they are cut out.
    const message = (error instanceof Error ? error.message : String(error))
      .replaceAll(request.modelPath, 'the model')
      .replaceAll(path.dirname(request.modelPath), 'the model store')
      .replaceAll(path.resolve(request.modelPath, '../../..'), '<data dir>');
    return fail(request.id, ErrorCode.InvalidModel, message);
  }
  loadedSignature = signature;
  return {
    id: request.id,
    ok: true,
    type: 'load',
    signature,
    ...(backgroundScheduling === undefined ? {} : { backgroundScheduling }),
    ...(threads.intraOpThreads === undefined ? {} : { intraOpThreads: threads.intraOpThreads }),
    ...(threads.measuredRunMs === undefined ? {} : { measuredRunMs: threads.measuredRunMs }),
  };
}

interface ThreadChoice {
  intraOpThreads: number | undefined;
  measuredRunMs?: number;
}

/**
 * Automatic intra-op threads: the session was loaded with the instance's share of the cores; a few zero-filled runs
 * are timed on it, and when one is light (thread-choice.ts) the session is loaded again with one thread, since a
 * pool's wake-ups then cost more CPU than the run itself. With a share of one there is nothing to choose. Zeros that
 * the model rejects leave the share (nothing was measured). The inputs use 1 for dynamic dimensions, so this is the
 * cost of the smallest input: a model whose runs grow with the batch may want an explicit count.
 */
async function chooseThreads(modelPath: string, settings: SessionSettings, signature: ModelSignature): Promise<ThreadChoice> {
  const share = settings.intraOpThreads ?? 1;
  if (share <= 1 || session === undefined) return { intraOpThreads: share };
  let measuredRunMs: number;
  try {
    measuredRunMs = await medianRunMs(session, syntheticInputs(signature));
  } catch {
    return { intraOpThreads: share };
  }
  const chosen = chosenIntraOpThreads(share, measuredRunMs);
  if (chosen !== share) {
    // Released first, so the share's pool threads end before the new session starts its own.
    const measured = session;
    session = undefined;
    await measured.release();
    session = await ort.InferenceSession.create(modelPath, sessionOptions({ ...settings, intraOpThreads: chosen }));
  }
  return { intraOpThreads: chosen, measuredRunMs };
}

/** Longest reason a warm-up report carries (onnxruntime's messages can be long). */
const maxReasonLength = 500;

/**
 * Runs the warm-up on this instance's session: the sample, checked against the signature first, or zero-filled
 * inputs. A failing sample is `failed`; failing zeros are `skipped` (zeros are not always valid inputs).
 */
async function warmup(request: Extract<InstanceRequest, { type: 'warmup' }>): Promise<InstanceResponse> {
  if (session === undefined || loadedSignature === undefined) return fail(request.id, ErrorCode.Unavailable, 'the model is not loaded in this instance');
  const sample = request.inputs;
  let report: WarmupReport;
  try {
    if (sample === undefined) {
      await session.run(syntheticInputs(loadedSignature));
    } else {
      validateInputs(loadedSignature, sample);
      const feeds: Record<string, ort.Tensor> = {};
      for (const input of sample) feeds[input.name] = toOrtTensor(input);
      await session.run(feeds);
    }
    report = { status: 'ok' };
  } catch (error) {
    const reason = (error instanceof Error ? error.message : String(error)).slice(0, maxReasonLength);
    report = sample === undefined ? { status: 'skipped', reason: `the zero-filled warm-up inputs failed: ${reason}` } : { status: 'failed', reason };
  }
  return { id: request.id, ok: true, type: 'warmup', report };
}

async function run(request: Extract<InstanceRequest, { type: 'run' }>): Promise<{ response: InstanceResponse; transfer: ArrayBuffer[] }> {
  if (session === undefined) return { response: fail(request.id, ErrorCode.Unavailable, 'the model is not loaded in this instance'), transfer: [] };
  const started = process.hrtime.bigint();
  let inputsReady: bigint;
  let inferred: bigint;
  let outputs: ThreadTensor[];
  try {
    const feeds: Record<string, ort.Tensor> = {};
    for (const input of request.inputs) feeds[input.name] = toOrtTensor(input);
    inputsReady = process.hrtime.bigint();
    const results = await session.run(feeds, request.outputNames);
    inferred = process.hrtime.bigint();
    outputs = request.outputNames.map((name) => fromOrtTensor(name, results[name] as ort.Tensor));
  } catch (error) {
    // Anything wrong with one request's tensors is that request's error; the thread and its session live on.
    const message = error instanceof Error ? error.message : String(error);
    return { response: fail(request.id, ErrorCode.InvalidArgument, `onnxruntime rejected the inputs: ${message}`), transfer: [] };
  }
  const finished = process.hrtime.bigint();
  const transfer = [...new Set(outputs.map((output) => output.buffer))];
  return {
    response: {
      id: request.id,
      ok: true,
      type: 'run',
      outputs,
      timing: {
        computeInputNs: Number(inputsReady - started),
        computeInferNs: Number(inferred - inputsReady),
        computeOutputNs: Number(finished - inferred),
      },
    },
    transfer,
  };
}

port.on('message', (request: InstanceRequest) => {
  if (request.type === 'load') {
    void load(request).then((response) => port.postMessage(response));
    return;
  }
  if (request.type === 'warmup') {
    void warmup(request).then((response) => port.postMessage(response));
    return;
  }
  void run(request).then(({ response, transfer }) => {
    try {
      port.postMessage(response, transfer);
    } catch {
      // Some output buffers belong to onnxruntime and cannot be detached; send those as copies.
      port.postMessage(response);
    }
  });
});
