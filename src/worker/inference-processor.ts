import type { Redis } from 'ioredis';
import { ErrorCode, GantryError, errors, type WireError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { WorkerMetrics } from '../metrics/worker-metrics.js';
import type { Tensor } from '../protocol/tensor.js';
import { maxReplyBytesPerRequest, type InferenceJob, type QueuedRequest, type TensorLayout } from '../queue/job-contracts.js';
import { randomUUID } from 'node:crypto';
import { placeValue, readLargeValue } from '../queue/large-values.js';
import { replyBodyKey } from '../redis-keys.js';
import { encodeReply, type InferenceReplyHeader, type InferenceResult } from '../queue/reply-codec.js';
import type { ModelRegistry } from '../registry/model-registry.js';
import type { VersionWarmupSamples } from './version-warmup-samples.js';
import { FencedOffError, type JobFence } from './job-fence.js';
import type { DurableResults } from '../jobs/durable-writer.js';
import { encodeStoredAnswer } from '../jobs/stored-answer.js';
import type { BatchedResult } from './model-batcher.js';
import type { SessionCache } from './session-cache.js';

/** One request's outcome and times (ns), as the statistics count it. */
export interface RequestStatistics {
  ok: boolean;
  rows: number;
  queueNs: number;
  totalNs: number;
  computeInputNs: number;
  computeInferNs: number;
  computeOutputNs: number;
  finishedAtMs: number;
}

/** One onnxruntime execution's batch size and times (ns). */
export interface ExecutionStatistics {
  batchSize: number;
  computeInputNs: number;
  computeInferNs: number;
  computeOutputNs: number;
}

/** Where per-request and per-execution statistics go (Triton's statistics extension, kept in Redis). */
export interface StatisticsSink {
  recordRequest(model: string, version: string, request: RequestStatistics): void;
  recordExecution(model: string, version: string, execution: ExecutionStatistics): void;
}

export interface InferenceProcessorDependencies {
  /** The deployment's key prefix (GANTRY_QUEUE_PREFIX). */
  prefix: string;
  /** How many times this job has been started, this time included (BullMQ counts restarts after a crash). */
  attempt?: number;
  maxAttempts?: number;
  redis: Redis;
  sessions: SessionCache;
  registry: ModelRegistry;
  /** Which sample each version warms up with; without it (tests), versions warm up with zero-filled inputs. */
  warmupSamples?: VersionWarmupSamples;
  metrics: WorkerMetrics;
  statistics: StatisticsSink;
  logger: Logger;
  /** Asked before the run and before the answer; without one (tests), the job is always this worker's. */
  fence?: JobFence;
  /** Where the answers of asynchronous work go (job-contracts.ts `durable`); a durable job fails without it. */
  durable?: DurableResults;
  /**
   * Meters what asynchronous work used to the one who asked for it (its request was metered when it was made); the
   * worker counts it once BullMQ has completed the job. Absent: not metered (tests).
   */
  meterCompute?: (usage: ComputeUsage) => void;
}

/** The compute one request of asynchronous work used, for the usage meter. */
export interface ComputeUsage {
  tenant: string;
  keyId: string;
  model: string;
  version: string;
  rows: number;
  computeNs: number;
}

function toWireError(error: unknown): WireError {
  if (error instanceof GantryError) return error.toWire();
  return { code: ErrorCode.Internal, message: 'Internal error while running the model.' };
}

/** Reads a job's input bytes: inline (base64) for small jobs, from their own Redis key for large ones. */
async function readPayload(job: InferenceJob, redis: Redis): Promise<Buffer> {
  if (job.payload !== undefined) return Buffer.from(job.payload, 'base64');
  let total = 0;
  for (const request of job.requests) for (const input of request.inputs) total += input.byteLength;
  const bytes = await readLargeValue(redis, job.payloadKey!, total);
  // The key expires with the deadline: gone means nobody waits for this answer any more.
  if (bytes === undefined) throw errors.deadlineExceeded(job.deadline - job.enqueuedAt);
  return bytes;
}

/** Cuts each request's input tensors out of the job payload, in the order the API wrote them. */
function splitInputs(job: InferenceJob, payload: Buffer): Tensor[][] {
  let offset = 0;
  return job.requests.map((request) =>
    request.inputs.map((layout) => {
      const data = payload.subarray(offset, offset + layout.byteLength);
      offset += layout.byteLength;
      return { name: layout.name, datatype: layout.datatype, shape: layout.shape, data };
    }),
  );
}

/**
 * Runs one inference job (one or more requests for one model version) through the model's dynamic batcher and
 * publishes its binary reply (one message, or several when the outputs are large) to the API process that queued
 * it. A request's failure is part of the reply, not a job failure: the job completes, so BullMQ never re-runs a
 * request whose answer was already given.
 *
 * What must happen once per job (the run, then statistics, metrics and the reply) waits for the job fence: a
 * worker that lost the job's lock stops with a FencedOffError and leaves the job to the worker that took it.
 */
export async function processInferenceJob(job: InferenceJob, dependencies: InferenceProcessorDependencies): Promise<void> {
  const { redis, logger, fence } = dependencies;
  const startedAt = Date.now();
  const queueNs = Math.max(0, startedAt - job.enqueuedAt) * 1e6;
  // Asynchronous work: only the requests still wanted run (not cancelled, not answered by an earlier attempt).
  const durable = job.durable === undefined ? undefined : { job: { ...job, durable: job.durable }, results: dependencies.durable };
  let wanted: Set<string> | undefined;
  if (durable !== undefined) {
    if (durable.results === undefined) throw new Error('a durable job reached a worker without a durable results writer');
    wanted = await durable.results.begin(durable.job);
    if (wanted.size === 0) {
      if (job.payloadKey !== undefined) await redis.del(job.payloadKey);
      return;
    }
  }
  const isWanted = (correlationId: string) => wanted === undefined || wanted.has(correlationId);
  const answers: AnsweredRequest[] = [];
  const fail = (correlationId: string, error: WireError, finishedAtMs: number) => {
    answers.push({ result: { correlationId, error }, bodies: [], bytes: 0, finishedAtMs });
  };
  // Requests answered without running (crash-looping job, past deadline, model that cannot load) count too.
  const failAll = (error: WireError) => {
    const finishedAtMs = Date.now();
    // A durable job's requests answered by an earlier attempt (or cancelled) are not answered, or counted, again.
    for (const request of job.requests) if (isWanted(request.correlationId)) fail(request.correlationId, error, finishedAtMs);
  };
  let ran = false;

  try {
    if (dependencies.attempt !== undefined && dependencies.maxAttempts !== undefined && dependencies.attempt > dependencies.maxAttempts) {
      // Every earlier start of this job ended with its worker dying: running it again would kill another.
      logger.error({ model: job.model, version: job.version, attempts: dependencies.attempt - 1 }, 'giving up on a job that keeps crashing workers');
      failAll(errors.poisonedJob(dependencies.attempt - 1).toWire());
    } else if (startedAt > job.deadline) {
      // Nobody waits for this answer any more: dropping it keeps a backlog from growing into more timeouts.
      failAll(errors.deadlineExceeded(job.deadline - job.enqueuedAt).toWire());
      for (const answer of answers) answer.expired = true;
    } else {
      const payload = await readPayload(job, redis);
      const model = await loadModel(job, dependencies);
      const inputsByRequest = splitInputs(job, payload);
      await fence?.check('before_run');
      // The payload is a view into ioredis's shared reply pool, so the instance thread gets a copy of it.
      // The job's requests are queued together, so they run together instead of the first one alone.
      const wantedIndexes = job.requests.flatMap((request, index) => (isWanted(request.correlationId) ? [index] : []));
      const submitted = model.batcher.submitAll(
        wantedIndexes.map((index) => ({ inputs: inputsByRequest[index]!, outputs: job.requests[index]!.outputs })),
        { priority: job.priority, deadline: job.deadline, timeoutMs: job.deadline - job.enqueuedAt, model: job.model, version: job.version },
      );
      const byRequest = new Map(wantedIndexes.map((index, position) => [index, submitted[position]!]));
      const runs = await Promise.allSettled(job.requests.map((_request, index) => byRequest.get(index) ?? Promise.reject(notWanted)));
      const finishedAtMs = Date.now();
      runs.forEach((run, index) => {
        const correlationId = job.requests[index]!.correlationId;
        if (run.status === 'rejected' && run.reason === notWanted) return;
        if (run.status === 'rejected') {
          fail(correlationId, toWireError(run.reason), finishedAtMs);
          return;
        }
        const refusal = checkOutputLimits(job.requests[index]!, run.value.outputs, dependencies);
        if (refusal !== undefined) {
          fail(correlationId, refusal, finishedAtMs);
          return;
        }
        const layouts: TensorLayout[] = [];
        const bodies: Uint8Array[] = [];
        let bytes = 0;
        for (const output of run.value.outputs) {
          layouts.push({ name: output.name, datatype: output.datatype, shape: output.shape, byteLength: output.data.byteLength });
          bodies.push(output.data);
          bytes += output.data.byteLength;
        }
        answers.push({
          result: { correlationId, outputs: layouts, computeNs: computeShareNs(run.value), rows: run.value.rows },
          bodies,
          bytes,
          finishedAtMs,
          run: run.value,
        });
      });
      ran = true;
    }
  } catch (error) {
    if (error instanceof FencedOffError) throw error;
    if (!(error instanceof GantryError)) logger.error({ err: error, model: job.model, version: job.version }, 'inference job failed');
    failAll(toWireError(error));
  }

  // From here on everything happens once per job, so only while the job is still this worker's. A stall after
  // this check can still lose the job before BullMQ completes it: the reply may then go twice (the API keeps the
  // first), and the statistics are held until the completion succeeds (completion-gated-statistics.ts).
  await fence?.check('before_answer');
  record(job, answers, queueNs, ran, dependencies);
  if (durable !== undefined) {
    await durable.results!.write(
      durable.job,
      answers
        .filter((answered) => isWanted(answered.result.correlationId))
        .map((answered) => ({
          correlationId: answered.result.correlationId,
          stored: encodeStoredAnswer(answered.result, answered.bodies),
          ...(answered.result.error === undefined ? {} : { error: answered.result.error }),
          ...(answered.expired === true ? { expired: true } : {}),
        })),
    );
    const owner = durable.job.durable.owner;
    if (owner !== undefined && dependencies.meterCompute !== undefined) {
      for (const { result } of answers) {
        if (result.error !== undefined || result.computeNs === undefined) continue;
        dependencies.meterCompute({ ...owner, model: job.model, version: job.version, rows: result.rows ?? 0, computeNs: result.computeNs });
      }
    }
    if (job.payloadKey !== undefined) await redis.del(job.payloadKey);
    return;
  }
  // Timings go to the statistics in Redis, not to the API: the reply carries only results.
  for (const group of replyGroups(answers)) {
    await publishReply(
      job,
      { kind: 'infer', results: group.map((answered) => answered.result) },
      group.flatMap((answered) => answered.bodies),
      dependencies,
    );
  }
  if (job.payloadKey !== undefined) await redis.del(job.payloadKey);
}

/** One request's answer, the output bytes that go with it, and what its statistics need. */
interface AnsweredRequest {
  result: InferenceResult;
  bodies: Uint8Array[];
  bytes: number;
  finishedAtMs: number;
  /** The batcher's result, for a request that ran and succeeded. */
  run?: BatchedResult;
  /** Not run: its job's deadline had passed (an asynchronous request then ends `expired`). */
  expired?: boolean;
}

/** Stands for a request of a durable job that is no longer wanted (cancelled, answered already): not run. */
const notWanted = Symbol('not wanted');

/**
 * Statistics and metrics of a job's answers: a failed request counts as a failed inference (Triton's `fail`),
 * a successful one with its timings (and, once per execution, the execution's).
 */
function record(job: InferenceJob, answers: readonly AnsweredRequest[], queueNs: number, ran: boolean, dependencies: InferenceProcessorDependencies): void {
  const { metrics, statistics } = dependencies;
  const labels = { model: job.model, version: job.version };
  for (const { result, finishedAtMs, run } of answers) {
    if (run !== undefined) observe(job, run, queueNs, finishedAtMs, dependencies);
    else
      statistics.recordRequest(job.model, job.version, {
        ok: false,
        rows: 0,
        queueNs,
        totalNs: (finishedAtMs - job.enqueuedAt) * 1e6,
        computeInputNs: 0,
        computeInferNs: 0,
        computeOutputNs: 0,
        finishedAtMs,
      });
    metrics.workerRequests.inc({ ...labels, outcome: result.error === undefined ? 'success' : result.error.code.toLowerCase() });
  }
  if (ran) metrics.queueDuration.observe(labels, queueNs / 1e9);
}

/**
 * Output bytes one reply message carries at most (unless a single request's outputs are larger, up to
 * maxReplyBytesPerRequest): a job's results are published in as many messages as needed, so no reply value
 * nears Redis's 512 MB limit however many requests a job holds. The API matches results by correlationId.
 */
export const maxReplyMessageBytes = 64 * 1024 ** 2;

/** Cuts a job's answers into consecutive groups of at most maxReplyMessageBytes output bytes (at least one each). */
function replyGroups(results: AnsweredRequest[]): AnsweredRequest[][] {
  const groups: AnsweredRequest[][] = [];
  let current: AnsweredRequest[] = [];
  let bytes = 0;
  for (const answered of results) {
    if (current.length > 0 && bytes + answered.bytes > maxReplyMessageBytes) {
      groups.push(current);
      current = [];
      bytes = 0;
    }
    current.push(answered);
    bytes += answered.bytes;
  }
  if (current.length > 0) groups.push(current);
  return groups;
}

/**
 * Checks one request's outputs against the limits its job carries, before anything is published: the raw bytes
 * (never above maxReplyBytesPerRequest, whatever the job says) and the elements of the outputs the API will
 * write as JSON. Returns the error to answer with, or undefined when the outputs may go.
 */
function checkOutputLimits(request: QueuedRequest, outputs: readonly Tensor[], dependencies: InferenceProcessorDependencies): WireError | undefined {
  const maxBytes = Math.min(request.maxOutputBytes ?? maxReplyBytesPerRequest, maxReplyBytesPerRequest);
  let bytes = 0;
  for (const output of outputs) bytes += output.data.byteLength;
  if (bytes > maxBytes) {
    dependencies.metrics.limitTrips.inc({ limit: 'output_bytes' });
    return errors.outputTooLarge(bytes, maxBytes).toWire();
  }
  if (request.jsonOutputs === undefined || request.maxJsonOutputElements === undefined) return undefined;
  const jsonOutputs = request.jsonOutputs;
  let elements = 0;
  // A request has a handful of outputs: a list lookup, no Set to build per request.
  for (const output of outputs) if (jsonOutputs.includes(output.name)) elements += output.shape.reduce((product, dimension) => product * dimension, 1);
  if (elements > request.maxJsonOutputElements) {
    dependencies.metrics.limitTrips.inc({ limit: 'json_output' });
    return errors.jsonOutputTooLarge(elements, request.maxJsonOutputElements).toWire();
  }
  return undefined;
}

/** Publishes one reply message; large output bytes go to a key first (large-values.ts decides which). */
async function publishReply(
  job: InferenceJob,
  header: InferenceReplyHeader,
  bodies: Uint8Array[],
  dependencies: InferenceProcessorDependencies,
): Promise<void> {
  const { redis, prefix } = dependencies;
  const bodyLength = bodies.reduce((sum, body) => sum + body.byteLength, 0);
  const bodyKey = await placeValue(redis, bodies, bodyLength, () => replyBodyKey(prefix, job.model, randomUUID()), job.deadline);
  await redis.publish(job.replyTo, bodyKey === undefined ? encodeReply(header, bodies) : encodeReply({ ...header, bodyKey, bodyLength }));
}

/**
 * One request's share of its execution's compute time, in ns: the execution's whole time split by rows, so the
 * requests batched together add up to the execution (each is billed for what it ran, not for the whole batch).
 */
function computeShareNs(result: BatchedResult): number {
  const { computeInputNs, computeInferNs, computeOutputNs } = result.timing;
  const executionNs = computeInputNs + computeInferNs + computeOutputNs;
  return result.batchSize > 0 ? Math.round((executionNs * result.rows) / result.batchSize) : executionNs;
}

/** Metrics and statistics of one successful request (and, once per execution, of the execution). */
function observe(job: InferenceJob, result: BatchedResult, queueNs: number, finishedAtMs: number, dependencies: InferenceProcessorDependencies): void {
  const { metrics, statistics } = dependencies;
  const labels = { model: job.model, version: job.version };
  const { computeInputNs, computeInferNs, computeOutputNs } = result.timing;
  const computeNs = computeInputNs + computeInferNs + computeOutputNs;
  statistics.recordRequest(job.model, job.version, {
    ok: true,
    rows: result.rows,
    queueNs,
    totalNs: (finishedAtMs - job.enqueuedAt) * 1e6,
    computeInputNs,
    computeInferNs,
    computeOutputNs,
    finishedAtMs,
  });
  if (!result.reportsExecution) return;
  metrics.computeDuration.observe(labels, computeNs / 1e9);
  metrics.executions.inc(labels);
  metrics.batchSize.observe(labels, result.batchSize);
  statistics.recordExecution(job.model, job.version, { batchSize: result.batchSize, computeInputNs, computeInferNs, computeOutputNs });
}

/**
 * Loads the job's model and runs its version's warm-up sample on every instance first (once per sessions), marking
 * the version UNAVAILABLE (with the reason) when its blob cannot be served or its sample fails here.
 */
async function loadModel(job: InferenceJob, dependencies: InferenceProcessorDependencies) {
  try {
    const warmupSample = await dependencies.warmupSamples?.of(job.model, job.version);
    // Background work (shadow copies) runs on sessions of its own at the lowest OS priority (session-cache.ts).
    return (await dependencies.sessions.warmed(job.sha256, job.settings, warmupSample, job.background === true ? 'background' : 'foreground')).model;
  } catch (error) {
    if (error instanceof GantryError && error.code === ErrorCode.InvalidModel) {
      await dependencies.registry.lifecycle.markUnavailable(job.model, job.version, error.message);
      throw new GantryError(ErrorCode.Unavailable, `Version '${job.version}' of model '${job.model}' cannot be served: ${error.message}`);
    }
    throw error;
  }
}
