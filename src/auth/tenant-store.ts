import type { Redis } from 'ioredis';
import { errors } from '../errors.js';
import { publishAuthEvent, type AuthChangeListener } from './auth-events.js';
import { apiKeyKey, tenantIndexKey, tenantKey, tenantKeyIndexKey } from '../redis-keys.js';
import { defaultTenant } from './principal.js';

/** A tenant: an owner of models and keys. */
export interface TenantRecord {
  id: string;
  name: string;
  createdAt: string;
  /** A disabled tenant's keys are refused (403) until it is enabled again; its models stay. */
  disabled: boolean;
}

export interface TenantChanges {
  name?: string;
  disabled?: boolean;
}

// Creation is one script so that two API processes creating tenants at once cannot pass the cap together.
const createScript = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[1]) then return -1 end
redis.call('HSET', KEYS[1], 'name', ARGV[3], 'createdAt', ARGV[4], 'disabled', '0')
redis.call('SADD', KEYS[2], ARGV[2])
return 1`;

function parseTenant(id: string, fields: Record<string, string>): TenantRecord | undefined {
  if (fields.createdAt === undefined) return undefined;
  return { id, name: fields.name ?? id, createdAt: fields.createdAt, disabled: fields.disabled === '1' };
}

/** Tenants in Redis. The default tenant always exists (ensureDefaultTenant at start-up, and reads make it up). */
export class TenantStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly maxTenants: number,
  ) {}

  /** Set by the control plane: this process's authenticator forgets a change at once. */
  onChange: AuthChangeListener | undefined;

  /** Creates the default tenant's record if it is missing (every API start; idempotent). */
  async ensureDefaultTenant(): Promise<void> {
    const key = tenantKey(this.prefix, defaultTenant);
    await this.redis
      .multi()
      .hsetnx(key, 'name', 'Default tenant')
      .hsetnx(key, 'createdAt', new Date().toISOString())
      .hsetnx(key, 'disabled', '0')
      .sadd(tenantIndexKey(this.prefix), defaultTenant)
      .exec();
  }

  /**
   * @throws 409 ALREADY_EXISTS for an id in use; 409 FAILED_PRECONDITION past GANTRY_MAX_TENANTS.
   */
  async create(id: string, name: string | undefined): Promise<TenantRecord> {
    const createdAt = new Date().toISOString();
    const outcome = (await this.redis.eval(
      createScript,
      2,
      tenantKey(this.prefix, id),
      tenantIndexKey(this.prefix),
      String(this.maxTenants),
      id,
      name ?? id,
      createdAt,
    )) as number;
    if (outcome === 0) throw errors.tenantExists(id);
    if (outcome === -1) throw errors.capReached('tenants', this.maxTenants, 'GANTRY_MAX_TENANTS');
    return { id, name: name ?? id, createdAt, disabled: false };
  }

  async get(id: string): Promise<TenantRecord | undefined> {
    const record = parseTenant(id, await this.redis.hgetall(tenantKey(this.prefix, id)));
    if (record === undefined && id === defaultTenant) return { id, name: 'Default tenant', createdAt: new Date(0).toISOString(), disabled: false };
    return record;
  }

  /** Every tenant, by id. */
  async list(): Promise<TenantRecord[]> {
    const ids = (await this.redis.smembers(tenantIndexKey(this.prefix))).sort();
    if (!ids.includes(defaultTenant)) ids.unshift(defaultTenant);
    const tenants: TenantRecord[] = [];
    for (const id of ids) {
      const record = await this.get(id);
      if (record !== undefined) tenants.push(record);
    }
    return tenants;
  }

  /** @throws 404 for an unknown tenant. */
  async update(id: string, changes: TenantChanges): Promise<TenantRecord> {
    const current = await this.get(id);
    if (current === undefined) throw errors.tenantNotFound(id);
    const next: TenantRecord = { ...current, name: changes.name ?? current.name, disabled: changes.disabled ?? current.disabled };
    await this.redis.hset(tenantKey(this.prefix, id), { name: next.name, createdAt: next.createdAt, disabled: next.disabled ? '1' : '0' });
    await publishAuthEvent(this.redis, this.prefix, { type: 'tenant', tenant: id }, this.onChange);
    return next;
  }

  /**
   * Deletes a tenant and every key of it (they stop working on every API process at once). The caller checks
   * that it owns no models first. Returns the ids of the deleted keys.
   */
  async delete(id: string): Promise<string[]> {
    const keyIds = await this.redis.smembers(tenantKeyIndexKey(this.prefix, id));
    const transaction = this.redis.multi();
    for (const keyId of keyIds) transaction.del(apiKeyKey(this.prefix, keyId));
    transaction.del(tenantKeyIndexKey(this.prefix, id), tenantKey(this.prefix, id)).srem(tenantIndexKey(this.prefix), id);
    await transaction.exec();
    await publishAuthEvent(this.redis, this.prefix, { type: 'tenant', tenant: id }, this.onChange);
    for (const keyId of keyIds) await publishAuthEvent(this.redis, this.prefix, { type: 'key', keyId }, this.onChange);
    return keyIds;
  }
}
