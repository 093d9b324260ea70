import type { Redis } from 'ioredis';
import { ErrorCode, GantryError, errors, type WireError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { LoadJob } from '../queue/job-contracts.js';
import { encodeReply } from '../queue/reply-codec.js';
import type { ModelSignature } from '../protocol/signature.js';
import type { ModelRegistry, ModelVersion } from '../registry/model-registry.js';
import type { WorkerMetrics } from '../metrics/worker-metrics.js';
import { FencedOffError, type JobFence } from './job-fence.js';
import type { SessionCache } from './session-cache.js';

export interface LoadProcessorDependencies {
  redis: Redis;
  sessions: SessionCache;
  registry: ModelRegistry;
  metrics: WorkerMetrics;
  logger: Logger;
  /** Asked before the load and before the answer; without one (tests), the job is always this worker's. */
  fence?: JobFence;
}

/**
 * Loads a newly uploaded version: verifies its blob, creates its sessions, runs the warm-up, records the
 * signature and READY in the registry, and tells the waiting API process. A file onnxruntime cannot load is
 * recorded as UNAVAILABLE with onnxruntime's reason; the worker itself carries on. A worker that lost the job's
 * lock (job fence) stops with a FencedOffError before the load or before recording its outcome.
 */
export async function processLoadJob(job: LoadJob, dependencies: LoadProcessorDependencies): Promise<void> {
  const { redis, sessions, registry, metrics, logger, fence } = dependencies;
  const context = { model: job.model, version: job.version, sha256: job.sha256 };
  // A load job re-run after its worker restarted (the restart a stopped load causes) finds its version
  // decided already: loading it again would only get stuck again.
  const record = await registry.getVersion(job.model, job.version);
  if (record === undefined || record.state !== 'LOADING') {
    logger.info({ ...context, state: record?.state ?? 'deleted' }, 'load job for a version that is no longer LOADING; nothing to do');
    await fence?.check('before_answer');
    await redis.publish(job.replyTo, encodeReply({ kind: 'load', correlationId: job.correlationId, ...answerFor(record, job) }));
    return;
  }
  await fence?.check('before_run');
  const stopTimer = metrics.modelLoadDuration.startTimer({ model: job.model });
  try {
    const model = await sessions.get(job.sha256, job.settings);
    await fence?.check('before_answer');
    stopTimer();
    await registry.updateVersion(job.model, job.version, { state: 'READY', signature: model.signature, warmup: model.warmup });
    logger.info({ ...context, warmup: model.warmup }, 'model version ready');
    await redis.publish(job.replyTo, encodeReply({ kind: 'load', correlationId: job.correlationId, signature: model.signature }));
  } catch (error) {
    if (error instanceof FencedOffError) throw error;
    await fence?.check('before_answer');
    const wire = error instanceof GantryError ? error.toWire() : { code: ErrorCode.Internal, message: 'The worker failed while loading the model.' };
    if (!(error instanceof GantryError)) logger.error({ ...context, err: error }, 'model load failed');
    else logger.warn({ ...context, reason: error.message }, 'model version rejected');
    await registry.updateVersion(job.model, job.version, { state: 'UNAVAILABLE', reason: wire.message });
    await redis.publish(job.replyTo, encodeReply({ kind: 'load', correlationId: job.correlationId, error: wire }));
  }
}

/** What a waiting uploader is told about a version decided before this load job ran. */
function answerFor(record: ModelVersion | undefined, job: LoadJob): { signature: ModelSignature } | { error: WireError } {
  if (record?.state === 'READY' && record.signature !== undefined) return { signature: record.signature };
  if (record === undefined) return { error: errors.modelNotFound(job.model, job.version).toWire() };
  // A load ends UNAVAILABLE when the file cannot be served, and its reason is the load's own error message.
  if (record.state === 'UNAVAILABLE') return { error: { code: ErrorCode.InvalidModel, message: record.reason ?? 'The model version is UNAVAILABLE.' } };
  return { error: errors.modelNotReady(job.model, job.version, record.state).toWire() };
}
