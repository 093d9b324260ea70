import type {
  ApiKey,
  CreatedKey,
  KeyChanges,
  KeyCreation,
  KeyLimits,
  Tenant,
  TenantChanges,
  TenantCreation,
  TenantLimits,
  UsageQuery,
  UsageReport,
} from './control-types.js';
import { jsonBody, queryString, type HttpTransport } from './http-transport.js';
import { segment } from './models-api.js';

interface Signal {
  signal?: AbortSignal | undefined;
}

/** `client.keys`: API keys (an admin any tenant's; a `keys:write` key its own tenant's, within what it holds). */
export class KeysApi {
  constructor(private readonly http: HttpTransport) {}

  /** Creates a key; the answer holds the secret (`key`), this once. Not retried after a connection failure. */
  create(creation: KeyCreation, options: Signal = {}): Promise<CreatedKey> {
    return this.http.json({ method: 'POST', path: '/v1/keys', body: jsonBody(creation), idempotent: false, signal: options.signal });
  }

  async list(options: Signal & { tenant?: string } = {}): Promise<ApiKey[]> {
    const path = `/v1/keys${queryString({ tenant: options.tenant })}`;
    return (await this.http.json<{ keys: ApiKey[] }>({ method: 'GET', path, idempotent: true, signal: options.signal })).keys;
  }

  get(keyId: string, options: Signal = {}): Promise<ApiKey> {
    return this.http.json({ method: 'GET', path: `/v1/keys/${segment(keyId)}`, idempotent: true, signal: options.signal });
  }

  /** Renames a key or changes its scopes, models, expiry or limits. */
  update(keyId: string, changes: KeyChanges, options: Signal = {}): Promise<ApiKey> {
    return this.http.json({ method: 'PATCH', path: `/v1/keys/${segment(keyId)}`, body: jsonBody(changes), idempotent: true, signal: options.signal });
  }

  /** Revokes a key: refused at once by every API process. */
  revoke(keyId: string, options: Signal = {}): Promise<ApiKey> {
    return this.http.json({ method: 'DELETE', path: `/v1/keys/${segment(keyId)}`, idempotent: true, signal: options.signal });
  }
}

/** `client.tenants`: owners of models and keys (admin only). */
export class TenantsApi {
  constructor(private readonly http: HttpTransport) {}

  create(creation: TenantCreation, options: Signal = {}): Promise<Tenant> {
    // Creating twice is a 409 naming the tenant, not a second tenant: safe to send again.
    return this.http.json({ method: 'POST', path: '/v1/tenants', body: jsonBody(creation), idempotent: true, signal: options.signal });
  }

  async list(options: Signal = {}): Promise<Tenant[]> {
    return (await this.http.json<{ tenants: Tenant[] }>({ method: 'GET', path: '/v1/tenants', idempotent: true, signal: options.signal })).tenants;
  }

  get(tenant: string, options: Signal = {}): Promise<Tenant> {
    return this.http.json({ method: 'GET', path: `/v1/tenants/${segment(tenant)}`, idempotent: true, signal: options.signal });
  }

  update(tenant: string, changes: TenantChanges, options: Signal = {}): Promise<Tenant> {
    return this.http.json({ method: 'PATCH', path: `/v1/tenants/${segment(tenant)}`, body: jsonBody(changes), idempotent: true, signal: options.signal });
  }

  /** Deletes a tenant that owns no models; its keys stop working at once. */
  remove(tenant: string, options: Signal = {}): Promise<void> {
    return this.http.empty({ method: 'DELETE', path: `/v1/tenants/${segment(tenant)}`, idempotent: true, signal: options.signal });
  }
}

/** `client.limits`: a tenant's rates, quotas and caps, and a key's own rates. */
export class LimitsApi {
  constructor(private readonly http: HttpTransport) {}

  tenant(tenant: string, options: Signal = {}): Promise<TenantLimits> {
    return this.http.json({ method: 'GET', path: `/v1/tenants/${segment(tenant)}/limits`, idempotent: true, signal: options.signal });
  }

  /** Replaces a tenant's limits whole ({} removes them all). */
  setTenant(tenant: string, limits: TenantLimits, options: Signal = {}): Promise<TenantLimits> {
    return this.http.json({ method: 'PUT', path: `/v1/tenants/${segment(tenant)}/limits`, body: jsonBody(limits), idempotent: true, signal: options.signal });
  }

  key(keyId: string, options: Signal = {}): Promise<KeyLimits> {
    return this.http.json({ method: 'GET', path: `/v1/keys/${segment(keyId)}/limits`, idempotent: true, signal: options.signal });
  }

  /** Replaces a key's rate limits whole ({} removes them). */
  setKey(keyId: string, limits: KeyLimits, options: Signal = {}): Promise<KeyLimits> {
    return this.http.json({ method: 'PUT', path: `/v1/keys/${segment(keyId)}/limits`, body: jsonBody(limits), idempotent: true, signal: options.signal });
  }
}

/** `client.usage`: metered usage per tenant, key or model, over whole UTC hours. */
export class UsageApi {
  constructor(private readonly http: HttpTransport) {}

  /** The usage report as JSON. */
  report(query: UsageQuery = {}, options: Signal = {}): Promise<UsageReport> {
    return this.http.json({ method: 'GET', path: `/v1/usage${queryString({ ...query, format: 'json' })}`, idempotent: true, signal: options.signal });
  }

  /** The same report as CSV text (for billing tools). */
  async csv(query: UsageQuery = {}, options: Signal = {}): Promise<string> {
    const response = await this.http.call({
      method: 'GET',
      path: `/v1/usage${queryString({ ...query, format: 'csv' })}`,
      headers: { accept: 'text/csv' },
      idempotent: true,
      signal: options.signal,
    });
    return response.text();
  }
}
