import { lookup } from 'node:dns/promises';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../config.js';
import { GantryError } from '../errors.js';
import type { FinishedSubject } from '../jobs/durable-writer.js';
import type { Logger } from '../logger.js';
import type { WebhookDeliveryOutcome, WebhookMetrics } from '../metrics/webhook-metrics.js';
import { webhookDeliveriesKey, webhookQueueName } from '../redis-keys.js';
import { deliverOnce, retryDelayMs, type DeliveryAttempt, type DeliveryOptions } from './webhook-delivery.js';
import type { WebhookCall, WebhookSource } from './webhook-source.js';
import { parseWebhookAllowList, resolveWebhookTarget, type WebhookAllowList, type WebhookTarget } from './webhook-target.js';
import { webhookBackoffType, webhookJobAttemptsCeiling, webhookJobDataSchema, webhookJobId } from './webhook-queue.js';

/** A subject's list of delivery attempts keeps its last this many (a job shows them as `deliveries`). */
export const maxRecordedDeliveries = 50;

/** How long the list of attempts lives when the source does not say how long its subject does. */
export const defaultDeliveriesRetentionMs = 24 * 3600 * 1000;

export interface WebhookDispatcherOptions {
  /** GANTRY_QUEUE_PREFIX. */
  prefix: string;
  /** GANTRY_WEBHOOK_ALLOW, parsed. */
  allowList: WebhookAllowList;
  /** Timeout, bounded read, attempts in all and the backoff (GANTRY_WEBHOOK_*). */
  delivery: DeliveryOptions;
  /** Deliveries under way at once (GANTRY_WEBHOOK_CONCURRENCY): a slow receiver holds one slot, up to the timeout. */
  concurrency: number;
  metrics?: WebhookMetrics;
  /** How a callback host's addresses are looked up; default the system resolver (tests give their own). */
  resolve?: (host: string) => Promise<Array<{ address: string; family: number }>>;
}

/** The dispatcher's options from the configuration (everything but metrics and the resolver). */
export function webhookDispatcherOptions(
  config: Pick<
    Config,
    | 'GANTRY_QUEUE_PREFIX'
    | 'GANTRY_WEBHOOK_ALLOW'
    | 'GANTRY_WEBHOOK_TIMEOUT_MS'
    | 'GANTRY_WEBHOOK_MAX_RESPONSE_BYTES'
    | 'GANTRY_WEBHOOK_ATTEMPTS'
    | 'GANTRY_WEBHOOK_BASE_DELAY_MS'
    | 'GANTRY_WEBHOOK_MAX_DELAY_MS'
    | 'GANTRY_WEBHOOK_CONCURRENCY'
  >,
): WebhookDispatcherOptions {
  return {
    prefix: config.GANTRY_QUEUE_PREFIX,
    allowList: parseWebhookAllowList(config.GANTRY_WEBHOOK_ALLOW),
    delivery: {
      timeoutMs: config.GANTRY_WEBHOOK_TIMEOUT_MS,
      maxResponseBytes: config.GANTRY_WEBHOOK_MAX_RESPONSE_BYTES,
      attempts: config.GANTRY_WEBHOOK_ATTEMPTS,
      baseDelayMs: config.GANTRY_WEBHOOK_BASE_DELAY_MS,
      maxDelayMs: config.GANTRY_WEBHOOK_MAX_DELAY_MS,
    },
    concurrency: config.GANTRY_WEBHOOK_CONCURRENCY,
  };
}

