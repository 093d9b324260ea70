import type { Job } from 'bullmq';
import { loadJobSchema } from '../queue/job-contracts.js';
import { FencedOffError, leaveToItsOwner, LockFence } from './job-fence.js';
import { processLoadJob, type LoadProcessorDependencies } from './load-processor.js';
import { answerUnreadableJob } from './unreadable-job.js';

export interface LoadJobHandlerOptions {
  /** GANTRY_JOB_LOCK_MS: how long a job's lock lasts unless renewed (BullMQ's lockDuration). */
  lockDurationMs: number;
}

/**
 * What the control queue's consumer does with one load job, as handleInferenceJob does for inference jobs: a
 * job that fails the contract is answered at once and failed without retries; a job whose lock this worker lost
 * is left to the worker that took it over.
 */
export async function handleLoadJob(
  job: Job,
  dependencies: Omit<LoadProcessorDependencies, 'fence'> & { prefix: string },
  options: LoadJobHandlerOptions,
): Promise<void> {
  const parsed = loadJobSchema.safeParse(job.data);
  if (!parsed.success) return answerUnreadableJob(job, 'load', parsed.error, dependencies);
  const fence = new LockFence(job, options.lockDurationMs, dependencies.metrics);
  try {
    await processLoadJob(parsed.data, { ...dependencies, fence });
  } catch (error) {
    if (error instanceof FencedOffError) throw leaveToItsOwner(job, 'load', error, dependencies);
    throw error;
  }
}
