import type { Redis } from 'ioredis';
import type { z } from 'zod';
import { errors } from '../errors.js';
import { RefreshingCache } from './refreshing-cache.js';
import { keyLimitsSchema, tenantLimitsSchema, type KeyLimits, type TenantLimits } from './tenant-limits.js';

/** Redis keys of the limit documents (one JSON string each). */
export function tenantLimitsKey(prefix: string, tenant: string): string {
  return `${prefix}:limits:tenant:${tenant}`;
}

export function keyLimitsKey(prefix: string, keyId: string): string {
  return `${prefix}:limits:key:${keyId}`;
}

/**
 * How long a process answers limits from memory before it reads them again (in the background): a change made
 * on one API process applies on the others within about this long.
 */
export const limitsCacheTtlMs = 1000;

/**
 * Tenants' and keys' limits, kept in Redis (shared by every API process) and cached per process for
 * limitsCacheTtlMs, so the request path reads them from memory. A tenant or key never given limits reads as
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
    this.tenants = new RefreshingCache((tenant) => this.read(tenantLimitsKey(prefix, tenant), tenantLimitsSchema), ttlMs, 10_000, options.onRefreshError);
    this.keys = new RefreshingCache((keyId) => this.read(keyLimitsKey(prefix, keyId), keyLimitsSchema), ttlMs, 10_000, options.onRefreshError);
  }

  /** A tenant's limits (cached; `{}` when it has none). */
  tenantLimits(tenant: string): Promise<TenantLimits> {
    return this.tenants.get(tenant);
  }

  /** A key's own limits (cached; `{}` when it has none). */
  keyLimits(keyId: string): Promise<KeyLimits> {
    return this.keys.get(keyId);
  }

  /**
   * Replaces a tenant's limits with `document` (`{}` removes them all).
   * @throws INVALID_ARGUMENT naming the bad field.
   */
  async setTenantLimits(tenant: string, document: unknown): Promise<TenantLimits> {
    const limits = parseLimits(tenantLimitsSchema, document, 'tenant');
    await this.write(tenantLimitsKey(this.prefix, tenant), limits);
    this.tenants.set(tenant, limits);
    return limits;
  }

  /**
   * Replaces a key's limits with `document` (`{}` removes them).
   * @throws INVALID_ARGUMENT naming the bad field.
   */
  async setKeyLimits(keyId: string, document: unknown): Promise<KeyLimits> {
    const limits = parseLimits(keyLimitsSchema, document, 'key');
    await this.write(keyLimitsKey(this.prefix, keyId), limits);
    this.keys.set(keyId, limits);
    return limits;
  }

  /** Forgets a deleted tenant's limits (so a tenant created later under the same id starts unlimited). */
  async deleteTenantLimits(tenant: string): Promise<void> {
    await this.redis.del(tenantLimitsKey(this.prefix, tenant));
    this.tenants.delete(tenant);
  }

  /** Forgets a deleted key's limits. */
  async deleteKeyLimits(keyId: string): Promise<void> {
    await this.redis.del(keyLimitsKey(this.prefix, keyId));
    this.keys.delete(keyId);
  }

  private async write(key: string, limits: object): Promise<void> {
    if (Object.keys(limits).length === 0) await this.redis.del(key);
    else await this.redis.set(key, JSON.stringify(limits));
  }

  /** Reads a stored document; one that no longer validates (a schema change) reads as no limits, never as an error. */
  private async read<T extends object>(key: string, schema: z.ZodType<T>): Promise<T> {
    const stored = await this.redis.get(key);
    if (stored === null) return {} as T;
    try {
      const parsed = schema.safeParse(JSON.parse(stored));
      return parsed.success ? parsed.data : ({} as T);
    } catch {
      return {} as T;
    }
  }
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
