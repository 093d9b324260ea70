import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';
import type { Principal } from '../../auth/principal.js';
import type { LimitStore } from '../../limits/limit-store.js';
import type { RateStanding } from '../../limits/rate-limiter.js';
import { RequestAdmission, type AdmissionDecision } from '../../limits/request-admission.js';
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

declare module 'fastify' {
  interface FastifyInstance {
    /** The limits every transport admits calls through (the gRPC server shares this one: one share per tenant). */
    requestAdmission: RequestAdmission;
  }
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
 * key"): REST's adapter over src/limits/request-admission.ts, which says what each limit allows. Here: which
 * requests are inferences (the metered routes), the RateLimit-* headers, the share slot held until the response
 * closes, and a refusal noted for usage metering. Refusals are 429 RESOURCE_EXHAUSTED with Retry-After.
 */
async function requestLimitsPlugin(app: FastifyInstance, options: RequestLimitsOptions): Promise<void> {
  const { metrics } = options;
  const admission = new RequestAdmission({
    redis: options.redis,
    prefix: options.prefix,
    limits: options.limits,
    meter: options.meter,
    maxTenantInflight: options.maxTenantInflight,
    onRejection: (limit) => metrics.limitRejections.inc({ limit }),
    onRefreshError: (error) => app.log.debug({ err: (error as Error).message }, 'could not refresh cached limits or quota totals'),
  });
  app.decorate('requestAdmission', admission);

  const answer = (request: FastifyRequest, reply: FastifyReply, metered: boolean, decision: AdmissionDecision, done: (error?: Error) => void): void => {
    if (decision.standing !== undefined) setRateHeaders(reply, decision.standing);
    if (decision.refusal === undefined) return done();
    if (metered) request.usage = { refusal: decision.refusal.usage };
    done(decision.refusal.error);
  };

  const limitsCheck = (request: FastifyRequest, reply: FastifyReply, principal: Principal, metered: boolean, done: (error?: Error) => void): void => {
    const decision = admission.check(principal, metered);
    if (decision instanceof Promise) decision.then((settled) => answer(request, reply, metered, settled, done), done);
    else answer(request, reply, metered, decision, done);
  };

  // A callback hook: a caller whose limits are in memory and who has none makes no promise and no Redis call.
  app.addHook('onRequest', (request, reply, done) => {
    const principal = request.principal;
    // No principal (a request authentication refused) or the public one (health, docs): nothing to limit, and
    // readiness must answer from memory while Redis is away.
    if (principal === null || principal === undefined || principal === publicPrincipal || admission.isExempt(principal)) return done();
    const metered = isMeteredRoute(request.method, request.routeOptions.url ?? '');
    const slot = metered ? admission.shareSlot(principal) : undefined;
    if (slot !== undefined) {
      reply.raw.once('close', slot.release);
      if (slot.ready !== true) {
        slot.ready.then(() => limitsCheck(request, reply, principal, metered, done), done);
        return;
      }
    }
    limitsCheck(request, reply, principal, metered, done);
  });
}

export default fp(requestLimitsPlugin, { name: 'request-limits', dependencies: ['usage-metering'] });
