import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { isRedisUnavailableError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { BlobReferences } from './blob-references.js';
import type { ModelStore, StoredBlob } from './model-store.js';
import { RedisLock } from './redis-lock.js';
import { blobCollectorLockKey } from '../redis-keys.js';
import { WarmupSampleStore } from './warmup-samples.js';

/** What the collection needs of the model store (blobs and warm-up samples, and what the records name). */
export type CollectableStore = Pick<ModelStore, 'listBlobs' | 'blobsNamedByRecords' | 'remove' | 'warmupSamplesNamedByRecords' | 'warmupSamples'>;

export interface BlobCollectorOptions {
  /** GANTRY_BLOB_GC_GRACE_MS: how long a blob stays after its last reference went. */
  graceMs: number;
  /** GANTRY_BLOB_GC_INTERVAL_MS: the longest time between two passes of this process. */
  intervalMs: number;
  /** False while the registry in Redis is lost or not this store's: references there cannot be trusted then. */
  isRegistryTrusted: () => boolean;
  /** Told each removed blob (for the metrics). */
  onCollected?: (blob: StoredBlob) => void;
  logger: Logger;
}

export interface CollectionPass {
  /** Why no pass ran: another process holds the lock, or the registry cannot be trusted now. */
  skipped?: 'busy' | 'registry-untrusted';
  collected: StoredBlob[];
}

/** The youngest an unnamed warm-up sample may be and still be removed: far longer than storing and recording one takes. */
export const warmupSampleMinimumAgeMs = 10 * 60_000;
/** Lease of the collection lock; a pass renews it as it goes. */
const lockLeaseMs = 60_000;
/** Passes are never closer than this, whatever is due (Redis and the disk get a rest). */
const minimumDelayMs = 50;
/** Added to a due time, so the pass runs after the grace period by Redis's clock, not just before. */
const slackMs = 100;

/**
 * The blob garbage collection: the only code that removes model files. A pass (one at a time over all API
 * processes, by a Redis lock) removes each blob that no version references, no upload is about to reference,
 * no live record in the store names, and that has been unreferenced for the grace period. Passes run every
 * `intervalMs`, and sooner when a grace period this process knows of ends.
 */
export class BlobCollector {
  private timer: NodeJS.Timeout | undefined;
  private dueAt = Number.POSITIVE_INFINITY;
  private running: Promise<CollectionPass> | undefined;
  private stopped = true;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly store: CollectableStore,
    private readonly references: BlobReferences,
    private readonly options: BlobCollectorOptions,
  ) {}

  start(): void {
    this.stopped = false;
    this.schedule(Math.min(this.options.intervalMs, 1000));
  }

  /** Stops the timer and waits for a pass in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  /** A version was deleted now: a pass runs once its blob's grace period is over. */
  noteDeletion(): void {
    this.schedule(this.options.graceMs + slackMs);
  }

  /** An upload was refused after its blob was published: a pass runs soon (such blobs have no grace period). */
  noteRefusal(): void {
    this.schedule(slackMs);
  }

  /** Runs one pass now (or joins the one running in this process). */
  runPass(): Promise<CollectionPass> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    const at = Date.now() + Math.max(minimumDelayMs, Math.min(delayMs, this.options.intervalMs));
    if (this.timer !== undefined && at >= this.dueAt) return;
    clearTimeout(this.timer);
    this.dueAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.dueAt = Number.POSITIVE_INFINITY;
      this.runPass().then(
        (pass) => this.afterPass(pass),
        (error: unknown) => {
          // Redis away is routine (the pass runs again later); anything else is worth a warning.
          if (isRedisUnavailableError(error))
            this.options.logger.debug({ err: (error as Error).message }, 'blob garbage collection pass skipped: Redis unavailable');
          else this.options.logger.warn({ err: error }, 'blob garbage collection pass failed; retrying later');
          this.schedule(this.options.intervalMs);
        },
      );
    }, at - Date.now());
    this.timer.unref();
  }

  private async afterPass(pass: CollectionPass): Promise<void> {
    if (pass.skipped !== undefined) {
      this.schedule(this.options.intervalMs);
      return;
    }
    const due = await this.references.msUntilNextDue(this.options.graceMs).catch(() => undefined);
    this.schedule(due === undefined ? this.options.intervalMs : due + slackMs);
  }

  private async pass(): Promise<CollectionPass> {
    if (!this.options.isRegistryTrusted()) return { skipped: 'registry-untrusted', collected: [] };
    const lock = await RedisLock.tryAcquire(this.redis, blobCollectorLockKey(this.prefix), lockLeaseMs);
    if (lock === undefined) return { skipped: 'busy', collected: [] };
    try {
      const pass = await this.collect(lock);
      await this.collectWarmupSamples();
      return pass;
    } finally {
      await lock.release();
    }
  }

  /**
   * Removes warm-up samples no live record names. A sample is stored a moment before its version records it, so only
   * samples older than the grace period, and never younger than warmupSampleMinimumAgeMs, go.
   */
  private async collectWarmupSamples(): Promise<void> {
    try {
      const samples = new WarmupSampleStore(this.store.warmupSamples);
      const removed = await samples.removeUnnamed(await this.store.warmupSamplesNamedByRecords(), Math.max(this.options.graceMs, warmupSampleMinimumAgeMs));
      if (removed.length > 0) this.options.logger.info({ samples: removed }, 'warm-up samples no version uses removed by garbage collection');
    } catch (error) {
      this.options.logger.warn({ err: error }, 'warm-up sample collection failed; retrying at the next pass');
    }
  }

  private async collect(lock: RedisLock): Promise<CollectionPass> {
    const token = randomUUID();
    const blobs = await this.store.listBlobs();
    const named = await this.store.blobsNamedByRecords();
    const onDisk = new Set(blobs.map((blob) => blob.sha256));
    // Grace periods of blobs gone from disk, or named by a record again, would keep a pass due for ever.
    await this.references.forgetGracePeriods((await this.references.unreferencedBlobs()).filter((sha256) => !onDisk.has(sha256) || named.has(sha256)));

    const claimed: StoredBlob[] = [];
    let examined = 0;
    for (const blob of blobs) {
      if (named.has(blob.sha256)) continue;
      if ((await this.references.examine(blob.sha256, this.options.graceMs, token)) === 'claimed') claimed.push(blob);
      if (++examined % 500 === 0 && !(await lock.extend())) break;
    }
    if (claimed.length === 0) return { collected: [] };

    // An upload that created its version before the claims were taken is named by its record now: read them again.
    const namedNow = await this.store.blobsNamedByRecords();
    const collected: StoredBlob[] = [];
    for (const blob of claimed) {
      const removable = !namedNow.has(blob.sha256) && this.options.isRegistryTrusted() && (await this.references.renewClaim(blob.sha256, token));
      if (removable) {
        await this.store.remove(blob.sha256);
        collected.push(blob);
        this.options.onCollected?.(blob);
      }
      await this.references.endClaim(blob.sha256, removable);
    }
    if (collected.length > 0) {
      const bytes = collected.reduce((total, blob) => total + blob.size, 0);
      this.options.logger.info(
        { blobs: collected.length, bytes, sha256: collected.map((blob) => blob.sha256) },
        'unreferenced model files removed by garbage collection',
      );
    }
    return { collected };
  }
}
