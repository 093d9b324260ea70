import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';

export type RedisPersistence =
  | { kind: 'aof' }
  | { kind: 'snapshots-only'; save: string }
  | { kind: 'none' }
  /** CONFIG was refused (managed Redis services often rename or forbid it) or failed. */
  | { kind: 'unknown'; reason: string };

/** What persistence the Redis has: an append-only file, only RDB snapshots, or none (CONFIG GET appendonly / save). */
export async function redisPersistence(redis: Redis): Promise<RedisPersistence> {
  try {
    const appendonly = (await redis.config('GET', 'appendonly')) as string[];
    const save = (await redis.config('GET', 'save')) as string[];
    if (appendonly[1] === 'yes') return { kind: 'aof' };
    const schedule = save[1] ?? '';
    return schedule.trim() === '' ? { kind: 'none' } : { kind: 'snapshots-only', save: schedule };
  } catch (error) {
    return { kind: 'unknown', reason: error instanceof Error ? error.message : String(error) };
  }
}

/**
 * Says at start-up, loudly, when the Redis holding the registry would lose it on a restart: an error without
 * any persistence, a warning with snapshots only (the writes since the last snapshot are lost), a warning when it
 * could not be checked. The registry can be rebuilt from the model store, but queued work and state cannot.
 */
export async function warnAboutRedisPersistence(redis: Redis, logger: Logger): Promise<RedisPersistence> {
  const persistence = await redisPersistence(redis);
  const fix = 'set `appendonly yes` in redis.conf (or start redis-server with --appendonly yes)';
  switch (persistence.kind) {
    case 'none':
      logger.error(
        { redisPersistence: 'none' },
        `Redis has no persistence (appendonly no, save ""): a Redis restart loses the model registry, queued requests and statistics. Gantry detects the loss and rebuilds the registry from the model store, but ${fix}`,
      );
      break;
    case 'snapshots-only':
      logger.warn(
        { redisPersistence: 'snapshots-only', save: persistence.save },
        `Redis persists only by RDB snapshots (save "${persistence.save}"): a restart loses every change since the last snapshot; ${fix}`,
      );
      break;
    case 'unknown':
      logger.warn(
        { redisPersistence: 'unknown', reason: persistence.reason },
        `Could not check whether Redis persists its data (CONFIG GET refused: ${persistence.reason}); make sure it does (${fix}), or a Redis restart loses the model registry until it is rebuilt from the model store`,
      );
      break;
    case 'aof':
      break;
  }
  return persistence;
}
