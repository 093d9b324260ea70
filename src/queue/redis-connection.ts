import { Redis, type RedisOptions } from 'ioredis';
import { parseRedisUrl, redisEndpointOptions, type RedisEndpointSettings } from './redis-endpoint.js';

export type { Redis };
export type { RedisEndpointSettings };

/**
 * A demoted master (after a Sentinel failover, or a replica promoted by hand) refuses writes with READONLY while
 * the connection itself stays up: reconnecting makes ioredis ask the sentinels for the new master, and 2 resends
 * the refused command there instead of failing it.
 */
function reconnectOnReadOnly(error: Error): 2 | false {
  return error.message.includes('READONLY') ? 2 : false;
}

/**
 * Every Redis connection Gantry opens comes from here, for every role and for BullMQ (which duplicates these), so
 * the endpoint (REDIS_URL: one server, TLS, or Sentinel) and the failure behaviour are the same for all of them.
 *
 * Producers (the API) fail fast when Redis is away instead of piling commands into an offline queue; blocking
 * consumers (BullMQ workers, subscribers) retry forever, which is what BullMQ requires of them.
 * @param settings what the URL cannot carry: REDIS_SENTINEL_PASSWORD and REDIS_TLS_CA_FILE (redisEndpointSettings).
 * @throws RedisEndpointError when the URL cannot be used (configuration checks it first) or the CA file is unreadable.
 */
export function createRedis(url: string, role: 'producer' | 'consumer', name: string, settings: RedisEndpointSettings = {}): Redis {
  const options: RedisOptions = {
    ...redisEndpointOptions(parseRedisUrl(url), settings),
    connectionName: `gantry-${name}`,
    lazyConnect: false,
    // Reconnect quickly, but back off to at most a second so a restarted Redis (or a promoted replica) is found soon.
    retryStrategy: (attempt) => Math.min(50 * attempt, 1000),
    // The same for the sentinels themselves, when all of them were unreachable.
    sentinelRetryStrategy: (attempt) => Math.min(50 * attempt, 1000),
    reconnectOnError: reconnectOnReadOnly,
    ...(role === 'producer'
      ? { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2000 }
      : { enableOfflineQueue: true, maxRetriesPerRequest: null }),
  };
  return new Redis(options);
}

/** What createRedis needs besides the URL, from the configuration. */
export function redisEndpointSettings(config: { REDIS_SENTINEL_PASSWORD?: string | undefined; REDIS_TLS_CA_FILE?: string | undefined }): RedisEndpointSettings {
  return {
    ...(config.REDIS_SENTINEL_PASSWORD === undefined ? {} : { sentinelPassword: config.REDIS_SENTINEL_PASSWORD }),
    ...(config.REDIS_TLS_CA_FILE === undefined ? {} : { tlsCaFile: config.REDIS_TLS_CA_FILE }),
  };
}

/** Resolves once the connection is ready, or rejects after `timeoutMs`. */
export async function waitForReady(redis: Redis, timeoutMs: number): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`Redis did not become ready within ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      clearTimeout(timer);
      redis.off('ready', onReady);
    };
    redis.on('ready', onReady);
  });
}

/**
 * Subscribes once the connection is ready. Subscribing earlier races ioredis's own ready check (an INFO
 * command), which Redis refuses on a connection already in subscriber mode. ioredis re-subscribes by itself
 * after reconnecting.
 */
export async function subscribeWhenReady(redis: Redis, channel: string): Promise<void> {
  if (redis.status !== 'ready') await new Promise<void>((resolve) => redis.once('ready', () => resolve()));
  await redis.subscribe(channel);
}
