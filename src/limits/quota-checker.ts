import type { Redis } from 'ioredis';
import { errors } from '../errors.js';
import { usageTotalKey } from '../redis-keys.js';
import { periodKey, type PeriodTotals, type QuotaTotals, type UsageMeter } from '../usage/usage-meter.js';
import { dayOf, monthOf, nextDayStart, nextMonthStart } from '../usage/usage-record.js';
import { RefreshingCache } from './refreshing-cache.js';
import { hasQuota, type QuotaName, type TenantLimits } from './tenant-limits.js';

/**
 * How long a process answers a tenant's quota totals from memory before it reads them again (in the background);
 * no answer is older than twice this (RefreshingCache).
 */
export const quotaTotalsCacheTtlMs = 500;

/** Which quota refused a request, and the metric label it is counted under. */
export interface QuotaRefusal {
  quota: QuotaName;
  limit: 'quota_requests_day' | 'quota_requests_month' | 'quota_compute_day' | 'quota_compute_month';
}

/**
 * Checks a tenant's day and month quotas (UTC) on requests and compute seconds against metered usage: what every
 * API process has flushed to Redis (read at most every quotaTotalsCacheTtlMs, and refreshed by this process's
 * own flushes) plus what this process metered and has not flushed yet. Another process's usage is therefore seen
 * at most a flush interval plus 1 s late (GANTRY_USAGE_FLUSH_INTERVAL_MS + 2 x quotaTotalsCacheTtlMs; 2 s by
 * default): a tenant can overshoot a quota by what the other processes serve it in that time, which is small
 * against a day's or a month's allowance and buys a request path without a Redis round trip for quotas. A request is
 * admitted while the quota is not yet used up, so the request that crosses the line completes; compute seconds
 * are known only once a request ran.
 */
export class QuotaChecker {
  private readonly totals: RefreshingCache<QuotaTotals>;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly meter: UsageMeter,
    options: { cacheTtlMs?: number; onRefreshError?: (error: unknown) => void } = {},
  ) {
    this.totals = new RefreshingCache((key) => this.read(key), options.cacheTtlMs ?? quotaTotalsCacheTtlMs, 10_000, options.onRefreshError);
    meter.onFlushed((flushed) => {
      // A flush answers the totals it left: the freshest numbers there are, so they replace what is cached.
      const tenants = new Set([...flushed.keys()].map((key) => key.split('|')[0]!));
      const now = Date.now();
      for (const tenant of tenants) {
        const day = flushed.get(periodKey(tenant, 'day', dayOf(now)));
        const month = flushed.get(periodKey(tenant, 'month', monthOf(now)));
        if (day !== undefined && month !== undefined) this.totals.set(cacheKey(tenant, now), { day, month });
      }
    });
  }

  /**
   * Throws 429 RESOURCE_EXHAUSTED naming the quota and when it resets, when one of the tenant's quotas is used up.
   * Costs no Redis call for a tenant without quotas, nor (once read) within the cache period.
   */
  async check(tenant: string, limits: TenantLimits, now = Date.now()): Promise<void> {
    if (!hasQuota(limits)) return;
    const refusal = await this.refusal(tenant, limits, now);
    if (refusal !== undefined) throw refusal.error;
  }

  /** The quota a request would break and the error to answer, or undefined when it may go on. */
  async refusal(tenant: string, limits: TenantLimits, now = Date.now()): Promise<(QuotaRefusal & { error: Error }) | undefined> {
    const stored = await this.totals.get(cacheKey(tenant, now));
    const local = this.meter.unflushedTotals(tenant, now);
    const month = sum(stored.month, local.month);
    const day = sum(stored.day, local.day);
    // Month quotas first: when both are used up, the month's later reset is the one worth waiting for.
    const checks: Array<[QuotaName, QuotaRefusal['limit'], number, Date]> = [
      ['requestsPerMonth', 'quota_requests_month', month.requests, nextMonthStart(now)],
      ['computeSecondsPerMonth', 'quota_compute_month', month.computeNs / 1e9, nextMonthStart(now)],
      ['requestsPerDay', 'quota_requests_day', day.requests, nextDayStart(now)],
      ['computeSecondsPerDay', 'quota_compute_day', day.computeNs / 1e9, nextDayStart(now)],
    ];
    for (const [quota, limit, used, resetsAt] of checks) {
      const allowed = limits[quota];
      if (allowed === undefined || used < allowed) continue;
      const isCompute = quota.startsWith('compute');
      const describe = (value: number) => (isCompute ? `${value.toFixed(3)} compute seconds` : `${value} requests`);
      return { quota, limit, error: errors.quotaExceeded(tenant, quota, describe(used), describe(allowed), resetsAt) };
    }
    return undefined;
  }

  private async read(key: string): Promise<QuotaTotals> {
    const [tenant, day, month] = key.split('|') as [string, string, string];
    const [dayValues, monthValues] = (await this.redis
      .pipeline()
      .hmget(usageTotalKey(this.prefix, tenant, 'day', day), 'requests', 'compute_ns')
      .hmget(usageTotalKey(this.prefix, tenant, 'month', month), 'requests', 'compute_ns')
      .exec()
      .then((results) => {
        for (const [error] of results ?? []) if (error !== null) throw error;
        return (results ?? []).map(([, value]) => value as Array<string | null>);
      })) as [Array<string | null>, Array<string | null>];
    return { day: toTotals(dayValues), month: toTotals(monthValues) };
  }
}

function cacheKey(tenant: string, now: number): string {
  return `${tenant}|${dayOf(now)}|${monthOf(now)}`;
}

function toTotals(values: Array<string | null>): PeriodTotals {
  return { requests: Number(values[0] ?? 0), computeNs: Number(values[1] ?? 0) };
}

function sum(a: PeriodTotals, b: PeriodTotals): PeriodTotals {
  return { requests: a.requests + b.requests, computeNs: a.computeNs + b.computeNs };
}
