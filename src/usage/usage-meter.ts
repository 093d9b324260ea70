import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import { hourlyUsageKey, usageFlushKey, usageTenantsKey, usageTotalKey } from '../redis-keys.js';
import { dayOf, hourOf, isLimitRefusal, monthOf, usageField, usageMeasures, type UsageEvent } from './usage-record.js';

/** A tenant's quota-counted usage in one period (what quotas are checked against). */
export interface PeriodTotals {
  requests: number;
  computeNs: number;
}

/** A tenant's usage in the current UTC day and month. */
export interface QuotaTotals {
  day: PeriodTotals;
  month: PeriodTotals;
}

/**
 * The totals a flush left in Redis, by `tenant|day|2025-01-31` / `tenant|month|2025-01` (periodKey): what every
 * process had flushed by then, this one included.
 */
export type FlushedTotals = Map<string, PeriodTotals>;

export interface UsageMeterOptions {
  prefix: string;
  /** GANTRY_USAGE_FLUSH_INTERVAL_MS: how often metered usage goes to Redis. */
  flushIntervalMs: number;
  /** GANTRY_USAGE_RETENTION_DAYS: how long an hour of usage stays in Redis. */
  retentionDays: number;
  logger: Logger;
}

/** One flush: the increments to apply, under an id that makes applying it twice a no-op. */
interface FlushBatch {
  id: string;
  /** Redis key → field → increment. */
  increments: Map<string, Map<string, number>>;
  /** The total keys among them (Redis key → periodKey), in the order the script answers their new values. */
  totals: Map<string, string>;
  tenants: Set<string>;
  /** The batch's quota-counted usage, by periodKey. */
  local: Map<string, PeriodTotals>;
}

// Applies a batch once: the marker (KEYS[1]) is set only by the first application; a retry after a reply that
// was lost finds it and changes nothing. Either way it answers the current day/month totals of the batch.
//   KEYS: marker, tenants set, then one key per entry.  ARGV: marker ttl ms, tenant count, tenants…, then per
//   key: kind (1 = a total, whose values are answered), ttl ms, field count, field, increment, field, increment…
const flushScript = `
local first = redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1])
local at = 2
local tenants = tonumber(ARGV[at]); at = at + 1
if first and tenants > 0 then redis.call('SADD', KEYS[2], unpack(ARGV, at, at + tenants - 1)) end
at = at + tenants
local answer = {}
for k = 3, #KEYS do
  local kind = ARGV[at]; local ttl = ARGV[at + 1]; local fields = tonumber(ARGV[at + 2]); at = at + 3
  if first then
    for f = 1, fields do
      redis.call('HINCRBY', KEYS[k], ARGV[at], ARGV[at + 1])
      at = at + 2
    end
    redis.call('PEXPIRE', KEYS[k], ttl)
  else
    at = at + 2 * fields
  end
  if kind == '1' then
    local values = redis.call('HMGET', KEYS[k], 'requests', 'compute_ns')
    answer[#answer + 1] = values[1] or '0'
    answer[#answer + 1] = values[2] or '0'
  end
end
return answer`;

const hourMs = 3600_000;
const dayMs = 24 * hourMs;

/**
 * Meters inference requests: each is summed in memory per (hour, tenant, key, model, version, outcome) and the
 * sums are added to Redis (HINCRBY into hourly hashes, and per-tenant day and month totals for the quotas) about
 * every flushIntervalMs, in one script per flush, and at close. A flush that fails is kept and retried under the
 * same id, so Redis being away delays usage but loses none, and a retry never counts twice. Only a process that
 * dies without closing loses what it had not flushed (at most one interval's worth).
 */
export class UsageMeter {
  private pending = new Map<
    string,
    { event: UsageEvent; hour: string; day: string; month: string; requests: number; rows: number; computeNs: number; bytesIn: number; bytesOut: number }
  >();
  /** Quota-counted usage recorded here and not yet confirmed in Redis (pending and in-flight batches). */
  private readonly unflushed = new Map<string, PeriodTotals>();
  private inFlight: FlushBatch | undefined;
  private flushing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly processId = randomUUID().slice(0, 12);
  private flushSequence = 0;
  private readonly flushedListeners: Array<(totals: FlushedTotals) => void> = [];
  private readonly scriptName = 'gantryUsageFlush';
  private closed = false;

