import { randomUUID } from 'node:crypto';

/**
 * The ids one API process hands out for its queued work, from one random process id:
 * - correlation ids tie each queued request (or load) to its reply: `<first 8 of the process id>-<counter>`;
 * - job ids, for the jobs that need one chosen in advance (a large payload's key is named after its job):
 *   `<process id>-<correlation id of the job's first request>`, unique across processes and restarts.
 * The reply channel is named after the same process id (replyChannel), but nothing is derived from the channel.
 */
export class ProcessIds {
  readonly processId = randomUUID();
  private nextCorrelation = 0;

  /** A process-unique id that ties a queued request to its reply. */
  nextCorrelationId(): string {
    return `${this.processId.slice(0, 8)}-${(this.nextCorrelation++).toString(36)}`;
  }

  /** The BullMQ job id of a job whose first request has `firstCorrelationId`. */
  jobIdFor(firstCorrelationId: string): string {
    return `${this.processId}-${firstCorrelationId}`;
  }
}
