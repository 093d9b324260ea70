import type { Job } from 'bullmq';
import { inferenceJobSchema } from '../queue/job-contracts.js';
import { processInferenceJob, type InferenceProcessorDependencies } from './inference-processor.js';
import { FencedOffError, leaveToItsOwner, LockFence } from './job-fence.js';
import { answerUnreadableJob } from './unreadable-job.js';

export interface InferenceJobHandlerOptions {
  /** GANTRY_MAX_JOB_ATTEMPTS: a job started this many times is answered with an error instead of run again. */
  maxAttempts: number;
  /** GANTRY_JOB_LOCK_MS: how long a job's lock lasts unless renewed (BullMQ's lockDuration). */
  lockDurationMs: number;
}

/**
 * What a model queue's consumer does with one BullMQ job: parse its data against the job contract and run it.
 * The one place a worker turns a raw job into work, so every consumer treats jobs alike.
 *
 * - A job that fails the contract is answered with an error at once (when its reply address can be read) and
 *   failed without retries (unreadable-job.ts).
 * - The job is fenced (job-fence.ts): if this worker lost the job's lock (its event loop stalled) before the run
 *   or before the answer, it drops the job without counting or answering it, and leaves it in BullMQ to the
 *   worker that took it over. The statistics it is given should count only once BullMQ has completed the job
 *   (the worker passes a CompletionGatedStatistics collector), since a stall can also land after the fence.
 */
export async function handleInferenceJob(
  job: Job,
  dependencies: Omit<InferenceProcessorDependencies, 'attempt' | 'maxAttempts' | 'fence'>,
  options: InferenceJobHandlerOptions,
): Promise<void> {
  const parsed = inferenceJobSchema.safeParse(job.data);
  if (!parsed.success) return answerUnreadableJob(job, 'inference', parsed.error, dependencies);
  const fence = new LockFence(job, options.lockDurationMs, dependencies.metrics);
  try {
    await processInferenceJob(parsed.data, { ...dependencies, attempt: job.attemptsStarted, maxAttempts: options.maxAttempts, fence });
  } catch (error) {
    if (error instanceof FencedOffError) throw leaveToItsOwner(job, 'inference', error, dependencies);
    throw error;
  }
}
