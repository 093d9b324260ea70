/**
 * Who is calling: resolved once per request by the authentication plugin (src/api/plugins/principal.ts) and read
 * by everything below the transports. Nothing else reads keys or auth headers.
 */

/**
 * What a key may do. `admin` implies every other scope, in every tenant. `metrics:read` reads /metrics (every
 * tenant's numbers; for Prometheus, when GANTRY_METRICS_PUBLIC is false).
 */
export const scopes = ['models:read', 'models:write', 'infer', 'usage:read', 'keys:write', 'metrics:read', 'admin'] as const;
export type Scope = (typeof scopes)[number];

export interface Principal {
  /** The tenant the key belongs to; its models are the ones the caller's model names resolve to. */
  tenant: string;
  /** The key's public id (the part after `gk_`, before the secret); `anonymous` when GANTRY_AUTH=off. */
  keyId: string;
  scopes: ReadonlySet<Scope>;
  /** Bare model names this key may use, within its tenant; undefined: all of the tenant's models. */
  models?: ReadonlySet<string>;
}

/** The tenant that owns the admin's models and every model uploaded before tenants existed. */
export const defaultTenant = 'default';

/** Tenant ids: short, lower-case, safe in Redis keys, queue names, hash tags and file names. */
export const tenantIdPattern = /^[a-z0-9][a-z0-9-]{0,31}$/;

export function isAdmin(principal: Principal): boolean {
  return principal.scopes.has('admin');
}

/** True when the principal holds `scope` (an admin holds every scope). */
export function hasScope(principal: Principal, scope: Scope): boolean {
  return principal.scopes.has(scope) || principal.scopes.has('admin');
}

/** The principal of every request while GANTRY_AUTH=off (loopback only): the admin of the default tenant. */
export const anonymousAdmin: Principal = Object.freeze({ tenant: defaultTenant, keyId: 'anonymous', scopes: new Set<Scope>(['admin']) });

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the authentication plugin before any handler runs. */
    principal: Principal;
  }
}
