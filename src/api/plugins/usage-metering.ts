import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import fp from 'fastify-plugin';
import type { ApiMetrics } from '../../metrics/api-metrics.js';
import type { UsageMeter } from '../../usage/usage-meter.js';
import { UsageRecorder } from '../../usage/usage-recorder.js';
import type { UsageOutcome } from '../../usage/usage-record.js';

/**
 * What a metered request used, filled in as it goes: the inference route names the model version once it is
 * known and adds the worker's compute share and rows once the answer came; the limits plugin notes a refusal.
 */
export interface RequestUsage {
  /** Qualified model name. */
  model?: string;
  version?: string;
  rows?: number;
  /** This request's share of the model's compute on the worker, in ns. */
  computeNs?: number;
  /** Set when a rate limit or quota refused the request before it ran. */
  refusal?: 'rate_limited' | 'quota_exceeded';
  /** Set once the request was metered (so an aborted request whose answer is sent anyway is not counted twice). */
  metered?: boolean;
  /** Inference requests this HTTP request stands for (a batch file: its queued lines); 1 when unset. */
  requests?: number;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Meters inference calls for every transport (the gRPC server records through this one too). */
    usageRecorder: UsageRecorder;
  }
  interface FastifyRequest {
    /** The usage of an inference request (null on routes that are not metered). */
    usage: RequestUsage | null;
  }
}

/** The routes whose requests are metered: the inference calls. Management routes are rate-limited, not metered. */
export const meteredRoutes: ReadonlySet<string> = new Set([
  'POST /v2/models/:model/infer',
  'POST /v2/models/:model/versions/:version/infer',
  // An asynchronous job is an inference request too: it counts against the same rates and quotas when it is made.
  'POST /v1/models/:model/jobs',
  'POST /v1/models/:model/versions/:version/jobs',
  // A batch file counts each line it queued (RequestUsage.requests); its quotas are checked before it is read.
  'POST /v1/models/:model/batches',
]);

export function isMeteredRoute(method: string, url: string): boolean {
  return meteredRoutes.has(`${method} ${url}`);
}

/** The outcome of a metered request from its status (the inference route's outcome words), or the limit that refused it. */
function outcomeOf(statusCode: number, usage: RequestUsage): UsageOutcome {
  if (usage.refusal !== undefined) return usage.refusal;
  if (statusCode < 400) return 'success';
  if (statusCode === 504) return 'timeout';
  if (statusCode === 429 || statusCode === 503) return 'unavailable';
  if (statusCode < 500) return 'client_error';
  return 'error';
}

export interface UsageMeteringOptions {
  meter: UsageMeter;
  metrics: ApiMetrics;
  /** GANTRY_MAX_TENANT_METRICS. */
  maxTenantMetrics: number;
}

/**
 * Meters every inference request once, when its response has been sent (or when its client went away first):
 * tenant and key from `request.principal`, model, version, rows and compute from `request.usage`, bytes in from
 * Content-Length and bytes out from the response's Content-Length (src/usage/usage-recorder.ts records it). The meter flushes to Redis on its own and
 * once more when the app closes. The hooks go on the metered routes only, so other routes pay nothing.
 */
async function usageMeteringPlugin(app: FastifyInstance, options: UsageMeteringOptions): Promise<void> {
  const { meter, metrics } = options;
  const recorder = new UsageRecorder({
    meter,
    tenantRequests: metrics.tenantRequests,
    tenantComputeSeconds: metrics.tenantComputeSeconds,
    maxTenantMetrics: options.maxTenantMetrics,
    onTenantBound: (bound) =>
      app.log.warn(
        { maxTenants: bound },
        'more tenants than GANTRY_MAX_TENANT_METRICS: later ones are counted under tenant="_other" in the per-tenant metrics',
      ),
  });
  app.decorate('usageRecorder', recorder);
  app.decorateRequest('usage', null);

  /** Meters one request; `reply` is undefined when the client went away before its answer was sent. */
  const meterRequest = (request: FastifyRequest, reply: FastifyReply | undefined) => {
    const principal = request.principal;
    // No principal: refused by authentication, before anyone's usage began.
    if (principal === null || principal === undefined) return;
    // A request refused before its handler ran (a limit, a bad body) has no record yet.
    const usage = (request.usage ??= {});
    if (usage.metered === true) return;
    usage.metered = true;
    recorder.record({
      principal,
      model: usage.model,
      version: usage.version,
      rows: usage.rows,
      computeNs: usage.computeNs,
      outcome: reply === undefined ? 'client_error' : outcomeOf(reply.statusCode, usage),
      bytesIn: Number(request.headers['content-length'] ?? 0) || 0,
      bytesOut: reply === undefined ? 0 : Number(reply.getHeader('content-length') ?? 0) || 0,
      ...(usage.requests === undefined ? {} : { requests: usage.requests }),
    });
  };

  app.addHook('onRoute', (route: RouteOptions) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    if (!methods.some((method) => isMeteredRoute(method, route.url))) return;
    // Callback hooks: no promise per request.
    const onResponse = (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
      meterRequest(request, reply);
      done();
    };
    // A client that leaves before its answer gets none, and then no onResponse runs: meter it here instead.
    const onRequestAbort = (request: FastifyRequest, done: () => void) => {
      meterRequest(request, undefined);
      done();
    };
    route.onResponse = [...asArray(route.onResponse), onResponse] as RouteOptions['onResponse'];
    route.onRequestAbort = [...asArray(route.onRequestAbort), onRequestAbort] as RouteOptions['onRequestAbort'];
  });

  app.addHook('onClose', async () => {
    await meter.close();
  });
}

function asArray<T>(value: T | T[] | undefined): T[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

export default fp(usageMeteringPlugin, { name: 'usage-metering' });
