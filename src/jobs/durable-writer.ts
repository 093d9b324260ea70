import type { DurableDestination, InferenceJob } from '../queue/job-contracts.js';
import type { WireError } from '../errors.js';

/** A job or batch whose outcome is final: what a webhook is delivered for. */
export interface FinishedSubject {
  kind: 'job' | 'batch';
  id: string;
}

/** One request's answer, as the worker hands it to the durable destination of its job. */
export interface DurableAnswer {
  correlationId: string;
  /** The answer in stored form (stored-answer.ts encodeStoredAnswer). */
  stored: Buffer;
  /** The request's error, when it failed (also inside `stored`): decides succeeded or failed without decoding. */
  error?: WireError;
  /** The request was not run because its job's deadline (GANTRY_JOB_DEADLINE_S) had passed: it ends `expired`. */
  expired?: boolean;
}

/**
 * Where a durable job's answers go (job-contracts.ts `durable`): one implementation for asynchronous jobs
 * (job-results.ts), one for batch lines (batch-results.ts). Delivery into a worker is at-least-once, so both
 * methods may run several times for one job, also on different workers, and must be idempotent:
 * - `begin` runs before the job's requests run. It marks them running (counting an attempt) and answers which
 *   correlation ids still want running: not cancelled, not answered already, not past their deadline. A job
 *   none of whose requests want running is completed without running anything.
 * - `write` runs after the run (while the worker still holds the job's lock). Each answer is written at most
 *   once, atomically with the state change it causes (a re-run overwrites nothing already written), and the
 *   subjects this call finished (and only those) are returned, so that each gets one webhook.
 */
export interface DurableWriter {
  begin(job: InferenceJob, destination: DurableDestination): Promise<Set<string>>;
  write(job: InferenceJob, destination: DurableDestination, answers: readonly DurableAnswer[]): Promise<FinishedSubject[]>;
}

/** Where webhooks of finished subjects are queued (webhooks/webhook-queue.ts). */
export interface FinishedSubjectsQueue {
  add(subjects: FinishedSubject[]): Promise<void>;
}

/**
 * The worker's one entry to durable destinations: picks the writer of a job's destination kind, and queues a
 * webhook for each subject a write finished. A webhook that cannot be queued fails the write (the job is then
 * re-run, finds its answers written, and queues it again), so a finished subject never silently loses its hook.
 */
export class DurableResults {
  constructor(
    private readonly writers: { job: DurableWriter; batch: DurableWriter },
    private readonly webhooks: FinishedSubjectsQueue | undefined,
  ) {}

  begin(job: InferenceJob & { durable: DurableDestination }): Promise<Set<string>> {
    return this.writers[job.durable.kind].begin(job, job.durable);
  }

  async write(job: InferenceJob & { durable: DurableDestination }, answers: readonly DurableAnswer[]): Promise<void> {
    const finished = await this.writers[job.durable.kind].write(job, job.durable, answers);
    if (finished.length > 0) await this.webhooks?.add(finished);
  }
}
