import type { Redis } from 'ioredis';
import type { DurableWriter, FinishedSubject } from './durable-writer.js';
import { JobStore } from './job-store.js';

/**
 * The durable writer of asynchronous jobs: each request of a queue job is one job of the job store (its
 * correlation id is the job's id). A job whose run ended at its deadline ends `expired`, one whose request
 * failed ends `failed` (its answer is the error, as the synchronous call would have answered), else `succeeded`.
 */
export function jobResultsWriter(redis: Redis, prefix: string): DurableWriter {
  const store = new JobStore(redis, prefix);
  return {
    async begin(job) {
      const wanted = new Set<string>();
      for (const request of job.requests) if (await store.begin(request.correlationId)) wanted.add(request.correlationId);
      return wanted;
    },
    async write(_job, _destination, answers) {
      const finished: FinishedSubject[] = [];
      for (const answer of answers) {
        const state = answer.expired === true ? 'expired' : answer.error !== undefined ? 'failed' : 'succeeded';
        const outcome = await store.write(answer.correlationId, answer.stored, state, answer.error);
        if (outcome.hasCallback) finished.push({ kind: 'job', id: answer.correlationId });
      }
      return finished;
    },
  };
}
