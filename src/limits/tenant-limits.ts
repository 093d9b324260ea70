import { z } from 'zod';

/**
 * What a tenant, or one of its keys, may spend. Every field is optional: a missing field is "unlimited". Rates
 * are counted per key and per tenant across every API process (src/limits/rate-limiter.ts); quotas are counted
 * per tenant in UTC days and months against the usage meter (src/limits/quota-checker.ts); the caps on models,
 * versions and stored bytes are enforced where models are uploaded.
 *
 * The documents are replaced whole (`PUT`), so `{}` removes every limit.
 */
const count = z.number().int().positive();
const seconds = z.number().positive();

export const tenantLimitsSchema = z
  .object({
    /** Requests per second over all the tenant's keys, on every route (a fixed one-second window). */
    requestsPerSecond: count.max(1_000_000).optional(),
    /** Requests per minute over all the tenant's keys, on every route (a fixed one-minute window). */
    requestsPerMinute: count.max(60_000_000).optional(),
    /** Inference requests per UTC day. */
    requestsPerDay: count.optional(),
    /** Inference requests per UTC calendar month. */
    requestsPerMonth: count.optional(),
    /** Seconds of model compute (on the workers) per UTC day. */
    computeSecondsPerDay: seconds.optional(),
    /** Seconds of model compute (on the workers) per UTC calendar month. */
    computeSecondsPerMonth: seconds.optional(),
    /** Models the tenant may have at once. */
    maxModels: count.optional(),
    /** Versions the tenant may have at once, over all its models. */
    maxVersions: count.optional(),
    /** Bytes of model files the tenant's versions may take in the model store. */
    maxStoredBytes: count.optional(),
  })
  .strict();

export type TenantLimits = z.infer<typeof tenantLimitsSchema>;

export const keyLimitsSchema = z
  .object({
    /** Requests per second with this key, on every route. */
    requestsPerSecond: count.max(1_000_000).optional(),
    /** Requests per minute with this key, on every route. */
    requestsPerMinute: count.max(60_000_000).optional(),
  })
  .strict();

export type KeyLimits = z.infer<typeof keyLimitsSchema>;

/** The quota fields of a tenant's limits, the ones checked against metered usage. */
export type QuotaName = 'requestsPerDay' | 'requestsPerMonth' | 'computeSecondsPerDay' | 'computeSecondsPerMonth';
export const quotaNames: readonly QuotaName[] = ['requestsPerDay', 'requestsPerMonth', 'computeSecondsPerDay', 'computeSecondsPerMonth'];

/** True when the limits hold a per-second or per-minute rate (so the rate limiter has something to count). */
export function hasRateLimit(limits: { requestsPerSecond?: number; requestsPerMinute?: number }): boolean {
  return limits.requestsPerSecond !== undefined || limits.requestsPerMinute !== undefined;
}

/** True when the tenant's limits hold any quota. */
export function hasQuota(limits: TenantLimits): boolean {
  return quotaNames.some((name) => limits[name] !== undefined);
}