/**
 * Delivers the webhooks of finished jobs and batches (issue 16): a BullMQ Worker on the webhook queue, run by API
 * processes. Each queue job is one subject's webhook; each run of it is one attempt:
 * - the source says what to deliver (nothing when the subject has no callback or is gone);
 * - the callback URL passes the SSRF guard (webhook-target.ts) or the attempt is recorded as refused and the
 *   webhook is not retried (a URL that is refused now is refused later too); a host that does not resolve is a
 *   failed attempt like any other (DNS can recover);
 * - deliverOnce POSTs the body, signed with a fresh timestamp, to the checked address;
 * - the attempt `{at, status?, error?}` is appended to the subject's deliveries list (the last 50, kept as long as
 *   the subject);
 * - a 2xx ends it; anything else fails the run, and BullMQ runs it again after retryDelayMs (the wait lies in
 *   Redis, so an API restart does not lose it) until GANTRY_WEBHOOK_ATTEMPTS are spent.
 * Deliveries run GANTRY_WEBHOOK_CONCURRENCY at once, each bounded by GANTRY_WEBHOOK_TIMEOUT_MS, so a slow receiver
 * delays only its own webhooks.
 */
export class WebhookDispatcher {
  private readonly worker: Worker;
  private readonly resolve: (host: string) => Promise<Array<{ address: string; family: number }>>;
  private running: Promise<void> | undefined;

  /**
   * @param connection a consumer connection (createRedis(url, 'consumer', …): BullMQ needs maxRetriesPerRequest
   *   null); also used to record attempts; not closed by close().
   */
  constructor(
    private readonly connection: Redis,
    private readonly source: WebhookSource,
    private readonly options: WebhookDispatcherOptions,
    private readonly logger: Logger,
  ) {
    this.resolve = options.resolve ?? ((host) => lookup(host, { all: true }));
    this.worker = new Worker(webhookQueueName, (job) => this.attempt(job), {
      connection,
      prefix: options.prefix,
      concurrency: options.concurrency,
      autorun: false,
      // Seconds an idle worker blocks waiting for a job: short, so close() returns soon.
      drainDelay: 1,
      // Stalled jobs (an API process died mid-attempt) are run again; the attempt may then reach the receiver
      // twice, which webhooks allow (at least once: receivers deduplicate by the subject's id).
      maxStalledCount: 3,
      settings: {
        backoffStrategy: (attemptsMade, type) =>
          // attemptsMade counts the attempt that just failed, so the next one is attemptsMade + 1.
          type === webhookBackoffType ? retryDelayMs(attemptsMade + 1, options.delivery) : options.delivery.baseDelayMs,
      },
    });
    this.worker.on('error', (error) => this.logger.warn({ queue: webhookQueueName, err: error.message }, 'webhook dispatcher error'));
    this.worker.on('failed', (job, error) => {
      // Failed runs that will be retried are logged at debug in attempt(); this is a webhook given up on.
      if (job !== undefined && job.finishedOn !== undefined)
        this.logger.warn({ queue: webhookQueueName, webhook: job.id, attempts: job.attemptsMade, err: error.message }, 'webhook not delivered');
    });
  }

  /** Starts taking deliveries (those queued while no dispatcher ran included). */
  async start(): Promise<void> {
    if (this.running !== undefined) return;
    this.running = this.worker.run().catch((error: Error) => this.logger.error({ queue: webhookQueueName, err: error.message }, 'webhook dispatcher stopped'));
    await this.worker.waitUntilReady();
  }

  /**
   * Stops taking deliveries and waits for those under way (each ends within GANTRY_WEBHOOK_TIMEOUT_MS). Retries
   * waiting for their time stay in Redis for the next dispatcher, here or in another API process.
   */
  async close(): Promise<void> {
    await this.worker.close();
    await this.running;
  }

