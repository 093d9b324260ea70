import type { Redis } from 'ioredis';
import { hashKey, newAdminKey } from './api-key-format.js';
import { publishAuthEvent } from './auth-events.js';
import { adminKeyKey } from '../redis-keys.js';

/** Where the admin key in force came from. */
export type AdminKeySource = 'environment' | 'generated' | 'rotated';

export interface AdminKeyRecord {
  /** sha256 of the key, hex. */
  hash: string;
  source: AdminKeySource;
  createdAt: string;
  /** sha256 of the GANTRY_ADMIN_KEY value last applied: a start with a different value replaces the key. */
  environmentHash?: string;
}

/** What start-up did about the admin key (the CLI says it: the key itself only when it was just generated). */
export type AdminKeyOutcome =
  | { kind: 'generated'; key: string }
  | { kind: 'configured'; replaced: boolean }
  /** GANTRY_ADMIN_KEY is set, unchanged, but the key was rotated since: the variable's value no longer works. */
  | { kind: 'rotated-since-configured'; rotatedAt: string }
  | { kind: 'existing'; source: AdminKeySource; createdAt: string };

// The first API process of a deployment to run this generates the key; the others find it (SET NX semantics).
const createIfMissingScript = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1`;

export async function readAdminKey(redis: Redis, prefix: string): Promise<AdminKeyRecord | undefined> {
  const fields = await redis.hgetall(adminKeyKey(prefix));
  if (fields.hash === undefined) return undefined;
  const record: AdminKeyRecord = { hash: fields.hash, source: (fields.source as AdminKeySource | undefined) ?? 'generated', createdAt: fields.createdAt ?? '' };
  if (fields.environmentHash !== undefined) record.environmentHash = fields.environmentHash;
  return record;
}

async function writeAdminKey(redis: Redis, prefix: string, record: AdminKeyRecord): Promise<void> {
  await redis
    .multi()
    .del(adminKeyKey(prefix))
    .hset(adminKeyKey(prefix), { ...record })
    .exec();
  await publishAuthEvent(redis, prefix, { type: 'admin-key' });
}

/**
 * Makes sure the deployment has an admin key, at every API start. With GANTRY_ADMIN_KEY (`configuredKey`) set:
 * its value becomes the admin key when there is none yet or when the value changed since it was last applied
 * (changing the variable replaces the old key); a key rotated since with `gantry admin-key rotate` stays. Without
 * it: a key is generated when there is none, and returned this once.
 */
export async function ensureAdminKey(redis: Redis, prefix: string, configuredKey: string | undefined): Promise<AdminKeyOutcome> {
  const current = await readAdminKey(redis, prefix);
  if (configuredKey !== undefined) {
    const hash = hashKey(configuredKey);
    if (current !== undefined && current.environmentHash === hash) {
      return current.hash === hash ? { kind: 'configured', replaced: false } : { kind: 'rotated-since-configured', rotatedAt: current.createdAt };
    }
    await writeAdminKey(redis, prefix, { hash, source: 'environment', createdAt: new Date().toISOString(), environmentHash: hash });
    return { kind: 'configured', replaced: current !== undefined };
  }
  if (current !== undefined) return { kind: 'existing', source: current.source, createdAt: current.createdAt };
  const key = newAdminKey();
  const record: AdminKeyRecord = { hash: hashKey(key), source: 'generated', createdAt: new Date().toISOString() };
  const created = (await redis.eval(createIfMissingScript, 1, adminKeyKey(prefix), ...Object.entries(record).flat())) as number;
  if (created === 1) return { kind: 'generated', key };
  const winner = await readAdminKey(redis, prefix);
  return { kind: 'existing', source: winner?.source ?? 'generated', createdAt: winner?.createdAt ?? '' };
}

/**
 * A new admin key, replacing the old one at once on every API process (`gantry admin-key rotate`). Returns the
 * new key; it is not stored, only its hash.
 */
export async function rotateAdminKey(redis: Redis, prefix: string): Promise<string> {
  const current = await readAdminKey(redis, prefix);
  const key = newAdminKey();
  const record: AdminKeyRecord = { hash: hashKey(key), source: 'rotated', createdAt: new Date().toISOString() };
  // Kept, so that a restart with the same GANTRY_ADMIN_KEY does not bring the old key back.
  if (current?.environmentHash !== undefined) record.environmentHash = current.environmentHash;
  await writeAdminKey(redis, prefix, record);
  return key;
}
