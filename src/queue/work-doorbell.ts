import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import { isValidQualifiedModelName } from '../auth/model-names.js';
import { workDoorbellKey, type WorkKind } from '../redis-keys.js';

/** The stream field a ring names its model in, by the queue that has work. */
const ringField: Record<WorkKind, string> = { sync: 'model', async: 'async-model' };

/**
 * Entries the doorbell stream keeps (approximately: MAXLEN ~). A worker reads it in pages of `readCount`, so it
 * only misses a ring when it falls this far behind; producers ring at most once per model per ring interval.
 */
const streamMaxEntries = 10_000;
const readCount = 1000;
/** How long one XREAD blocks (ms): short enough that a closed listener's connection is noticed soon. */
const readBlockMs = 5000;

/**
 * The producer's end of the work doorbell: after queuing a job for a model, tell the workers that the model has
 * work, so they start consuming its queue. Workers keep a model's queue for GANTRY_MODEL_QUEUE_IDLE_MS after its
 * last ring or job, so ringing once per `ringIntervalMs` (far below that) per model is enough: a busy model costs
 * one XADD a second, not one per job.
 */
export class WorkDoorbell {
  private readonly lastRungAt = new Map<string, number>();
  private lastPrunedAt = Date.now();
  private readonly key: string;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly logger: Logger,
    private readonly ringIntervalMs = 1000,
    /** Which of each model's queues this producer adds to. */
    private readonly kind: WorkKind = 'sync',
  ) {
    this.key = workDoorbellKey(prefix);
    // A ring sent just before Redis lost its data (a restart without persistence) is gone: after a reconnect the
    // next job of every model rings again instead of waiting out the interval.
    redis.on('ready', () => this.lastRungAt.clear());
  }

  /** The model was deleted: its next job (a model re-created under the name) rings at once. */
  forget(model: string): void {
    this.lastRungAt.delete(model);
  }

  /** Announces that `model` has queued work (at most once per ring interval; never throws). */
  ring(model: string): void {
    const now = Date.now();
    this.prune(now);
    const last = this.lastRungAt.get(model);
    if (last !== undefined && now - last < this.ringIntervalMs) return;
    this.lastRungAt.set(model, now);
    this.redis.xadd(this.key, 'MAXLEN', '~', String(streamMaxEntries), '*', ringField[this.kind], model).catch((error: Error) => {
      // Ring again with the next job: until some worker hears it, this model's jobs wait in Redis.
      this.lastRungAt.delete(model);
      this.logger.warn({ model, err: error.message }, 'could not announce queued work to the workers');
    });
  }

  /** Forgets rings older than the interval, so the map holds only the models rung in the last few seconds. */
  private prune(now: number): void {
    if (now - this.lastPrunedAt < 10 * this.ringIntervalMs) return;
    this.lastPrunedAt = now;
    for (const [model, rungAt] of this.lastRungAt) if (now - rungAt >= this.ringIntervalMs) this.lastRungAt.delete(model);
  }
}

/**
 * The worker's end of the work doorbell: one blocking connection that reads every ring (XREAD does not consume,
 * so every worker hears every ring) and reports the models announced. It starts `lookbackMs` in the past, so a
 * worker that (re)starts picks up the models that had work lately.
 */
export class DoorbellListener {
  private stopped = false;
  private loop: Promise<void> | undefined;
  private readonly key: string;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly onRung: (models: Set<string>, kind: WorkKind) => void,
    private readonly logger: Logger,
    private readonly lookbackMs: number,
  ) {
    this.key = workDoorbellKey(prefix);
  }

  start(): void {
    this.loop ??= this.listen();
  }

  private async listen(): Promise<void> {
    let lastId = `${Math.max(0, Date.now() - this.lookbackMs)}-0`;
    let failures = 0;
    while (!this.stopped) {
      try {
        const reply = (await this.redis.xread('COUNT', readCount, 'BLOCK', readBlockMs, 'STREAMS', this.key, lastId)) as
          [string, [string, string[]][]][] | null;
        failures = 0;
        const models = { sync: new Set<string>(), async: new Set<string>() };
        for (const [, entries] of reply ?? []) {
          for (const [id, fields] of entries) {
            lastId = id;
            const model = fields[1];
            // Anyone who can write to Redis can write here: only names a model could have are taken.
            if (model === undefined || !isValidQualifiedModelName(model)) continue;
            if (fields[0] === ringField.sync) models.sync.add(model);
            else if (fields[0] === ringField.async) models.async.add(model);
          }
        }
        if (models.sync.size > 0) this.onRung(models.sync, 'sync');
        if (models.async.size > 0) this.onRung(models.async, 'async');
      } catch (error) {
        if (this.stopped) break;
        if (failures++ === 0) this.logger.warn({ err: (error as Error).message }, 'cannot read the work doorbell; retrying');
        await new Promise((resolve) => setTimeout(resolve, Math.min(100 * failures, 1000)));
      }
    }
  }

  /** Stops listening; the caller disconnects the connection, which ends a blocked read at once. */
  async close(): Promise<void> {
    this.stopped = true;
    this.redis.disconnect();
    await this.loop?.catch(() => undefined);
  }
}
