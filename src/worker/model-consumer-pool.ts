import type { Worker as BullWorker } from 'bullmq';
import type { Logger } from '../logger.js';

export interface ModelConsumerPoolOptions {
  /** GANTRY_MAX_ACTIVE_MODEL_QUEUES: consumers open at once (each holds one blocking Redis connection). */
  maxActive: number;
  /** GANTRY_MODEL_QUEUE_IDLE_MS: a consumer with no job and no ring for this long is closed. */
  idleMs: number;
  /** How long a consumer stays open at least before it may be closed to make room for a waiting model. */
  minHoldMs: number;
  /** How long a new consumer may take to get its Redis connection before its model counts as unserveable. */
  connectTimeoutMs: number;
}

export interface ModelConsumerPoolHooks {
  /** Opens a BullMQ consumer on the model's queue. */
  open(model: string): BullWorker;
  /** A consumer could not get a Redis connection: the model's queued requests should get an answer now. */
  unserveable(model: string, reason: string): void;
  /** The number of open consumers and of models waiting for a slot changed. */
  sizes?(active: number, waiting: number): void;
}

interface OpenConsumer {
  consumer: BullWorker;
  openedAt: number;
  /** The last ring or job seen for the model. */
  lastActivityAt: number;
  closing?: Promise<void>;
  /** A ring that came while the consumer was closing: the model goes back to the front of the waiting list. */
  rungWhileClosing?: boolean;
}

/**
 * Which model queues a worker consumes. A consumer is opened when the model's work doorbell rings and closed
 * once the model has had neither a job nor a ring for `idleMs`, so a worker's Redis connections and idle
 * commands depend on the models in use, never on the models registered: 2,000 idle models cost nothing.
 * At most `maxActive` are open; models rung beyond that wait in arrival order, and while some wait, the least
 * recently busy consumer (open at least `minHoldMs`) is closed to make room, so every model with work gets
 * its turn.
 */
export class ModelConsumerPool {
  private readonly open = new Map<string, OpenConsumer>();
  /** Models with work and no consumer yet, in the order they rang (a Map keeps insertion order). */
  private readonly waiting = new Map<string, number>();
  /** Models whose consumer could not connect, and when they may be tried again. */
  private readonly backoffUntil = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private paused = false;

