import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { Logger } from '../logger.js';
import { workerAnnouncementKey, workerAnnouncementsKey } from '../redis-keys.js';

/**
 * How often a worker renews its announcement, and how long one lasts unrenewed. A worker that dies without a word
 * (kill -9, a lost machine) drops out of every API's view within the lifetime; three renewals fit in it, so a
 * slow event loop or a Redis hiccup does not make a live worker look gone. A worker that stops normally withdraws
 * its announcement at once.
 */
export const announcementIntervalMs = 2000;
export const announcementLifetimeMs = 3 * announcementIntervalMs;
/** How long a stopping worker waits for Redis to remove its announcement. */
const withdrawWaitMs = 1000;

/** What a worker tells the API processes about itself: the models it serves and the device it runs them on. */
export const workerAnnouncementSchema = z.object({
  id: z.string().max(100),
  /** GANTRY_WORKER_MODELS, parsed (workers-view/model-patterns.ts). */
  patterns: z.array(z.string().max(200)).max(100),
  device: z.string().max(20),
  host: z.string().max(255),
  pid: z.number().int(),
  startedAt: z.number(),
});
export type WorkerAnnouncement = z.infer<typeof workerAnnouncementSchema>;

/**
 * A worker's end of the pool view: a key with a TTL holding its announcement, renewed every
 * `announcementIntervalMs` (one pipelined SET and SADD), and its id in the set of announced workers, so readers
 * find it without scanning (live-workers.ts).
 */
export class WorkerAnnouncer {
  readonly id = randomUUID();
  private timer: NodeJS.Timeout | undefined;
  private announcement: WorkerAnnouncement | undefined;
  /** Announces again as soon as the connection is (re)established, rather than at the next tick. */
  private readonly onReady = () => void this.renew();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly logger: Logger,
  ) {}

  /** Announces the worker now and keeps renewing it until `withdraw`. */
  async start(patterns: readonly string[], device: string): Promise<void> {
    this.announcement = { id: this.id, patterns: [...patterns], device, host: os.hostname(), pid: process.pid, startedAt: Date.now() };
    this.redis.on('ready', this.onReady);
    await this.renew();
    this.timer = setInterval(() => void this.renew(), announcementIntervalMs);
    this.timer.unref();
  }

  private async renew(): Promise<void> {
    // While Redis is away the worker's connection would queue every renewal until it is back: one is enough, and
    // the first after the reconnect brings the announcement back (also after a Redis that lost its data).
    if (this.announcement === undefined || this.redis.status !== 'ready') return;
    try {
      // Pipelined, not a transaction: two commands instead of four, and either alone is harmless.
      await this.redis
        .pipeline()
        .set(workerAnnouncementKey(this.prefix, this.id), JSON.stringify(this.announcement), 'PX', announcementLifetimeMs)
        .sadd(workerAnnouncementsKey(this.prefix), this.id)
        .exec();
    } catch (error) {
      // Renewed at the next tick; meanwhile the announcement lives out its lifetime.
      this.logger.warn({ err: (error as Error).message }, 'could not renew the worker announcement');
    }
  }

  /**
   * Stops renewing and removes the announcement (a worker shutting down stops serving before it is gone). Waits at
   * most `withdrawWaitMs`: a shutdown while Redis is away must not wait for it; the announcement then expires.
   */
  async withdraw(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.redis.off('ready', this.onReady);
    if (this.announcement === undefined) return;
    this.announcement = undefined;
    let timer: NodeJS.Timeout | undefined;
    const removal = this.redis.pipeline().del(workerAnnouncementKey(this.prefix, this.id)).srem(workerAnnouncementsKey(this.prefix), this.id).exec();
    const outcome = await Promise.race([
      removal.then(
        () => 'removed',
        (error: Error) => error.message,
      ),
      new Promise<string>((resolve) => (timer = setTimeout(() => resolve(`no answer from Redis within ${withdrawWaitMs} ms`), withdrawWaitMs))),
    ]);
    clearTimeout(timer);
    if (outcome !== 'removed') this.logger.warn({ err: outcome }, 'could not withdraw the worker announcement; it expires by itself');
  }
}
