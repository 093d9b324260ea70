import type { Redis } from 'ioredis';
import { ErrorCode, GantryError, errors, type WireError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Tensor } from '../protocol/tensor.js';
import type { InferenceJob, TensorLayout } from '../queue/job-contracts.js';
import { encodeReply, type ExecutionTiming, type InferenceResult } from '../queue/reply-codec.js';
import type { ModelRegistry } from '../registry/model-registry.js';
import type { WorkerMetrics } from '../metrics/worker-metrics.js';
import type { SessionCache } from './session-cache.js';

export interface InferenceProcessorDependencies {
  redis: Redis;
  sessions: SessionCache;
  registry: ModelRegistry;
  metrics: WorkerMetrics;
  logger: Logger;
}

function toWireError(error: unknown): WireError {
  if (error instanceof GantryError) return error.toWire();
  return { code: ErrorCode.Internal, message: 'Internal error while running the model.' };
}

/** Reads a job's input bytes: inline (base64) for small jobs, from their own Redis key for large ones. */
async function readPayload(job: InferenceJob, redis: Redis): Promise<Buffer> {
  if (job.payload !== undefined) return Buffer.from(job.payload, 'base64');
  const bytes = await redis.getBuffer(job.payloadKey!);
  if (bytes === null) throw errors.deadlineExceeded(0);
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
 * Runs one inference job (one or more requests for one model version) and publishes a single binary reply to
 * the API process that queued it. Failures of a request are part of the reply, not job failures: the job
 * completes, so BullMQ never retries a request whose answer was already given.
 */
export async function processInferenceJob(job: InferenceJob, dependencies: InferenceProcessorDependencies): Promise<void> {
  const { redis, sessions, metrics, logger } = dependencies;
  const labels = { model: job.model, version: job.version };
  const startedAt = Date.now();
  const queueNs = Math.max(0, startedAt - job.enqueuedAt) * 1e6;
  const results: InferenceResult[] = [];
  const bodies: Uint8Array[] = [];
  const timing: ExecutionTiming = { queueNs, computeInputNs: 0, computeInferNs: 0, computeOutputNs: 0 };

  const failAll = (error: WireError) => {
    for (const request of job.requests) results.push({ correlationId: request.correlationId, error });
  };

  try {
    if (startedAt > job.deadline) {
      // Nobody waits for this answer any more: dropping it keeps a backlog from growing into more timeouts.
      failAll(errors.deadlineExceeded(job.deadline - job.enqueuedAt).toWire());
    } else {
      const payload = await readPayload(job, redis);
      const model = await loadModel(job, dependencies);
      const inputsByRequest = splitInputs(job, payload);
      metrics.queueDuration.observe(labels, queueNs / 1e9);
      const runs = await Promise.allSettled(
        job.requests.map((request, index) => model.instances.run(inputsByRequest[index]!, request.outputs)),
      );
      runs.forEach((run, index) => {
        const correlationId = job.requests[index]!.correlationId;
        if (run.status === 'rejected') {
          results.push({ correlationId, error: toWireError(run.reason) });
          return;
        }
        const layouts: TensorLayout[] = [];
        for (const output of run.value.outputs) {
          layouts.push({ name: output.name, datatype: output.datatype, shape: output.shape, byteLength: output.data.byteLength });
          bodies.push(output.data);
        }
        results.push({ correlationId, outputs: layouts });
        timing.computeInputNs += run.value.timing.computeInputNs;
        timing.computeInferNs += run.value.timing.computeInferNs;
        timing.computeOutputNs += run.value.timing.computeOutputNs;
        metrics.computeDuration.observe(
          labels,
          (run.value.timing.computeInputNs + run.value.timing.computeInferNs + run.value.timing.computeOutputNs) / 1e9,
        );
        metrics.executions.inc(labels);
        metrics.batchSize.observe(labels, 1);
      });
    }
  } catch (error) {
    if (!(error instanceof GantryError)) logger.error({ err: error, model: job.model, version: job.version }, 'inference job failed');
    failAll(toWireError(error));
  }

  for (const result of results) {
    metrics.workerRequests.inc({ ...labels, outcome: result.error === undefined ? 'success' : result.error.code.toLowerCase() });
  }
  await redis.publish(job.replyTo, encodeReply({ kind: 'infer', results, timing }, bodies));
  if (job.payloadKey !== undefined) await redis.del(job.payloadKey);
}

/** Loads the job's model, marking the version UNAVAILABLE (with the reason) when its blob cannot be served. */
async function loadModel(job: InferenceJob, dependencies: InferenceProcessorDependencies) {
  try {
    return await dependencies.sessions.get(job.sha256);
  } catch (error) {
    if (error instanceof GantryError && error.code === ErrorCode.InvalidModel) {
      await dependencies.registry.updateVersion(job.model, job.version, { state: 'UNAVAILABLE', reason: error.message });
      throw new GantryError(ErrorCode.Unavailable, `Version '${job.version}' of model '${job.model}' cannot be served: ${error.message}`);
    }
    throw error;
  }
}
