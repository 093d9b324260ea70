import type { Redis } from 'ioredis';
import type { z } from 'zod';
import { keyLimitsKey, tenantKey } from '../redis-keys.js';
import { errors } from '../errors.js';
import { RefreshingCache } from './refreshing-cache.js';
import { keyLimitsSchema, tenantLimitsSchema, type KeyLimits, type TenantLimits } from './tenant-limits.js';

/**
 * A tenant's limits are the `limits` field (JSON) of its record (src/auth/tenant-store.ts), so they go with the
 * tenant when it is deleted and `POST`/`PATCH /v1/tenants` can set them too.
 */
export const tenantLimitsField = 'limits';

/**
 * How long a process answers limits from memory before it reads them again (in the background). No answer is
 * older than twice this (RefreshingCache), so a change made on one API process applies on the others within 1 s.
 */
export const limitsCacheTtlMs = 500;

// Writes a tenant's limits only into a tenant record that exists: a tenant deleted meanwhile is not brought back
// as a record holding nothing but limits.
const setTenantLimitsScript = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1`;

/**
 * Tenants' and keys' limits, kept in Redis (shared by every API process) and cached per process (at most 1 s
 * old, see limitsCacheTtlMs), so the request path reads them from memory. A tenant or key never given limits reads as
 * `{}` (unlimited). A write applies at once in the process that made it.
 */
export class LimitStore {
  private readonly tenants: RefreshingCache<TenantLimits>;
  private readonly keys: RefreshingCache<KeyLimits>;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    options: { cacheTtlMs?: number; onRefreshError?: (error: unknown) => void } = {},
  ) {
    const ttlMs = options.cacheTtlMs ?? limitsCacheTtlMs;
    this.tenants = new RefreshingCache(
      async (tenant) => parseStored(tenantLimitsSchema, await redis.hget(tenantKey(prefix, tenant), tenantLimitsField)),
      ttlMs,
      10_000,
      options.onRefreshError,
    );
    this.keys = new RefreshingCache(
      async (keyId) => parseStored(keyLimitsSchema, await redis.get(keyLimitsKey(prefix, keyId))),
      ttlMs,
      10_000,
      options.onRefreshError,
    );
  }

  /** A tenant's limits (cached; `{}` when it has none). */
  tenantLimits(tenant: string): Promise<TenantLimits> {
    return this.tenants.get(tenant);
  }

  /** A key's own limits (cached; `{}` when it has none). */
  keyLimits(keyId: string): Promise<KeyLimits> {
    return this.keys.get(keyId);
  }

  /** A tenant's limits when memory has them (see RefreshingCache.peek), else undefined (ask tenantLimits). */
  peekTenantLimits(tenant: string): TenantLimits | undefined {
    return this.tenants.peek(tenant);
  }

  /** A key's limits when memory has them, else undefined (ask keyLimits). */
  peekKeyLimits(keyId: string): KeyLimits | undefined {
    return this.keys.peek(keyId);
  }

  /**
   * Replaces a tenant's limits with `document` (`{}` removes them all).
   * @throws INVALID_ARGUMENT naming the bad field; NOT_FOUND for a tenant without a record.
   */
  async setTenantLimits(tenant: string, document: unknown): Promise<TenantLimits> {
    const limits = parseLimits(tenantLimitsSchema, document, 'tenant');
    const written = await this.redis.eval(setTenantLimitsScript, 1, tenantKey(this.prefix, tenant), tenantLimitsField, JSON.stringify(limits));
    if (written !== 1) throw errors.tenantNotFound(tenant);
    this.tenants.set(tenant, limits);
    return limits;
  }

  /**
   * Replaces a key's limits with `document` (`{}` removes them).
   * @throws INVALID_ARGUMENT naming the bad field.
   */
  async setKeyLimits(keyId: string, document: unknown): Promise<KeyLimits> {
    const limits = parseLimits(keyLimitsSchema, document, 'key');
    if (Object.keys(limits).length === 0) await this.redis.del(keyLimitsKey(this.prefix, keyId));
    else await this.redis.set(keyLimitsKey(this.prefix, keyId), JSON.stringify(limits));
    this.keys.set(keyId, limits);
    return limits;
  }

  /** Forgets a deleted tenant's limits (so a tenant created later under the same id starts unlimited here at once). */
  async deleteTenantLimits(tenant: string): Promise<void> {
    await this.redis.hdel(tenantKey(this.prefix, tenant), tenantLimitsField);
    this.tenants.delete(tenant);
  }

  /** Forgets a deleted key's limits (a revoked key's are kept while its record is: it may be listed, not used). */
  async deleteKeyLimits(keyId: string): Promise<void> {
    await this.redis.del(keyLimitsKey(this.prefix, keyId));
    this.keys.delete(keyId);
  }
}

/**
 * Reads a stored document leniently, field by field: a field that does not validate (written by an older
 * version, or by hand) is left out, meaning "no limit" for it, rather than failing every request of the tenant.
 */
function parseStored<T extends object>(schema: z.ZodObject, stored: string | null): T {
  if (stored === null || stored === '') return {} as T;
  let document: unknown;
  try {
    document = JSON.parse(stored);
  } catch {
    return {} as T;
  }
  if (typeof document !== 'object' || document === null || Array.isArray(document)) return {} as T;
  const kept: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(document)) {
    const fieldSchema = schema.shape[field] as z.ZodType | undefined;
    if (fieldSchema !== undefined && value !== null && fieldSchema.safeParse(value).success) kept[field] = value;
  }
  return kept as T;
}

function parseLimits<T>(schema: z.ZodType<T>, document: unknown, owner: 'tenant' | 'key'): T {
  if (typeof document !== 'object' || document === null || Array.isArray(document)) {
    throw errors.invalidArgument(`The ${owner}'s limits must be a JSON object, e.g. {"requestsPerSecond": 10}; {} removes every limit.`);
  }
  const parsed = schema.safeParse(document);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((field) => `unknown limit '${field}'`).join('; ')
      : `limit '${issue.path.map(String).join('.')}': ${issue.message}`,
  );
  throw errors.invalidArgument(`Invalid ${owner} limits: ${problems.join('; ')}. Every limit is optional; leave one out for no limit.`);
}