  constructor(
    private readonly redis: Redis,
    private readonly options: UsageMeterOptions,
  ) {
    if (!(this.scriptName in redis)) redis.defineCommand(this.scriptName, { lua: flushScript });
  }

  /** Starts flushing every flushIntervalMs. */
  start(): void {
    this.timer ??= setInterval(() => void this.flush(), this.options.flushIntervalMs);
    this.timer.unref();
  }

  /**
   * Counts one request (in memory; Redis sees it at the next flush). `requests` is 0 for what a request used
   * after it was counted: the compute of an asynchronous job, metered by the worker that ran it, while the job's
   * request was counted when it was made.
   */
  record(event: UsageEvent, now = Date.now(), requests = 1): void {
    const hour = this.hourAt(now);
    const entryKey = `${hour}|${event.tenant}|${event.keyId}|${event.model}|${event.version}|${event.outcome}`;
    let entry = this.pending.get(entryKey);
    if (entry === undefined) {
      entry = { event, hour, day: dayOf(now), month: monthOf(now), requests: 0, rows: 0, computeNs: 0, bytesIn: 0, bytesOut: 0 };
      this.pending.set(entryKey, entry);
    }
    entry.requests += requests;
    entry.rows += event.rows;
    entry.computeNs += event.computeNs;
    entry.bytesIn += event.bytesIn;
    entry.bytesOut += event.bytesOut;
    if (!isLimitRefusal(event.outcome)) {
      addTo(this.unflushed, periodKey(event.tenant, 'day', entry.day), requests, event.computeNs);
      addTo(this.unflushed, periodKey(event.tenant, 'month', entry.month), requests, event.computeNs);
    }
  }

  private hour = { startMs: 0, endMs: 0, name: '' };

  /** The hour's name (hourOf), made once an hour rather than once a request. */
  private hourAt(now: number): string {
    if (now < this.hour.startMs || now >= this.hour.endMs) {
      const startMs = now - (now % hourMs);
      this.hour = { startMs, endMs: startMs + hourMs, name: hourOf(now) };
    }
    return this.hour.name;
  }

  /** This process's quota-counted usage of `tenant` in the current day and month that Redis does not have yet. */
  unflushedTotals(tenant: string, now = Date.now()): QuotaTotals {
    return {
      day: this.unflushed.get(periodKey(tenant, 'day', dayOf(now))) ?? { requests: 0, computeNs: 0 },
      month: this.unflushed.get(periodKey(tenant, 'month', monthOf(now))) ?? { requests: 0, computeNs: 0 },
    };
  }

  /** Tells `listener` the totals each successful flush left in Redis (the quota checker's freshest numbers). */
  onFlushed(listener: (totals: FlushedTotals) => void): void {
    this.flushedListeners.push(listener);
  }

