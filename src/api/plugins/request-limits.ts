import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';
import { isAdmin, type Principal } from '../../auth/principal.js';
import { errors } from '../../errors.js';
import type { LimitStore } from '../../limits/limit-store.js';
import { QuotaChecker } from '../../limits/quota-checker.js';
import { RateLimiter, rateRulesFor, type RateStanding } from '../../limits/rate-limiter.js';
import { TenantConcurrency } from '../../limits/tenant-concurrency.js';
import { hasQuota, hasRateLimit, type KeyLimits, type TenantLimits } from '../../limits/tenant-limits.js';
import type { ApiMetrics } from '../../metrics/api-metrics.js';
import type { UsageMeter } from '../../usage/usage-meter.js';
import { isMeteredRoute } from './usage-metering.js';
import { publicPrincipal } from './principal.js';

export interface RequestLimitsOptions {
  redis: Redis;
  prefix: string;
  limits: LimitStore;
  meter: UsageMeter;
  metrics: ApiMetrics;
  /** GANTRY_TENANT_MAX_INFLIGHT: inference requests of one tenant this process runs at once (0: no share). */
  maxTenantInflight: number;
}

/** The RateLimit-* headers (IETF draft "RateLimit header fields for HTTP") for the rule closest to its limit. */
function setRateHeaders(reply: FastifyReply, standing: RateStanding): void {
  void reply
    .header('ratelimit-limit', String(standing.rule.max))
    .header('ratelimit-remaining', String(standing.remaining))
    .header('ratelimit-reset', String(Math.max(1, Math.ceil(standing.resetMs / 1000))))
    .header('ratelimit-policy', `${standing.rule.max};w=${standing.rule.windowMs / 1000}`);
}

/**
 * Rate limits and quotas, before a request's body is read or its handler runs (README "Limits per tenant and
 * key"). Every route a key calls counts against the key's and its tenant's requests per second and per minute
 * (counted in Redis, shared by every API process: one script call per request, and none for a caller without
 * rates); inference requests also count against the tenant's day and month quotas (checked from memory, see
 * QuotaChecker). Before any of that, a tenant's inference requests beyond its share of this process
 * (TenantConcurrency) wait for one of its earlier ones to finish. The admin is not limited, so it can always fix a
 * limit set too low. Refusals are 429 RESOURCE_EXHAUSTED with Retry-After (and RateLimit-* headers for rates).
 */
async function requestLimitsPlugin(app: FastifyInstance, options: RequestLimitsOptions): Promise<void> {
  const { limits, meter, metrics } = options;
  const rates = new RateLimiter(options.redis, options.prefix);
  const quotas = new QuotaChecker(options.redis, options.prefix, meter, {
    onRefreshError: (error) => app.log.debug({ err: (error as Error).message }, 'could not refresh cached quota totals'),
  });

  /** The checks that need Redis or a promise: reading limits not in memory, counting rates, reading quota totals. */
  const check = async (request: FastifyRequest, reply: FastifyReply, principal: Principal, known?: { keyLimits: KeyLimits; tenantLimits: TenantLimits }): Promise<void> => {
    const { keyLimits, tenantLimits } = known ?? { keyLimits: await limits.keyLimits(principal.keyId), tenantLimits: await limits.tenantLimits(principal.tenant) };
    const metered = isMeteredRoute(request.method, request.routeOptions.url ?? '');
    const rules = rateRulesFor(principal.tenant, principal.keyId, keyLimits, tenantLimits);
    if (rules.length > 0) {
      const decision = await rates.take(principal.tenant, rules);
      setRateHeaders(reply, decision.standing);
      if (!decision.allowed) {
        const { rule, resetMs } = decision.standing;
        metrics.limitRejections.inc({ limit: rule.limit });
        if (metered) request.usage = { refusal: 'rate_limited' };
        const whose = rule.limit === 'rate_key' ? `key '${rule.owner}'` : `tenant '${rule.owner}'`;
        throw errors.rateLimited(whose, rule.max, rule.windowMs === 1000 ? 'second' : 'minute', Math.max(1, Math.ceil(resetMs / 1000)));
      }
    }
    if (metered && hasQuota(tenantLimits)) {
      const refusal = await quotas.refusal(principal.tenant, tenantLimits);
      if (refusal !== undefined) {
        metrics.limitRejections.inc({ limit: refusal.limit });
        request.usage = { refusal: 'quota_exceeded' };
        throw refusal.error;
      }
    }
  };

  const share = new TenantConcurrency(options.maxTenantInflight);

  // A callback hook: a caller whose limits are in memory and who has none makes no promise and no Redis call.
  app.addHook('onRequest', (request, reply, done) => {
    const principal = request.principal;
    // No principal (a request authentication refused) or the public one (health, docs): nothing to limit, and
    // readiness must answer from memory while Redis is away.
    if (principal === null || principal === undefined || principal === publicPrincipal || isAdmin(principal)) return done();
    if (share.enabled && isMeteredRoute(request.method, request.routeOptions.url ?? '')) {
      const slot = share.acquire(principal.tenant);
      reply.raw.once('close', slot.release);
      if (slot.ready !== true) {
        slot.ready.then(() => limitsCheck(request, reply, principal, done), done);
        return;
      }
    }
    limitsCheck(request, reply, principal, done);
  });

  function limitsCheck(request: FastifyRequest, reply: FastifyReply, principal: Principal, done: (error?: Error) => void): void {
    const keyLimits = limits.peekKeyLimits(principal.keyId);
    const tenantLimits = limits.peekTenantLimits(principal.tenant);
    if (keyLimits === undefined || tenantLimits === undefined) {
      check(request, reply, principal).then(() => done(), done);
      return;
    }
    if (!hasRateLimit(keyLimits) && !hasRateLimit(tenantLimits) && !hasQuota(tenantLimits)) return done();
    check(request, reply, principal, { keyLimits, tenantLimits }).then(() => done(), done);
  }
}

export default fp(requestLimitsPlugin, { name: 'request-limits', dependencies: ['usage-metering'] });
