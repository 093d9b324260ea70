import type { Redis } from 'ioredis';
import { hourlyUsageKey, usageTenantsKey } from '../redis-keys.js';
import { emptyCounts, hourOf, parseUsageField, usageOutcomes, type UsageCounts, type UsageOutcome } from './usage-record.js';

export type UsageGrouping = 'tenant' | 'key' | 'model';

export interface UsageQuery {
  /** Start of the first hour included (ms since the epoch, on an hour). */
  fromMs: number;
  /** End of the last hour included, exclusive (on an hour). */
  toMs: number;
  /** The tenants to report, or 'all' (every tenant with usage). */
  tenants: readonly string[] | 'all';
  groupBy: UsageGrouping;
  /** `total`: one row per group over the whole span; `hour`: one row per group and hour. */
  granularity: 'total' | 'hour';
}

/** One row of the report: a group (and hour), its counters and its requests by outcome. */
export interface UsageRow {
  /** The UTC hour (`2025-01-31T13:00:00.000Z`) with granularity `hour`. */
  hour?: string;
  tenant: string;
  /** With groupBy `key`. */
  keyId?: string;
  /** The qualified model name, with groupBy `model` ('' for requests that never reached a model). */
  model?: string;
  counts: UsageCounts;
  outcomes: Record<UsageOutcome, number>;
}

const hourMs = 3600_000;
/** HGETALLs sent per pipeline: bounds what one report holds in flight however long its span. */
const pipelineSize = 256;

/**
 * Reads metered usage back from the hourly hashes and sums it per group. Costs one HGETALL per tenant and hour in
 * the span (pipelined), so spans are bounded by GANTRY_MAX_USAGE_QUERY_HOURS.
 */
export async function readUsage(redis: Redis, prefix: string, query: UsageQuery): Promise<UsageRow[]> {
  const tenants = query.tenants === 'all' ? (await redis.smembers(usageTenantsKey(prefix))).sort() : [...query.tenants];
  const hours: number[] = [];
  for (let hour = query.fromMs; hour < query.toMs; hour += hourMs) hours.push(hour);
  const reads: Array<{ tenant: string; hour: number }> = tenants.flatMap((tenant) => hours.map((hour) => ({ tenant, hour })));
  const rows = new Map<string, UsageRow>();
  for (let start = 0; start < reads.length; start += pipelineSize) {
    const slice = reads.slice(start, start + pipelineSize);
    const pipeline = redis.pipeline();
    for (const { tenant, hour } of slice) pipeline.hgetall(hourlyUsageKey(prefix, tenant, hourOf(hour)));
    const results = (await pipeline.exec()) ?? [];
    results.forEach(([error, value], index) => {
      if (error !== null) throw error;
      const { tenant, hour } = slice[index]!;
      for (const [field, text] of Object.entries(value as Record<string, string>)) {
        const parsed = parseUsageField(field);
        if (parsed === undefined) continue;
        const row = rowFor(rows, query, tenant, hour, parsed.keyId, parsed.model);
        const amount = Number(text);
        row.counts[parsed.measure] += amount;
        if (parsed.measure === 'requests' && (usageOutcomes as readonly string[]).includes(parsed.outcome))
          row.outcomes[parsed.outcome as UsageOutcome] += amount;
      }
    });
  }
  return [...rows.values()];
}

function rowFor(rows: Map<string, UsageRow>, query: UsageQuery, tenant: string, hour: number, keyId: string, model: string): UsageRow {
  const hourLabel = query.granularity === 'hour' ? new Date(hour).toISOString() : '';
  const group = query.groupBy === 'key' ? keyId : query.groupBy === 'model' ? model : '';
  const id = `${hourLabel}|${tenant}|${group}`;
  let row = rows.get(id);
  if (row === undefined) {
    row = {
      ...(query.granularity === 'hour' ? { hour: hourLabel } : {}),
      tenant,
      ...(query.groupBy === 'key' ? { keyId } : {}),
      ...(query.groupBy === 'model' ? { model } : {}),
      counts: emptyCounts(),
      outcomes: Object.fromEntries(usageOutcomes.map((outcome) => [outcome, 0])) as Record<UsageOutcome, number>,
    };
    rows.set(id, row);
  }
  return row;
}

/** Compute nanoseconds as exact decimal seconds (`1.000250000`), for the CSV a bill is made from. */
export function formatComputeSeconds(nanoseconds: number): string {
  const whole = Math.floor(nanoseconds / 1e9);
  const fraction = Math.round(nanoseconds - whole * 1e9);
  return `${whole}.${String(fraction).padStart(9, '0')}`;
}
