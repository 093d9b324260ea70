import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { errors } from '../errors.js';
import type { FinishedSubject } from '../jobs/durable-writer.js';
import type { Logger } from '../logger.js';
import { webhookQueueName } from '../redis-keys.js';

/** Version of a webhook queue job's data: a rolling upgrade refuses data it does not understand. */
export const webhookJobSchemaVersion = 1;

/**
 * A webhook queue job's data: the subject only. The URL, the secret and the body are read from the job or batch
 * store when the webhook is delivered, so no secret sits in the queue (or in BullMQ's failed-job records).
 */
export const webhookJobDataSchema = z.object({
  schemaVersion: z.literal(webhookJobSchemaVersion),
  kind: z.enum(['job', 'batch']),
  // BullMQ refuses ':' in a custom job id, and the id is part of ours.
  id: z
    .string()
    .min(1)
    .max(200)
    .regex(/^[^:]+$/),
});
export type WebhookJobData = z.infer<typeof webhookJobDataSchema>;

/** The BullMQ job name of a delivery. */
export const webhookJobName = 'deliver';

/**
 * The custom backoff's name: the dispatcher's Worker computes each wait (retryDelayMs with its own
 * GANTRY_WEBHOOK_BASE_DELAY_MS and _MAX_DELAY_MS), so retries wait in BullMQ's delayed set and survive a restart.
 */
export const webhookBackoffType = 'webhook';

/**
 * BullMQ attempts a webhook job is given: the most GANTRY_WEBHOOK_ATTEMPTS allows. The dispatcher gives up itself
 * once its own GANTRY_WEBHOOK_ATTEMPTS are spent, so the producers (workers, API processes) need no webhook settings
 * and a deployment whose processes disagree on them still follows the one that delivers.
 */
export const webhookJobAttemptsCeiling = 30;

/**
 * Finished webhook jobs stay a day (at most 50 000 of each kind): while one stays, adding its subject again (a job
 * re-run after a crash finishing it a second time) is ignored by BullMQ, so a subject is delivered once.
 */
export const webhookJobRetention = {
  removeOnComplete: { age: 24 * 3600, count: 50_000 },
  removeOnFail: { age: 24 * 3600, count: 50_000 },
} as const;

/** The BullMQ job id of a subject's webhook: one per subject, whoever adds it and however often. */
export function webhookJobId(subject: FinishedSubject): string {
  return `${subject.kind}-${subject.id}`;
}

/**
 * Adds the webhooks of finished jobs and batches to the webhook queue (webhookQueueName): workers after writing
 * results, API processes after a cancel. Delivery happens in API processes (webhook-dispatcher.ts).
 */
export class WebhookQueue {
  private readonly queue: Queue;

  /**
   * @param connection a producer connection (fails fast when Redis is away); not closed by close().
   * @param prefix GANTRY_QUEUE_PREFIX.
   */
  constructor(
    connection: Redis,
    prefix: string,
    private readonly logger: Logger,
  ) {
    this.queue = new Queue(webhookQueueName, { connection, prefix });
    this.queue.on('error', (error) => this.logger.warn({ queue: webhookQueueName, err: error.message }, 'queue error'));
  }

  /**
   * Adds one delivery per subject; a subject already added (and still retained: webhookJobRetention) is ignored.
   * Subjects that have no callback may be added too: the dispatcher then delivers nothing.
   * @throws GantryError(INVALID_ARGUMENT) for an id BullMQ cannot use (empty, longer than 200, or with ':'); or
   *   Redis's error (the caller's job is then retried, and adds again).
   */
  async add(subjects: readonly FinishedSubject[]): Promise<void> {
    if (subjects.length === 0) return;
    const jobs = subjects.map((subject) => {
      const data = webhookJobDataSchema.safeParse({ schemaVersion: webhookJobSchemaVersion, kind: subject.kind, id: subject.id });
      if (!data.success) throw errors.invalidArgument(`A webhook subject id must be 1 to 200 characters without ':' (got '${subject.id.slice(0, 60)}').`);
      return {
        name: webhookJobName,
        data: data.data,
        opts: { jobId: webhookJobId(subject), attempts: webhookJobAttemptsCeiling, backoff: { type: webhookBackoffType }, ...webhookJobRetention },
      };
    });
    await this.queue.addBulk(jobs);
  }

  /** Closes the queue (not the connection it was given). */
  async close(): Promise<void> {
    await this.queue.close();
  }
}
