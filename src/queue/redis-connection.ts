import { Redis, type RedisOptions } from 'ioredis';

export type { Redis };

/**
 * Producers (the API) fail fast when Redis is away instead of piling commands into an offline queue; blocking
 * consumers (BullMQ workers, subscribers) retry forever, which is what BullMQ requires of them.
 */
export function createRedis(url: string, role: 'producer' | 'consumer', name: string): Redis {
  const options: RedisOptions = {
    connectionName: `gantry-${name}`,
    lazyConnect: false,
    // Reconnect quickly, but back off to at most a second so a restarted Redis is found again soon.
    retryStrategy: (attempt) => Math.min(50 * attempt, 1000),
    ...(role === 'producer'
      ? { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2000 }
      : { enableOfflineQueue: true, maxRetriesPerRequest: null }),
  };
  return new Redis(url, options);
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
