import type { Redis } from 'ioredis';
import { errors } from '../errors.js';
import { hashKey, keyIdPattern, newApiKey } from './api-key-format.js';
import { publishAuthEvent, type AuthChangeListener } from './auth-events.js';
import { apiKeyKey, tenantKey, tenantKeyIndexKey } from '../redis-keys.js';
import { scopes as knownScopes, type Scope } from './principal.js';

/** An API key as listed and answered: never its secret, never its hash. */
export interface ApiKeyRecord {
  id: string;
  tenant: string;
  name: string;
  scopes: Scope[];
  /** Bare model names of the tenant this key may use; absent: all of them. */
  models?: string[];
  createdAt: string;
  expiresAt?: string;
  revokedAt?: string;
}

/** What the authenticator reads: the record plus the stored hash. */
export interface StoredApiKey extends ApiKeyRecord {
  hash: string;
}

export interface NewApiKey {
  tenant: string;
  name: string;
  scopes: Scope[];
  models?: string[];
  expiresAt?: string;
}

export interface ApiKeyChanges {
  name?: string;
  scopes?: Scope[];
  /** null: no allow-list any more (all of the tenant's models). */
  models?: string[] | null;
  /** null: never expires. */
  expiresAt?: string | null;
}

/** A revoked key's record stays listed (with revokedAt) this long, then Redis removes it. */
export const revokedKeyRetentionSeconds = 30 * 24 * 3600;

// One script, so that the tenant cannot be deleted between the check and the write, and two creations cannot
// pass the per-tenant cap together.
const createScript = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[1]) then return -1 end
redis.call('HSET', KEYS[3], unpack(ARGV, 3))
redis.call('SADD', KEYS[2], ARGV[2])
return 1`;

const updateScript = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
if tonumber(ARGV[1]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return 1`;

function toFields(key: StoredApiKey): Record<string, string> {
  const fields: Record<string, string> = {
    hash: key.hash,
    tenant: key.tenant,
    name: key.name,
    scopes: JSON.stringify(key.scopes),
    createdAt: key.createdAt,
  };
  if (key.models !== undefined) fields.models = JSON.stringify(key.models);
  if (key.expiresAt !== undefined) fields.expiresAt = key.expiresAt;
  if (key.revokedAt !== undefined) fields.revokedAt = key.revokedAt;
  return fields;
}

function parseStored(id: string, fields: Record<string, string>): StoredApiKey | undefined {
  if (fields.hash === undefined || fields.tenant === undefined) return undefined;
  const known = new Set<string>(knownScopes);
  let scopes: Scope[];
  let models: string[] | undefined;
  try {
    scopes = (JSON.parse(fields.scopes ?? '[]') as string[]).filter((scope): scope is Scope => known.has(scope));
    if (fields.models !== undefined) models = JSON.parse(fields.models) as string[];
  } catch {
    // An unreadable record grants nothing: no scopes, and an empty allow-list.
    scopes = [];
    models = [];
  }
  const record: StoredApiKey = { id, hash: fields.hash, tenant: fields.tenant, name: fields.name ?? '', scopes, createdAt: fields.createdAt ?? '' };
  if (models !== undefined) record.models = models;
  if (fields.expiresAt !== undefined) record.expiresAt = fields.expiresAt;
  if (fields.revokedAt !== undefined) record.revokedAt = fields.revokedAt;
  return record;
}

/** Without the hash: what routes answer. */
export function publicRecord(stored: StoredApiKey): ApiKeyRecord {
  const { hash: _hash, ...record } = stored;
  return record;
}

