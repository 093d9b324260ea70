import type { Redis } from 'ioredis';
import { publishAuthEvent } from '../auth/auth-events.js';
import { defaultTenant } from '../auth/principal.js';
import { apiKeyKey, keyLimitsKey, tenantIndexKey, tenantKey, tenantKeyIndexKey } from '../redis-keys.js';

/**
 * The control plane as Redis holds it (auth/tenant-store.ts, auth/key-store.ts, limits/limit-store.ts), copied
 * field for field so an import gives back exactly what was there: a tenant's record (its limits are a field of it),
 * each API key's record (its hash, never the key, which Gantry never keeps) and each key's limits. The admin key is
 * not part of it: the target deployment keeps its own (GANTRY_ADMIN_KEY, or the one its start printed).
 */
export interface ControlPlaneSnapshot {
  tenants: Array<{ id: string; fields: Record<string, string> }>;
  keys: Array<{
    id: string;
    fields: Record<string, string>;
    /** A revoked key's record expires (key-store.ts): the milliseconds it had left, so it still goes when it should. */
    expiresInMs?: number;
    /** The key's limits document (JSON text), when it has one. */
    limits?: string;
  }>;
}

/** Reads every tenant, key and limit of the prefix. */
export async function readControlPlane(redis: Redis, prefix: string): Promise<ControlPlaneSnapshot> {
  const snapshot: ControlPlaneSnapshot = { tenants: [], keys: [] };
  for (const id of (await redis.smembers(tenantIndexKey(prefix))).sort()) {
    const fields = await redis.hgetall(tenantKey(prefix, id));
    if (fields.createdAt === undefined) continue;
    snapshot.tenants.push({ id, fields });
    for (const keyId of (await redis.smembers(tenantKeyIndexKey(prefix, id))).sort()) {
      const keyFields = await redis.hgetall(apiKeyKey(prefix, keyId));
      // An id whose record expired (a revoked key past its retention) is only a leftover in the index.
      if (keyFields.hash === undefined) continue;
      const key: ControlPlaneSnapshot['keys'][number] = { id: keyId, fields: keyFields };
      const ttl = await redis.pttl(apiKeyKey(prefix, keyId));
      if (ttl > 0) key.expiresInMs = ttl;
      const limits = await redis.get(keyLimitsKey(prefix, keyId));
      if (limits !== null) key.limits = limits;
      snapshot.keys.push(key);
    }
  }
  return snapshot;
}

/** What the target's Redis holds of the control plane already (besides the default tenant every API start makes). */
export async function describeControlPlane(redis: Redis, prefix: string): Promise<{ tenants: string[]; keys: string[] }> {
  const snapshot = await readControlPlane(redis, prefix);
  return {
    tenants: snapshot.tenants.map((tenant) => tenant.id).filter((id) => id !== defaultTenant),
    keys: snapshot.keys.map((key) => key.id),
  };
}

/**
 * Writes the snapshot into Redis, replacing each record it names whole (so running the same import again gives the
 * same state), then tells every API process to forget what it cached of them.
 */
export async function writeControlPlane(redis: Redis, prefix: string, snapshot: ControlPlaneSnapshot): Promise<void> {
  for (const tenant of snapshot.tenants) {
    await redis.multi().del(tenantKey(prefix, tenant.id)).hset(tenantKey(prefix, tenant.id), tenant.fields).sadd(tenantIndexKey(prefix), tenant.id).exec();
  }
  for (const key of snapshot.keys) {
    const transaction = redis
      .multi()
      .del(apiKeyKey(prefix, key.id))
      .hset(apiKeyKey(prefix, key.id), key.fields)
      .sadd(tenantKeyIndexKey(prefix, key.fields.tenant ?? defaultTenant), key.id);
    if (key.expiresInMs !== undefined) transaction.pexpire(apiKeyKey(prefix, key.id), key.expiresInMs);
    if (key.limits !== undefined) transaction.set(keyLimitsKey(prefix, key.id), key.limits);
    else transaction.del(keyLimitsKey(prefix, key.id));
    await transaction.exec();
  }
  for (const tenant of snapshot.tenants) await publishAuthEvent(redis, prefix, { type: 'tenant', tenant: tenant.id });
  for (const key of snapshot.keys) await publishAuthEvent(redis, prefix, { type: 'key', keyId: key.id });
}
