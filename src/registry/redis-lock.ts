import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';

/** Deletes the lock only while it is still ours (it may have expired and been taken by another process). */
const releaseScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/** Extends the lock only while it is still ours. */
const extendScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

/**
 * A lease on one Redis key that one process at a time holds (SET NX PX with a random token): one garbage
 * collection pass, one registry rebuild. It expires by itself when its holder dies; a holder that works longer
 * than the lease renews it.
 */
export class RedisLock {
  private constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly token: string,
    private readonly leaseMs: number,
  ) {}

  /** The lock, or undefined when another process holds it. */
  static async tryAcquire(redis: Redis, key: string, leaseMs: number): Promise<RedisLock | undefined> {
    const token = randomUUID();
    const taken = await redis.set(key, token, 'PX', leaseMs, 'NX');
    return taken === 'OK' ? new RedisLock(redis, key, token, leaseMs) : undefined;
  }

  /** Renews the lease; false when it was lost (expired and taken by another), so the holder must stop. */
  async extend(): Promise<boolean> {
    return Number(await this.redis.eval(extendScript, 1, this.key, this.token, this.leaseMs)) === 1;
  }

  async release(): Promise<void> {
    await this.redis.eval(releaseScript, 1, this.key, this.token).catch(() => undefined);
  }
}
