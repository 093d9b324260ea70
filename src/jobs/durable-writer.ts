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

/** Tries to queue a finished subject's webhook this many times (a short Redis hiccup) before failing the write. */
const webhookQueueAttempts = 4;

/**
 * The worker's one entry to durable destinations: picks the writer of a job's destination kind, and queues a
 * webhook for each subject a write finished (the queue keeps one per subject, so queueing again is harmless).
 * A webhook that cannot be queued after a few tries fails the write; the job is then re-run, and `begin` queues
 * again the webhooks of the asynchronous jobs it finds already final, so a finished job never silently loses its
 * hook. (A batch's is only retried here: its line answers do not say whether the batch as a whole is finished.)
 */
export class DurableResults {
  constructor(
    private readonly writers: { job: DurableWriter; batch: DurableWriter },
    private readonly webhooks: FinishedSubjectsQueue | undefined,
  ) {}

  async begin(job: InferenceJob & { durable: DurableDestination }): Promise<Set<string>> {
    const wanted = await this.writers[job.durable.kind].begin(job, job.durable);
    if (job.durable.kind === 'job' && wanted.size < job.requests.length) {
      const final = job.requests
        .filter((request) => !wanted.has(request.correlationId))
        .map((request) => ({ kind: 'job' as const, id: request.correlationId }));
      await this.queueWebhooks(final);
    }
    return wanted;
  }

  async write(job: InferenceJob & { durable: DurableDestination }, answers: readonly DurableAnswer[]): Promise<void> {
    const finished = await this.writers[job.durable.kind].write(job, job.durable, answers);
    await this.queueWebhooks(finished);
  }

  private async queueWebhooks(subjects: FinishedSubject[]): Promise<void> {
    if (subjects.length === 0 || this.webhooks === undefined) return;
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.webhooks.add(subjects);
        return;
      } catch (error) {
        if (attempt >= webhookQueueAttempts) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** attempt));
      }
    }
  }
}
