import type { Redis } from 'ioredis';
import { modelAliasesKey, modelRoutingLockKey, modelTrafficKey } from '../redis-keys.js';
import { RedisLock } from './redis-lock.js';
import type { ModelRouting, RegistryRecords } from './registry-records.js';

/** Lease of the routing lock: far longer than one read of two keys and one small file write. */
const lockLeaseMs = 10_000;
/** How long a change waits for another process's record write of the same model. */
const lockWaitMs = 5_000;

/**
 * Keeps a model's aliases and traffic policy in the model store's records (routing.json), so a registry rebuilt
 * after Redis lost its data comes back with its rollback pins and splits, not serving every newest version.
 * After each change, the whole routing is read from Redis and written under a per-model lock: the last writer then
 * always read the state after every change that finished before it, so records never go back to an older state
 * (two writers writing what they changed could cross).
 */
export class RoutingRecorder {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly records: RegistryRecords,
  ) {}

  /** Writes the model's routing as Redis holds it now; a model with neither aliases nor a policy leaves no record. */
  async record(model: string): Promise<void> {
    const lock = await this.acquire(model);
    try {
      const [aliasEntries, trafficText] = await Promise.all([
        this.redis.hgetall(modelAliasesKey(this.prefix, model)),
        this.redis.get(modelTrafficKey(this.prefix, model)),
      ]);
      const routing: ModelRouting = { aliases: [] };
      for (const [alias, stored] of Object.entries(aliasEntries)) {
        const parsed = parseJson(stored) as { version?: unknown; updatedAt?: unknown } | undefined;
        if (typeof parsed?.version === 'string') routing.aliases.push({ alias, version: parsed.version, updatedAt: String(parsed.updatedAt ?? '') });
      }
      const traffic = trafficText === null ? undefined : parseJson(trafficText);
      if (traffic !== undefined) routing.traffic = traffic;
      await this.records.writeRouting(model, routing.aliases.length === 0 && traffic === undefined ? undefined : routing);
    } finally {
      await lock.release();
    }
  }

  private async acquire(model: string): Promise<RedisLock> {
    const deadline = Date.now() + lockWaitMs;
    for (;;) {
      const lock = await RedisLock.tryAcquire(this.redis, modelRoutingLockKey(this.prefix, model), lockLeaseMs);
      if (lock !== undefined) return lock;
      if (Date.now() > deadline) throw new Error(`the routing record of model '${model}' stayed locked for ${lockWaitMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
