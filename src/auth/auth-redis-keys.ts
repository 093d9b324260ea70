/**
 * Redis key and channel names of the control plane (tenants, API keys, the admin key). All live under the
 * deployment's GANTRY_QUEUE_PREFIX and share the `{gantry}` hash tag, so a transaction over a tenant and its keys
 * stays on one Redis Cluster shard. Ids are validated before they get here (tenantIdPattern, keyIdPattern), so
 * they cannot break out of a name.
 */

/** Hash: one tenant's record (name, createdAt, disabled). */
export function tenantKey(prefix: string, tenant: string): string {
  return `${prefix}:auth{gantry}:tenant:${tenant}`;
}

/** Set: the ids of every tenant. */
export function tenantIndexKey(prefix: string): string {
  return `${prefix}:auth{gantry}:tenants`;
}

/** Hash: one API key's record (its hash, tenant, scopes, models, dates); never the key itself. */
export function apiKeyKey(prefix: string, keyId: string): string {
  return `${prefix}:auth{gantry}:key:${keyId}`;
}

/** Set: the ids of one tenant's keys. */
export function tenantKeyIndexKey(prefix: string, tenant: string): string {
  return `${prefix}:auth{gantry}:tenant-keys:${tenant}`;
}

/** Hash: the admin key's hash and where it came from. */
export function adminKeyKey(prefix: string): string {
  return `${prefix}:auth{gantry}:admin-key`;
}

/** Pub/sub: "forget what you cached about key X / tenant Y / the admin key", to every API process at once. */
export function authEventsChannel(prefix: string): string {
  return `${prefix}:auth-events`;
}
