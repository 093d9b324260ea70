import type { Redis } from 'ioredis';
import { isAdmin, type Principal } from '../auth/principal.js';
import { errors } from '../errors.js';
import type { UsageMeter } from '../usage/usage-meter.js';
import type { LimitStore } from './limit-store.js';
import { QuotaChecker } from './quota-checker.js';
import { RateLimiter, rateRulesFor, type RateStanding } from './rate-limiter.js';
import { TenantConcurrency, type TenantSlot } from './tenant-concurrency.js';
import { hasQuota, hasRateLimit, type KeyLimits, type TenantLimits } from './tenant-limits.js';

export interface RequestAdmissionOptions {
  redis: Redis;
  prefix: string;
  limits: LimitStore;
  meter: UsageMeter;
  /** GANTRY_TENANT_MAX_INFLIGHT: inference requests of one tenant this process runs at once (0: no share). */
  maxTenantInflight: number;
  /** Counts a refusal in `gantry_limit_rejections_total` (`rate_key`, `rate_tenant`, `quota_*`). */
  onRejection: (limit: string) => void;
  onRefreshError?: (error: unknown) => void;
}

/** Why a limit refused a request, as usage metering records it. */
export type UsageRefusal = 'rate_limited' | 'quota_exceeded';

/** What the limits said about one request. */
export interface AdmissionDecision {
  /** The rate rule closest to its limit, for RateLimit-* headers (undefined when the caller has no rates). */
  standing?: RateStanding;
  /** Set when a limit refused the request: the error to answer with (429 / RESOURCE_EXHAUSTED) and its usage outcome. */
  refusal?: { error: Error; usage: UsageRefusal };
}

const admitted: AdmissionDecision = Object.freeze({});

/**
 * Rate limits, quotas and the per-tenant share of this process, for every transport (README "Limits per tenant
 * and key"): REST's request-limits plugin and the gRPC server call this one object, so a tenant's calls count
 * against the same limits whichever way they come, and a tenant's share of the process is one share.
 *
 * - Every call a key makes counts against the key's and its tenant's requests per second and per minute
 *   (counted in Redis, shared by every API process: one script call per call, none for a caller without rates).
 * - Inference calls also count against the tenant's day and month quotas (checked from memory, see QuotaChecker)
 *   and, before anything else, wait for a slot of the tenant's share (TenantConcurrency).
 * - The admin is not limited, so it can always fix a limit set too low.
 */
export class RequestAdmission {
  private readonly rates: RateLimiter;
  private readonly quotas: QuotaChecker;
  private readonly share: TenantConcurrency;

  constructor(private readonly options: RequestAdmissionOptions) {
    this.rates = new RateLimiter(options.redis, options.prefix);
    this.quotas = new QuotaChecker(
      options.redis,
      options.prefix,
      options.meter,
      options.onRefreshError === undefined ? {} : { onRefreshError: options.onRefreshError },
    );
    this.share = new TenantConcurrency(options.maxTenantInflight);
  }

  /** True for callers no limit applies to: the admin (and nobody, for public routes: the callers decide those). */
  isExempt(principal: Principal): boolean {
    return isAdmin(principal);
  }

  /**
   * A slot of the tenant's share for one inference call, or undefined when the share is off. The caller waits for
   * `ready` before going on and releases the slot when the call ends (or its client leaves).
   */
  shareSlot(principal: Principal): TenantSlot | undefined {
    return this.share.enabled ? this.share.acquire(principal.tenant) : undefined;
  }

  /**
   * Checks the rates (and, for an inference, the quotas) of a caller. Synchronous, with no Redis call, when the
   * caller's limits are cached and it has none; a promise otherwise.
   */
  check(principal: Principal, inference: boolean): AdmissionDecision | Promise<AdmissionDecision> {
    const { limits } = this.options;
    const keyLimits = limits.peekKeyLimits(principal.keyId);
    const tenantLimits = limits.peekTenantLimits(principal.tenant);
    if (keyLimits === undefined || tenantLimits === undefined) {
      return Promise.all([limits.keyLimits(principal.keyId), limits.tenantLimits(principal.tenant)]).then(([key, tenant]) =>
        this.checkLimits(principal, inference, key, tenant),
      );
    }
    if (!hasRateLimit(keyLimits) && !hasRateLimit(tenantLimits) && !(inference && hasQuota(tenantLimits))) return admitted;
    return this.checkLimits(principal, inference, keyLimits, tenantLimits);
  }

  private async checkLimits(principal: Principal, inference: boolean, keyLimits: KeyLimits, tenantLimits: TenantLimits): Promise<AdmissionDecision> {
    const rules = rateRulesFor(principal.tenant, principal.keyId, keyLimits, tenantLimits);
    let standing: RateStanding | undefined;
    if (rules.length > 0) {
      const decision = await this.rates.take(principal.tenant, rules);
      standing = decision.standing;
      if (!decision.allowed) {
        const { rule, resetMs } = decision.standing;
        this.options.onRejection(rule.limit);
        const whose = rule.limit === 'rate_key' ? `key '${rule.owner}'` : `tenant '${rule.owner}'`;
        const error = errors.rateLimited(whose, rule.max, rule.windowMs === 1000 ? 'second' : 'minute', Math.max(1, Math.ceil(resetMs / 1000)));
        return { standing, refusal: { error, usage: 'rate_limited' } };
      }
    }
    if (inference && hasQuota(tenantLimits)) {
      const refusal = await this.quotas.refusal(principal.tenant, tenantLimits);
      if (refusal !== undefined) {
        this.options.onRejection(refusal.limit);
        return { ...(standing === undefined ? {} : { standing }), refusal: { error: refusal.error, usage: 'quota_exceeded' } };
      }
    }
    return standing === undefined ? admitted : { standing };
  }
}
