/**
 * Redis names of the usage meter. They share the `{usage}` hash tag, so one flush (one script over every tenant's
 * counters) runs on one Redis Cluster shard. Tenant ids, periods and process ids are checked or generated before
 * they get here, so they cannot break out of a name.
 */

/** Hash: one tenant's usage in one UTC hour (fields: usage-record.ts usageField). */
export function hourlyUsageKey(prefix: string, tenant: string, hour: string): string {
  return `${prefix}:usage{usage}:hour:${tenant}:${hour}`;
}

/** Hash: a tenant's requests and compute_ns in one UTC day (`day`, 2025-01-31) or month (`month`, 2025-01): what quotas are checked against. */
export function usageTotalKey(prefix: string, tenant: string, period: 'day' | 'month', when: string): string {
  return `${prefix}:usage{usage}:total:${tenant}:${period}:${when}`;
}

/** Set: every tenant that has metered usage (so the admin's report finds them without scanning). */
export function usageTenantsKey(prefix: string): string {
  return `${prefix}:usage{usage}:tenants`;
}

/** String: marks one flush as applied, so a flush retried after a lost reply is not counted twice. */
export function usageFlushKey(prefix: string, flushId: string): string {
  return `${prefix}:usage{usage}:flush:${flushId}`;
}