  constructor(
    private readonly options: ModelConsumerPoolOptions,
    private readonly hooks: ModelConsumerPoolHooks,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.sweep(), Math.max(50, Math.min(1000, this.options.idleMs / 4, this.options.minHoldMs / 2)));
    this.timer.unref();
  }

  /** Models whose doorbell rang: open their consumers (or queue them for a slot) and keep open ones open. */
  rung(models: Iterable<string>): void {
    const now = Date.now();
    for (const model of models) {
      const entry = this.open.get(model);
      if (entry !== undefined) {
        entry.lastActivityAt = now;
        if (entry.closing !== undefined) entry.rungWhileClosing = true;
      } else if (!this.waiting.has(model)) {
        this.waiting.set(model, now);
      }
    }
    this.fill(now);
  }

  /** A consumer took a job of `model`: it is busy, so not idle. */
  noteJob(model: string): void {
    const entry = this.open.get(model);
    if (entry !== undefined) entry.lastActivityAt = Date.now();
  }

  /** The model was deleted: stop consuming its queue now. */
  forget(model: string): void {
    this.waiting.delete(model);
    const entry = this.open.get(model);
    if (entry !== undefined) void this.close(model, entry, 'model deleted');
  }

  /** True while a consumer of the model's queue is open (closing included). */
  isOpen(model: string): boolean {
    return this.open.has(model);
  }

  get activeCount(): number {
    return this.open.size;
  }

  get waitingCount(): number {
    return this.waiting.size;
  }

  /** Stops opening consumers and pauses the open ones (a restart that waits for the jobs in progress). */
  async pauseAll(): Promise<void> {
    this.paused = true;
    this.stopTimer();
    await Promise.allSettled([...this.open.values()].map(({ consumer }) => consumer.pause(true)));
  }

  /** Closes every consumer; BullMQ's close waits for the jobs they have in progress. */
  async closeAll(): Promise<void> {
    this.paused = true;
    this.stopTimer();
    this.waiting.clear();
    await Promise.allSettled([...this.open].map(([model, entry]) => this.close(model, entry, 'worker closing')));
  }

  private stopTimer(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  private sweep(): void {
    const now = Date.now();
    for (const [model, entry] of this.open) {
      if (entry.closing === undefined && now - entry.lastActivityAt >= this.options.idleMs) void this.close(model, entry, 'idle');
    }
    this.fill(now);
    if (this.waiting.size > 0 && this.open.size >= this.options.maxActive) this.makeRoom(now);
  }

  /** Opens consumers for waiting models while there are free slots. */
  private fill(now: number): void {
    if (this.paused) return;
    for (const [model] of this.waiting) {
      if (this.open.size >= this.options.maxActive) break;
      if ((this.backoffUntil.get(model) ?? 0) > now) continue;
      this.waiting.delete(model);
      this.backoffUntil.delete(model);
      this.openConsumer(model, now);
    }
    this.reportSizes();
  }

  /** Closes the least recently busy consumer that has had its minimum turn, so a waiting model can run. */
  private makeRoom(now: number): void {
    let victim: [string, OpenConsumer] | undefined;
    for (const candidate of this.open) {
      const [, entry] = candidate;
      if (entry.closing !== undefined) return; // one is already making room
      if (now - entry.openedAt < this.options.minHoldMs) continue;
      if (victim === undefined || entry.lastActivityAt < victim[1].lastActivityAt) victim = candidate;
    }
    if (victim === undefined) return;
    const [model, entry] = victim;
    // It may still have work: it waits for its next turn at the back, behind the models that waited already.
    void this.close(model, entry, 'making room for waiting models').then(() => {
      if (Date.now() - entry.lastActivityAt < this.options.idleMs && !this.paused) this.waiting.set(model, Date.now());
      this.fill(Date.now());
    });
  }

  private openConsumer(model: string, now: number): void {
    const consumer = this.hooks.open(model);
    const entry: OpenConsumer = { consumer, openedAt: now, lastActivityAt: now };
    this.open.set(model, entry);
    this.watchConnection(model, entry);
  }

  /**
   * A consumer that cannot connect (Redis at maxclients, say) would leave its model's callers waiting for their
   * whole timeout: past `connectTimeoutMs` it is closed, the failure logged, and its callers answered.
   */
  private watchConnection(model: string, entry: OpenConsumer): void {
    let lastError: string | undefined;
    const onError = (error: Error) => (lastError = error.message);
    entry.consumer.on('error', onError);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), this.options.connectTimeoutMs)));
    void Promise.race([entry.consumer.waitUntilReady().then(() => true), timedOut])
      .catch(() => false)
      .then((ready) => {
        clearTimeout(timer);
        entry.consumer.off('error', onError);
        if (ready || this.open.get(model) !== entry || entry.closing !== undefined) return;
        const reason = lastError ?? `no Redis connection within ${this.options.connectTimeoutMs} ms`;
        this.logger.error({ model, err: reason }, 'a model queue consumer could not get a Redis connection; answering its queued requests with 503');
        this.backoffUntil.set(model, Date.now() + this.options.connectTimeoutMs);
        void this.close(model, entry, 'no connection', { force: true });
        this.hooks.unserveable(model, reason);
      });
  }

  private close(model: string, entry: OpenConsumer, why: string, { force = false } = {}): Promise<void> {
    entry.closing ??= entry.consumer
      .close(force)
      .catch((error: Error) => this.logger.warn({ model, err: error.message }, 'closing a model queue consumer failed'))
      .then(() => {
        if (this.open.get(model) === entry) this.open.delete(model);
        this.logger.debug({ model, why }, 'stopped consuming model queue');
        if (entry.rungWhileClosing === true && !this.paused && !this.waiting.has(model)) this.waiting.set(model, Date.now());
        this.fill(Date.now());
      });
    return entry.closing;
  }

  private reportSizes(): void {
    this.hooks.sizes?.(this.open.size, this.waiting.size);
  }
}
