import type { Redis } from 'ioredis';
import { rateCounterKey } from '../redis-keys.js';

/** One rate to count: at most `limit` requests per `windowMs`, for one key or one tenant. */
export interface RateRule {
  /** Which limit this is, for the 429's message and gantry_limit_rejections_total{limit}. */
  limit: 'rate_key' | 'rate_tenant';
  /** Whose rate: the key id or the tenant id (for the message). */
  owner: string;
  /** The counter's name without its window (see counterKey). */
  counter: string;
  max: number;
  windowMs: number;
}

/** Where a request stands against the rule closest to its limit (what RateLimit-* headers report). */
export interface RateStanding {
  rule: RateRule;
  remaining: number;
  /** Ms until the rule's window ends and its count starts again. */
  resetMs: number;
}

export type RateDecision = { allowed: true; standing: RateStanding } | { allowed: false; standing: RateStanding };

/**
 * Fixed windows counted in Redis, so every API process shares them: a request is counted against every rule or
 * none. If any rule is already at its limit, nothing is counted (a refused request uses no one's allowance) and
 * the script answers which rule refused it; otherwise every counter goes up by one. A counter lives for one
 * window (PEXPIRE on its first count), so idle keys and tenants leave nothing behind.
 *
 * Returns {0, count1, count2, ...} when allowed, {i, count_i} when rule i refused.
 */
const countScript = `
local rules = #KEYS
for i = 1, rules do
  local count = tonumber(redis.call('GET', KEYS[i]) or '0')
  if count >= tonumber(ARGV[i]) then return {i, count} end
end
local counts = {0}
for i = 1, rules do
  local count = redis.call('INCR', KEYS[i])
  if count == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[rules + i]) end
  counts[i + 1] = count
end
return counts`;

/**
 * Counts requests against per-key and per-tenant rates in Redis: one round trip (one script) per request that
 * has any rule, none for a request without rules. Once a rule refused a request, this process refuses that
 * rule's requests without asking Redis until its window ends (in a fixed window a count only grows), so a flood
 * past its limit costs no Redis round trip per request.
 */
export class RateLimiter {
  private readonly scriptName = 'gantryRateCount';
  /** Counter key (with its window) → when that window ends (ms since the epoch), for rules found at their limit. */
  private readonly exhausted = new Map<string, number>();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {
    if (!(this.scriptName in redis)) redis.defineCommand(this.scriptName, { lua: countScript });
  }

  /** Counts one request of `tenant` against `rules` (at least one); answers whether it may go on, and its standing. */
  async take(tenant: string, rules: readonly RateRule[], now = Date.now()): Promise<RateDecision> {
    const keys = rules.map((rule) => rateCounterKey(this.prefix, tenant, rule.counter, rule.windowMs, Math.floor(now / rule.windowMs)));
    const resetMs = rules.map((rule) => rule.windowMs - (now % rule.windowMs));
    for (let index = 0; index < rules.length; index++) {
      const until = this.exhausted.get(keys[index]!);
      if (until !== undefined && until > now) return { allowed: false, standing: { rule: rules[index]!, remaining: 0, resetMs: resetMs[index]! } };
    }
    // A counter outlives its window a little, so a process whose clock is slightly behind still finds it.
    const ttls = rules.map((rule, index) => String(resetMs[index]! + 1000 + Math.floor(rule.windowMs / 10)));
    const answer = (await (this.redis as unknown as Record<string, (...args: unknown[]) => Promise<number[]>>)[this.scriptName]!(
      keys.length,
      ...keys,
      ...rules.map((rule) => String(rule.max)),
      ...ttls,
    )) as number[];
    const refusedBy = answer[0]!;
    if (refusedBy > 0) {
      const rule = rules[refusedBy - 1]!;
      this.markExhausted(keys[refusedBy - 1]!, now + resetMs[refusedBy - 1]!);
      return { allowed: false, standing: { rule, remaining: 0, resetMs: resetMs[refusedBy - 1]! } };
    }
    // The rule with the fewest requests left is the one a client should pace itself by.
    let closest = 0;
    for (let index = 1; index < rules.length; index++) {
      if (rules[index]!.max - answer[index + 1]! < rules[closest]!.max - answer[closest + 1]!) closest = index;
    }
    const rule = rules[closest]!;
    return { allowed: true, standing: { rule, remaining: Math.max(0, rule.max - answer[closest + 1]!), resetMs: resetMs[closest]! } };
  }

  private markExhausted(key: string, until: number): void {
    this.exhausted.set(key, until);
    // Bounded: windows that ended are dropped whenever the map grows large.
    if (this.exhausted.size > 10_000) {
      const now = Date.now();
      for (const [candidate, end] of this.exhausted) if (end <= now) this.exhausted.delete(candidate);
    }
  }
}

/** The rules for a request: the key's own rates, then its tenant's (each per second and per minute, where set). */
export function rateRulesFor(
  tenant: string,
  keyId: string,
  keyLimits: { requestsPerSecond?: number; requestsPerMinute?: number },
  tenantLimits: { requestsPerSecond?: number; requestsPerMinute?: number },
): RateRule[] {
  const rules: RateRule[] = [];
  const add = (limit: RateRule['limit'], owner: string, counter: string, max: number | undefined, windowMs: number) => {
    if (max !== undefined) rules.push({ limit, owner, counter, max, windowMs });
  };
  add('rate_key', keyId, `key:${keyId}`, keyLimits.requestsPerSecond, 1000);
  add('rate_key', keyId, `key:${keyId}`, keyLimits.requestsPerMinute, 60_000);
  add('rate_tenant', tenant, 'tenant', tenantLimits.requestsPerSecond, 1000);
  add('rate_tenant', tenant, 'tenant', tenantLimits.requestsPerMinute, 60_000);
  return rules;
}
