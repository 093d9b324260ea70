import type { Redis } from 'ioredis';
import { splitQualifiedName, tenantSeparator } from '../auth/model-names.js';
import { ErrorCode, GantryError } from '../errors.js';
import type { Logger } from '../logger.js';
import { RefreshingCache } from '../limits/refreshing-cache.js';
import { workerAnnouncementKey, workerAnnouncementsKey } from '../redis-keys.js';
import { patternsMatch, servesAllModels } from './model-patterns.js';
import { workerAnnouncementSchema, type WorkerAnnouncement } from './worker-announcement.js';

/** The announcements read lately: the workers alive then. */
export interface LiveWorkersSnapshot {
  workers: WorkerAnnouncement[];
  /** True when one of them serves every model. */
  anyServesAll: boolean;
}

/** Whether live workers serve a model: how many, and when none does, why (for the caller and the operator). */
export interface ModelServing {
  /** Live workers whose GANTRY_WORKER_MODELS match the model. */
  servedBy: number;
  /** Set when servedBy is 0: names the patterns the live workers serve and what to do. */
  unservedReason?: string;
}

/** Patterns named in a reason at most (the rest are counted). */
const maxPatternsShown = 20;

/**
 * One API process's view of the live workers and the models they serve (worker-announcement.ts), read from Redis
 * at most about once a second whatever the traffic: a view up to 500 ms old answers at once, one up to 1 s old
 * answers while a background read replaces it (limits/refreshing-cache.ts), and only an idle process waits for a read.
 *
 * It only ever says "unserved" when it knows of live workers and none matches: with no announcement at all (the
 * workers are restarting, or predate worker pools) requests queue as they always did and the first worker to come
 * takes them. A failed read keeps the last view; with none, nothing is refused.
 */
export class LiveWorkers {
  private readonly cache: RefreshingCache<LiveWorkersSnapshot>;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    logger: Logger,
    /** Told of each request refused by checkServed (gantry_unserved_model_requests_total). */
    private readonly onUnserved: (model: string) => void = () => undefined,
    freshMs = 500,
  ) {
    this.cache = new RefreshingCache(
      () => this.read(),
      freshMs,
      1,
      (error) => logger.debug({ err: (error as Error).message }, 'could not refresh the live-worker view'),
    );
  }

  /** The current view, or undefined when it cannot be read (Redis away and nothing read before). */
  async snapshot(): Promise<LiveWorkersSnapshot | undefined> {
    try {
      return this.cache.peek('') ?? (await this.cache.get(''));
    } catch {
      return undefined;
    }
  }

  /**
   * Whether live workers serve `model` (a qualified name; the reason names it as `shown`, the caller's name for it);
   * undefined when no live worker is known.
   */
  async serving(model: string, shown = model): Promise<ModelServing | undefined> {
    const snapshot = await this.snapshot();
    if (snapshot === undefined || snapshot.workers.length === 0) return undefined;
    const servedBy = snapshot.workers.filter((worker) => patternsMatch(worker.patterns, model)).length;
    return servedBy > 0 ? { servedBy } : { servedBy, unservedReason: unservedReason(model, shown, snapshot.workers) };
  }

  /**
   * Refuses a request for a model that live workers exist for but none serves: 503 with Retry-After and the
   * reason, at once, instead of a job no worker will take waiting for its timeout. Resolves when it may be queued.
   */
  async checkServed(model: string): Promise<void> {
    const serving = await this.serving(model);
    if (serving?.unservedReason === undefined) return;
    this.onUnserved(model);
    throw unservedError(serving.unservedReason);
  }

  private async read(): Promise<LiveWorkersSnapshot> {
    const ids = await this.redis.smembers(workerAnnouncementsKey(this.prefix));
    if (ids.length === 0) return { workers: [], anyServesAll: false };
    const values = await this.redis.mget(ids.map((id) => workerAnnouncementKey(this.prefix, id)));
    const workers: WorkerAnnouncement[] = [];
    const expired: string[] = [];
    ids.forEach((id, index) => {
      const announcement = parseAnnouncement(values[index]);
      if (announcement === undefined) expired.push(id);
      else workers.push(announcement);
    });
    // An id whose announcement lapsed is a worker gone without withdrawing (kill -9): the set follows the workers.
    if (expired.length > 0) await this.redis.srem(workerAnnouncementsKey(this.prefix), ...expired).catch(() => undefined);
    return { workers, anyServesAll: workers.some((worker) => servesAllModels(worker.patterns)) };
  }
}

/** An announcement as written by a worker, or undefined for one that expired or that no worker could have written. */
function parseAnnouncement(value: string | null | undefined): WorkerAnnouncement | undefined {
  if (value === null || value === undefined) return undefined;
  try {
    const parsed = workerAnnouncementSchema.safeParse(JSON.parse(value));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Why no live worker serves `model` (named `shown` in the text), naming the patterns the live workers serve. Patterns naming another tenant's
 * models (`other~…`) are only counted: a tenant's caller learns nothing of other tenants from this message.
 */
export function unservedReason(model: string, shown: string, workers: readonly WorkerAnnouncement[]): string {
  const { tenant } = splitQualifiedName(model);
  const ownPrefix = `${tenant}${tenantSeparator}`;
  const patterns = [...new Set(workers.flatMap((worker) => worker.patterns))].sort();
  const listed = patterns.filter((pattern) => !pattern.includes(tenantSeparator) || pattern.startsWith(ownPrefix)).slice(0, maxPatternsShown);
  const more = patterns.length - listed.length;
  const list = `[${listed.join(', ')}]${more > 0 ? ` and ${more} more` : ''}`;
  const count = workers.length === 1 ? 'the 1 running worker serves' : `the ${workers.length} running workers serve`;
  return `no running worker serves model '${shown}': ${count} ${list}; start a worker with GANTRY_WORKER_MODELS matching it`;
}

/** The refusal of a request for a model no live worker serves: 503 UNAVAILABLE, retry after a few seconds. */
export function unservedError(reason: string): GantryError {
  return new GantryError(ErrorCode.Unavailable, `${reason.charAt(0).toUpperCase()}${reason.slice(1)}.`, { retryAfterSeconds: 5 });
}
