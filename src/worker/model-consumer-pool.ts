import type { Worker as BullWorker } from 'bullmq';
import type { Logger } from '../logger.js';

/** How often idle consumers are looked for, and turns handed to waiting models. */
const sweepIntervalMs = 250;

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
  /** Jobs taken and not yet finished. */
  running: number;
  /** BullMQ found the queue empty since this consumer last took a job: with nothing running, it has no work. */
  drained: boolean;
  closing?: Promise<void>;
  /** A ring that came while the consumer was closing: the model goes back to the front of the waiting list. */
  rungWhileClosing?: boolean;
}

/**
 * Which model queues a worker consumes. A consumer is opened when the model's work doorbell rings and closed
 * once the model has had neither a job nor a ring for `idleMs`, so a worker's Redis connections and idle
 * commands depend on the models in use, never on the models registered: 2,000 idle models cost nothing.
 * At most `maxActive` are open; models rung beyond that wait in arrival order. While some wait, consumers whose
 * queue is empty give up their slot at once, and if that is not enough, the least recently busy ones that have
 * been open at least `minHoldMs` do, so every model with work gets its turn.
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
    this.timer = setInterval(() => this.sweep(), sweepIntervalMs);
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

  /** Runs one job taken by `model`'s consumer, keeping count of what the consumer is doing. */
  async track<T>(model: string, work: () => Promise<T>): Promise<T> {
    const entry = this.open.get(model);
    if (entry === undefined) return work();
    entry.lastActivityAt = Date.now();
    entry.drained = false;
    entry.running++;
    try {
      return await work();
    } finally {
      entry.running--;
      entry.lastActivityAt = Date.now();
      if (this.waiting.size > 0 && this.hasNoWork(entry)) this.makeRoom(Date.now());
    }
  }

  private hasNoWork(entry: OpenConsumer): boolean {
    return entry.drained && entry.running === 0 && entry.closing === undefined;
  }

  /**
   * The model was deleted: it no longer waits for a slot. An open consumer is left to go idle (or to give its slot
   * to a waiting model, its queue being empty) rather than closed now: a model re-created under the same name at
   * once would otherwise lose its consumer to the deletion's event, which may arrive after the new model's ring.
   */
  forget(model: string): void {
    this.waiting.delete(model);
    this.reportSizes();
  }

  /** True while a consumer of the model's queue is open (closing included). */
  isOpen(model: string): boolean {
    return this.open.has(model);
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

  /**
   * Frees slots for the waiting models: first consumers with nothing to do, then (one per sweep, so that a turn
   * lasts) the least recently busy of those that have had `minHoldMs`; those may still have work and wait for
   * their next turn at the back.
   */
  private makeRoom(now: number): void {
    let closing = 0;
    for (const entry of this.open.values()) if (entry.closing !== undefined) closing++;
    let needed = Math.min(this.waiting.size, this.options.maxActive) - (this.options.maxActive - this.open.size) - closing;
    for (const [model, entry] of this.open) {
      if (needed <= 0) return;
      if (!this.hasNoWork(entry)) continue;
      void this.close(model, entry, 'empty, making room for waiting models');
      needed--;
    }
    if (needed <= 0 || closing > 0) return;
    let victim: [string, OpenConsumer] | undefined;
    for (const candidate of this.open) {
      const [, entry] = candidate;
      if (entry.closing !== undefined || now - entry.openedAt < this.options.minHoldMs) continue;
      if (victim === undefined || entry.lastActivityAt < victim[1].lastActivityAt) victim = candidate;
    }
    if (victim === undefined) return;
    const [model, entry] = victim;
    void this.close(model, entry, 'taking turns with waiting models').then(() => {
      if (!this.paused) this.waiting.set(model, Date.now());
      this.fill(Date.now());
    });
  }

  private openConsumer(model: string, now: number): void {
    const consumer = this.hooks.open(model);
    const entry: OpenConsumer = { consumer, openedAt: now, lastActivityAt: now, running: 0, drained: false };
    this.open.set(model, entry);
    consumer.on('drained', () => {
      entry.drained = true;
      if (this.waiting.size > 0 && this.hasNoWork(entry)) this.makeRoom(Date.now());
    });
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