  /** One attempt of one subject's webhook: resolves when it was delivered (or there is nothing to deliver). */
  private async attempt(job: Job): Promise<void> {
    const parsed = webhookJobDataSchema.safeParse(job.data);
    if (!parsed.success)
      throw new UnrecoverableError(`unreadable webhook job data (schemaVersion ${String((job.data as { schemaVersion?: unknown })?.schemaVersion)})`);
    const subject: FinishedSubject = { kind: parsed.data.kind, id: parsed.data.id };
    const attemptNumber = job.attemptsMade + 1;
    const last = attemptNumber >= Math.min(this.options.delivery.attempts, webhookJobAttemptsCeiling);
    let call: WebhookCall | undefined;
    try {
      call = await this.source.describe(subject);
    } catch (error) {
      // The store could not answer (Redis away): retried like a failed delivery, and recorded nowhere (nothing was
      // sent); it spends an attempt, so a store that never answers does not keep the webhook forever.
      const message = `the webhook's subject could not be read: ${(error as Error).message}`;
      throw last ? new UnrecoverableError(message) : new Error(message);
    }
    if (call === undefined) return;

    const target = await this.checkTarget(call);
    if ('refused' in target) {
      await this.record(subject, call, target.refused);
      this.count('refused');
      this.logger.debug({ webhook: job.id, err: target.refused.error }, 'webhook callback refused');
      throw new UnrecoverableError(target.refused.error);
    }
    let outcome: DeliveryAttempt;
    if ('failed' in target) outcome = target.failed;
    else {
      const started = process.hrtime.bigint();
      outcome = await deliverOnce(target.target, JSON.stringify(call.body), call.secret, this.options.delivery);
      this.options.metrics?.deliveryDuration.observe(Number(process.hrtime.bigint() - started) / 1e9);
    }
    await this.record(subject, call, outcome);
    if (outcome.error === undefined) {
      this.count('delivered');
      return;
    }
    this.count(last ? 'gave_up' : 'failed_attempt');
    this.logger.debug({ webhook: job.id, attempt: attemptNumber, err: outcome.error }, 'webhook attempt failed');
    if (last) throw new UnrecoverableError(`${outcome.error} (attempt ${attemptNumber} of ${this.options.delivery.attempts}: giving up)`);
    throw new Error(outcome.error);
  }

  /**
   * The SSRF guard's verdict: a target, a refusal (never retried), or a failed attempt (the host did not resolve
   * now: DNS may answer on a later attempt).
   */
  private async checkTarget(call: WebhookCall): Promise<{ target: WebhookTarget } | { refused: DeliveryAttempt } | { failed: DeliveryAttempt }> {
    const at = new Date().toISOString();
    let lookupFailed = false;
    const resolve = (host: string) =>
      this.resolve(host).catch((error: unknown) => {
        lookupFailed = true;
        throw error;
      });
    try {
      return { target: await resolveWebhookTarget(call.url, this.options.allowList, resolve) };
    } catch (error) {
      const message = error instanceof GantryError ? error.message : `the callback could not be checked: ${(error as Error).message}`;
      if (lookupFailed || !(error instanceof GantryError)) return { failed: { at, error: message } };
      return { refused: { at, error: `refused: ${message}` } };
    }
  }

  /** Appends an attempt to the subject's deliveries list: the last maxRecordedDeliveries, kept as long as the subject. */
  private async record(subject: FinishedSubject, call: WebhookCall, attempt: DeliveryAttempt): Promise<void> {
    const key = webhookDeliveriesKey(this.options.prefix, subject);
    const retentionMs = call.retentionMs !== undefined && call.retentionMs > 0 ? Math.ceil(call.retentionMs) : defaultDeliveriesRetentionMs;
    try {
      await this.connection.multi().rpush(key, JSON.stringify(attempt)).ltrim(key, -maxRecordedDeliveries, -1).pexpire(key, retentionMs).exec();
    } catch (error) {
      // The attempt happened whatever the list says: failing here would deliver a delivered webhook again, or make
      // an attempt BullMQ does not count as the last one.
      this.logger.warn({ webhook: webhookJobId(subject), err: (error as Error).message }, 'could not record a webhook delivery attempt');
    }
  }

  private count(outcome: WebhookDeliveryOutcome): void {
    this.options.metrics?.deliveries.inc({ outcome });
  }
}
