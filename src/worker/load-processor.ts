import type { Redis } from 'ioredis';
import { ErrorCode, GantryError, errors, type WireError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { LoadJob } from '../queue/job-contracts.js';
import { encodeReply } from '../queue/reply-codec.js';
import type { ModelSignature } from '../protocol/signature.js';
import type { ModelRegistry, ModelVersion } from '../registry/model-registry.js';
import type { WorkerMetrics } from '../metrics/worker-metrics.js';
import { FencedOffError, type JobFence } from './job-fence.js';
import type { SessionCache, WarmedModel } from './session-cache.js';

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
 * Loads a newly uploaded version: verifies its blob, creates its sessions, runs the warm-up (the version's sample,
 * or zero-filled inputs) on every instance, records the
 * signature and READY in the registry, and tells the waiting API process. A file onnxruntime cannot load is
 * recorded as UNAVAILABLE with onnxruntime's reason; the worker itself carries on. Either outcome is recorded only
 * while the version is still LOADING at the job's load generation (registry/model-lifecycle.ts): an unload, fault,
 * newer load or delete that came meanwhile wins, and this load's sessions are released instead. A worker that lost the job's
 * lock (job fence) stops with a FencedOffError before the load or before recording its outcome.
 */
export async function processLoadJob(job: LoadJob, dependencies: LoadProcessorDependencies): Promise<void> {
  const { redis, sessions, registry, metrics, logger, fence } = dependencies;
  const context = { model: job.model, version: job.version, sha256: job.sha256 };
  // A load job re-run after its worker restarted (the restart a stopped load causes) finds its version
  // decided already: loading it again would only get stuck again.
  const record = await registry.getVersion(job.model, job.version);
  // A job from an older API carries no generation: it loads for the one current now (see job-contracts.ts).
  const generation = job.loadGeneration ?? record?.loadGeneration ?? 0;
  if (record === undefined || record.state !== 'LOADING' || (record.loadGeneration ?? 0) !== generation) {
    logger.info({ ...context, state: record?.state ?? 'deleted' }, 'load job for a version no longer LOADING at its generation; nothing to do');
    await fence?.check('before_answer');
    await answer(redis, job, answerFor(record, job, generation));
    return;
  }
  await fence?.check('before_run');
  const stopTimer = metrics.modelLoadDuration.startTimer({ model: job.model });
  let warmed: WarmedModel;
  try {
    // The sample is the version record's (the API stores it before it queues the load), so every worker finds it.
    warmed = await sessions.warmed(job.sha256, job.settings, record.warmupSample);
  } catch (error) {
    if (error instanceof FencedOffError) throw error;
    await fence?.check('before_answer');
    const wire = error instanceof GantryError ? error.toWire() : { code: ErrorCode.Internal, message: 'The worker failed while loading the model.' };
    if (!(error instanceof GantryError)) logger.error({ ...context, err: error }, 'model load failed');
    else logger.warn({ ...context, reason: error.message }, 'model version rejected');
    const recorded = await registry.lifecycle.finishLoad(job.model, job.version, generation, { state: 'UNAVAILABLE', reason: wire.message });
    if (recorded === 'recorded') await answer(redis, job, { error: wire });
    else await answer(redis, job, answerFor(await registry.getVersion(job.model, job.version), job, generation));
    return;
  }
  await fence?.check('before_answer');
  stopTimer();
  const { model, warmup } = warmed;
  const outcome = { state: 'READY' as const, signature: model.signature, warmup: JSON.stringify(warmup) };
  const recorded = await registry.lifecycle.finishLoad(job.model, job.version, generation, outcome);
  if (recorded === 'recorded') {
    logger.info({ ...context, warmup }, 'model version ready');
    await answer(redis, job, { signature: model.signature });
    return;
  }
  // The version was unloaded, faulted, reloaded or deleted while this load ran: that change wins. The sessions
  // loaded for it go, unless another version of the same bytes serves from them.
  logger.info({ ...context, outcome: recorded }, 'the version moved on while it loaded; its outcome is not recorded');
  if (!(await registry.isBlobServing(job.sha256, { name: job.model, version: job.version }))) sessions.evict(job.sha256);
  await answer(redis, job, answerFor(await registry.getVersion(job.model, job.version), job, generation));
}

function answer(redis: Redis, job: LoadJob, outcome: { signature: ModelSignature } | { error: WireError }): Promise<number> {
  return redis.publish(job.replyTo, encodeReply({ kind: 'load', correlationId: job.correlationId, ...outcome }));
}

/**
 * What a waiting uploader is told about a version this load did not decide: decided before the job ran, or changed
 * while it ran. Only an UNAVAILABLE recorded for this very load (its generation) is the file's fault (422, and the
 * upload deletes the version); an unload or fault since then answers 503, so the version is kept.
 */
function answerFor(record: ModelVersion | undefined, job: LoadJob, generation: number): { signature: ModelSignature } | { error: WireError } {
  if (record === undefined) return { error: errors.modelNotFound(job.model, job.version).toWire() };
  const sameLoad = (record.loadGeneration ?? 0) === generation;
  if (sameLoad && record.state === 'READY' && record.signature !== undefined) return { signature: record.signature };
  if (sameLoad && record.state === 'UNAVAILABLE')
    return { error: { code: ErrorCode.InvalidModel, message: record.reason ?? 'The model version is UNAVAILABLE.' } };
  return { error: errors.modelNotReady(job.model, job.version, record.state).toWire() };
}
