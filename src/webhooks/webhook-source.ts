import type { FinishedSubject } from '../jobs/durable-writer.js';

/** What one webhook of a finished job or batch is: where it goes, how it is signed, what it says. */
export interface WebhookCall {
  /** The callback URL the caller gave (checked by the SSRF guard before every attempt). */
  url: string;
  /** Signs each attempt (`gantry-signature`) when present. Read at delivery time, never carried in queue jobs. */
  secret?: string;
  /** JSON to POST (serialised once per attempt). */
  body: unknown;
  /**
   * How long the subject's record lives from now (ms): its list of delivery attempts is kept as long. Default: a
   * day (webhook-dispatcher.ts defaultDeliveriesRetentionMs).
   */
  retentionMs?: number;
}

/**
 * Where the dispatcher learns what to deliver for a subject: the asynchronous job store and the batch store each
 * answer for their kind. Read at delivery time, so queue jobs carry only the subject (no URL, secret or body).
 */
export interface WebhookSource {
  /** The subject's webhook; undefined when it has no callback or is gone (expired, deleted): nothing is delivered. */
  describe(subject: FinishedSubject): Promise<WebhookCall | undefined>;
}
