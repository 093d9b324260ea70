import type { Job } from 'bullmq';
import { inferenceJobSchema } from '../queue/job-contracts.js';
import { processInferenceJob, type InferenceProcessorDependencies } from './inference-processor.js';

export interface InferenceJobHandlerOptions {
  /** GANTRY_MAX_JOB_ATTEMPTS: a job started this many times is answered with an error instead of run again. */
  maxAttempts: number;
  /** GANTRY_JOB_LOCK_MS: how long a job's lock lasts unless renewed (BullMQ's lockDuration). */
  lockDurationMs: number;
}

/**
 * What a model queue's consumer does with one BullMQ job: parse its data against the job contract and run it.
 * The one place a worker turns a raw job into work, so every consumer treats jobs alike.
 */
export async function handleInferenceJob(
  job: Job,
  dependencies: Omit<InferenceProcessorDependencies, 'attempt' | 'maxAttempts'>,
  options: InferenceJobHandlerOptions,
): Promise<void> {
  await processInferenceJob(inferenceJobSchema.parse(job.data), { ...dependencies, attempt: job.attemptsStarted, maxAttempts: options.maxAttempts });
}
