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