  /** Sends what is metered so far to Redis; resolves when it is there (or the attempt failed and will be retried). */
  flush(): Promise<void> {
    this.flushing ??= this.flushOnce().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  /**
   * Stops the timer and flushes what is left, retrying for up to `timeoutMs` while Redis is unreachable; what
   * still cannot be written is logged with its counts (it is lost).
   */
  async close(timeoutMs = 5000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await this.flush();
      if (this.inFlight === undefined && this.pending.size === 0) return;
      if (Date.now() >= deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    let requests = this.inFlight === undefined ? 0 : sumRequests(this.inFlight);
    for (const entry of this.pending.values()) requests += entry.requests;
    this.options.logger.error({ requests }, 'usage of these requests could not be written to Redis before shutdown and is lost');
  }

  private async flushOnce(): Promise<void> {
    if (this.inFlight !== undefined && !(await this.apply(this.inFlight))) return;
    if (this.pending.size === 0) return;
    const batch = this.takeBatch();
    this.inFlight = batch;
    await this.apply(batch);
  }

  /** Applies a batch; true once Redis has it (then it is forgotten here), false to retry it later. */
  private async apply(batch: FlushBatch): Promise<boolean> {
    const keys: string[] = [usageFlushKey(this.options.prefix, batch.id), usageTenantsKey(this.options.prefix)];
    const args: string[] = [String(dayMs), String(batch.tenants.size), ...batch.tenants];
    const retentionMs = this.options.retentionDays * dayMs;
    for (const [key, fields] of batch.increments) {
      const isTotal = batch.totals.has(key);
      // A day's total is needed for its day, a month's for its month; hours for as long as usage is kept.
      const ttlMs = !isTotal ? retentionMs : key.includes(':day:') ? 3 * dayMs : 40 * dayMs;
      keys.push(key);
      args.push(isTotal ? '1' : '0', String(ttlMs), String(fields.size));
      for (const [field, increment] of fields) args.push(field, String(increment));
    }
    let answer: string[];
    try {
      answer = (await (this.redis as unknown as Record<string, (...values: unknown[]) => Promise<string[]>>)[this.scriptName]!(
        keys.length,
        ...keys,
        ...args,
      )) as string[];
    } catch (error) {
      this.options.logger.warn({ err: (error as Error).message, requests: sumRequests(batch) }, 'could not write metered usage to Redis; retrying');
      return false;
    }
    this.inFlight = undefined;
    for (const [key, totals] of batch.local) subtractFrom(this.unflushed, key, totals);
    const flushed: FlushedTotals = new Map();
    let index = 0;
    for (const period of batch.totals.values()) {
      flushed.set(period, { requests: Number(answer[2 * index] ?? 0), computeNs: Number(answer[2 * index + 1] ?? 0) });
      index++;
    }
    for (const listener of this.flushedListeners) listener(flushed);
    return true;
  }

  /** Turns what is pending into one batch (and starts a new pending map). */
  private takeBatch(): FlushBatch {
    const prefix = this.options.prefix;
    const increments = new Map<string, Map<string, number>>();
    const totals = new Map<string, string>();
    const tenants = new Set<string>();
    const local = new Map<string, PeriodTotals>();
    const add = (key: string, field: string, value: number) => {
      if (value === 0) return;
      let fields = increments.get(key);
      if (fields === undefined) increments.set(key, (fields = new Map()));
      fields.set(field, (fields.get(field) ?? 0) + value);
    };
    for (const entry of this.pending.values()) {
      const { tenant, keyId, model, version, outcome } = entry.event;
      tenants.add(tenant);
      const hourly = hourlyUsageKey(prefix, tenant, entry.hour);
      const values = {
        requests: entry.requests,
        rows: entry.rows,
        compute_ns: Math.round(entry.computeNs),
        bytes_in: entry.bytesIn,
        bytes_out: entry.bytesOut,
      };
      for (const measure of usageMeasures) add(hourly, usageField(keyId, model, version, outcome, measure), values[measure]);
      if (isLimitRefusal(outcome)) continue;
      for (const [period, when] of [
        ['day', entry.day],
        ['month', entry.month],
      ] as const) {
        const totalKey = usageTotalKey(prefix, tenant, period, when);
        totals.set(totalKey, periodKey(tenant, period, when));
        add(totalKey, 'requests', entry.requests);
        add(totalKey, 'compute_ns', Math.round(entry.computeNs));
        addTo(local, periodKey(tenant, period, when), entry.requests, entry.computeNs);
      }
    }
    // A total key with nothing to add still needs an entry, so the script answers its values.
    for (const key of totals.keys()) if (!increments.has(key)) increments.set(key, new Map());
    this.pending = new Map();
    return { id: `${this.processId}:${this.flushSequence++}`, increments, totals, tenants, local };
  }
}

/** Names one tenant's day (`2025-01-31`) or month (`2025-01`) in the meter's sums and in FlushedTotals. */
export function periodKey(tenant: string, period: 'day' | 'month', when: string): string {
  return `${tenant}|${period}|${when}`;
}

function addTo(map: Map<string, PeriodTotals>, key: string, requests: number, computeNs: number): void {
  const totals = map.get(key);
  if (totals === undefined) map.set(key, { requests, computeNs });
  else {
    totals.requests += requests;
    totals.computeNs += computeNs;
  }
}

function subtractFrom(map: Map<string, PeriodTotals>, key: string, amount: PeriodTotals): void {
  const totals = map.get(key);
  if (totals === undefined) return;
  totals.requests -= amount.requests;
  totals.computeNs -= amount.computeNs;
  if (totals.requests <= 0) map.delete(key);
}

function sumRequests(batch: FlushBatch): number {
  let requests = 0;
  for (const [key, fields] of batch.increments) {
    if (batch.totals.has(key)) continue;
    for (const [field, value] of fields) if (field.endsWith('|requests')) requests += value;
  }
  return requests;
}