/** API keys in Redis, stored only as hashes and found by their public id. */
export class KeyStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly maxKeysPerTenant: number,
  ) {}

  /** Set by the control plane: this process's authenticator forgets a change at once. */
  onChange: AuthChangeListener | undefined;

  /**
   * Creates a key; the returned `key` is its only appearance (it is not stored).
   * @throws 404 for an unknown tenant; 409 past GANTRY_MAX_KEYS_PER_TENANT.
   */
  async create(request: NewApiKey): Promise<{ key: string; record: ApiKeyRecord }> {
    const { keyId, key } = newApiKey();
    const stored: StoredApiKey = {
      id: keyId,
      hash: hashKey(key),
      tenant: request.tenant,
      name: request.name,
      scopes: request.scopes,
      createdAt: new Date().toISOString(),
    };
    if (request.models !== undefined) stored.models = request.models;
    if (request.expiresAt !== undefined) stored.expiresAt = request.expiresAt;
    const outcome = (await this.redis.eval(
      createScript,
      3,
      tenantKey(this.prefix, request.tenant),
      tenantKeyIndexKey(this.prefix, request.tenant),
      apiKeyKey(this.prefix, keyId),
      String(this.maxKeysPerTenant),
      keyId,
      ...Object.entries(toFields(stored)).flat(),
    )) as number;
    if (outcome === 0) throw errors.tenantNotFound(request.tenant);
    if (outcome === -1) throw errors.capReached(`keys of tenant '${request.tenant}'`, this.maxKeysPerTenant, 'GANTRY_MAX_KEYS_PER_TENANT');
    // No process can have this id cached (it did not exist), unless someone presented it before: forget it anyway.
    await publishAuthEvent(this.redis, this.prefix, { type: 'key', keyId }, this.onChange);
    return { key, record: publicRecord(stored) };
  }

  /** The stored key (hash included), or undefined. */
  async get(keyId: string): Promise<StoredApiKey | undefined> {
    if (!keyIdPattern.test(keyId)) return undefined;
    return parseStored(keyId, await this.redis.hgetall(apiKeyKey(this.prefix, keyId)));
  }

  /** A tenant's keys, revoked ones (until their record expires) included, by creation time. */
  async list(tenant: string): Promise<ApiKeyRecord[]> {
    const index = tenantKeyIndexKey(this.prefix, tenant);
    const ids = await this.redis.smembers(index);
    const records: ApiKeyRecord[] = [];
    const gone: string[] = [];
    for (const id of ids) {
      const stored = await this.get(id);
      if (stored === undefined) gone.push(id);
      else records.push(publicRecord(stored));
    }
    // Records of revoked keys expire by themselves; their ids leave the index here.
    if (gone.length > 0) await this.redis.srem(index, ...gone);
    return records.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  /** @throws 404 for an unknown key. */
  async update(keyId: string, changes: ApiKeyChanges): Promise<ApiKeyRecord> {
    const current = await this.get(keyId);
    if (current === undefined) throw errors.keyNotFound(keyId);
    const next: StoredApiKey = { ...current };
    if (changes.name !== undefined) next.name = changes.name;
    if (changes.scopes !== undefined) next.scopes = changes.scopes;
    if (changes.models === null) delete next.models;
    else if (changes.models !== undefined) next.models = changes.models;
    if (changes.expiresAt === null) delete next.expiresAt;
    else if (changes.expiresAt !== undefined) next.expiresAt = changes.expiresAt;
    // Only an existing record is rewritten: a key whose tenant was deleted meanwhile stays gone.
    const written = (await this.redis.eval(
      updateScript,
      1,
      apiKeyKey(this.prefix, keyId),
      next.revokedAt === undefined ? '0' : String(revokedKeyRetentionSeconds),
      ...Object.entries(toFields(next)).flat(),
    )) as number;
    if (written === 0) throw errors.keyNotFound(keyId);
    await publishAuthEvent(this.redis, this.prefix, { type: 'key', keyId }, this.onChange);
    return publicRecord(next);
  }

  /**
   * Revokes a key: refused at once by every API process. The record stays listed, with revokedAt, for 30 days.
   * Revoking a revoked key changes nothing. @throws 404 for an unknown key.
   */
  async revoke(keyId: string): Promise<ApiKeyRecord> {
    const current = await this.get(keyId);
    if (current === undefined) throw errors.keyNotFound(keyId);
    if (current.revokedAt === undefined) {
      current.revokedAt = new Date().toISOString();
      await this.redis
        .multi()
        .hset(apiKeyKey(this.prefix, keyId), 'revokedAt', current.revokedAt)
        .expire(apiKeyKey(this.prefix, keyId), revokedKeyRetentionSeconds)
        .exec();
    }
    await publishAuthEvent(this.redis, this.prefix, { type: 'key', keyId }, this.onChange);
    return publicRecord(current);
  }
}
