import type { Config } from '../config.js';
import { createRedis, waitForReady, type Redis, type RedisEndpointSettings } from '../queue/redis-connection.js';
import { runningPrivateRedisUrl } from './embedded-redis.js';

/** How long an operator command waits for Redis to answer before saying what to do. */
const connectTimeoutMs = 3000;

/**
 * The Redis an operator command (`gantry repair`, `gantry admin-key rotate`) talks to: REDIS_URL as the API has
 * it; without it, the private redis-server of a `gantry start` running on GANTRY_DATA_DIR; else 127.0.0.1:6379.
 */
export async function commandRedisUrl(config: Config): Promise<string> {
  return config.REDIS_URL ?? (await runningPrivateRedisUrl(config.GANTRY_DATA_DIR)) ?? 'redis://127.0.0.1:6379';
}

/**
 * A ready connection for an operator command, or undefined when Redis did not answer within a few seconds.
 * @param settings REDIS_SENTINEL_PASSWORD and REDIS_TLS_CA_FILE (redisEndpointSettings(config)), as the API has them.
 */
export async function connectCommandRedis(url: string, name: string, settings: RedisEndpointSettings = {}): Promise<Redis | undefined> {
  const redis = createRedis(url, 'producer', name, settings);
  redis.on('error', () => undefined);
  try {
    await waitForReady(redis, connectTimeoutMs);
    return redis;
  } catch {
    redis.disconnect();
    return undefined;
  }
}
