import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { createRequire } from 'node:module';
import { metricsArePublic } from '../config.js';
import accessLog from './plugins/access-log.js';
import bodyTimeouts from './plugins/body-timeouts.js';
import cors from './plugins/cors.js';
import errorHandler from './plugins/error-handler.js';
import httpMetrics from './plugins/http-metrics.js';
import loadShedding from './plugins/load-shedding.js';
import openApi from './plugins/openapi.js';
import principal from './plugins/principal.js';
import routeList from './plugins/route-list.js';
import requestLimits from './plugins/request-limits.js';
import usageMetering from './plugins/usage-metering.js';
import { requestIdFor } from './request-ids.js';
import { inferRoutes } from './routes/infer.js';
import { modelConfigRoutes } from './routes/model-config.js';
import { modelManagementRoutes } from './routes/model-management.js';
import { modelAliasRoutes } from './routes/model-aliases.js';
import { modelTrafficRoutes } from './routes/model-traffic.js';
import { modelWarmupRoutes } from './routes/model-warmup.js';
import { modelMetadataRoutes } from './routes/model-metadata.js';
import { repositoryRoutes } from './routes/repository.js';
import { serverHealthRoutes } from './routes/server-health.js';
import { statisticsRoutes } from './routes/statistics.js';
import { tenantRoutes } from './routes/tenants.js';
import { keyRoutes } from './routes/keys.js';
import { limitRoutes } from './routes/limits.js';
import { usageRoutes } from './routes/usage.js';
import { jobRoutes } from './routes/jobs.js';
import { batchRoutes } from './routes/batches.js';
import { consoleRoutes } from './routes/console.js';
import type { ApiServices } from './services.js';
import { lazyRequestLogger } from './lazy-request-logger.js';

const packageJson = createRequire(import.meta.url)('../../../package.json') as { version: string };

/**
 * Builds the Fastify application without listening, so tests can drive it with `inject()` and the API role
 * decides where it listens.
 */
export async function buildApp(services: ApiServices, logger: FastifyServerOptions['logger']): Promise<FastifyInstance> {
  const { config } = services;
  // Node refuses headersTimeout > requestTimeout at start-up; a headers timeout longer than the whole request's
  // would mean nothing anyway.
  const headersTimeoutMs = Math.min(config.GANTRY_HEADERS_TIMEOUT_MS, config.GANTRY_REQUEST_TIMEOUT_MS);
  const app = Fastify({
    logger,
    bodyLimit: config.GANTRY_MAX_REQUEST_BYTES,
    genReqId: requestIdFor,
    // Model names may be 128 characters; longer path segments must reach our own 400, not Fastify's 414.
    routerOptions: { maxParamLength: 1024 },
    // Fastify's own two lines per request are off: the access-log plugin writes one line per request instead
    // (GANTRY_ACCESS_LOG), with the model, the outcome and no child logger per request.
    logController: new LogController({ requestIdLogLabel: 'requestId', disableRequestLogging: true }),
    // A request's child logger is made when it first logs a line (most never do): lazy-request-logger.ts.
    childLoggerFactory: lazyRequestLogger,
    // The whole request (headers and body, an upload included) must arrive within this; then Node answers 408
    // and closes the connection. A client that disconnects mid-upload closes its socket, which ends the request
    // at once (the body's stream errors), so no timeout is needed for that.
    requestTimeout: config.GANTRY_REQUEST_TIMEOUT_MS,
    http: {
      headersTimeout: headersTimeoutMs,
      // Node checks both timeouts on this interval (30 s by default): check often enough for them to mean it.
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(headersTimeoutMs / 4))),
    },
  });
  // Past this many open connections Node closes new ones at accept (the client sees a reset); each costs a
  // descriptor and buffers, and a slow-body crowd must not take them all.
  app.server.maxConnections = config.GANTRY_MAX_CONNECTIONS;
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.addHook('onSend', async (request, reply) => {
    void reply.header('x-request-id', request.id);
  });

  await app.register(routeList);
  const accessLogOn = config.GANTRY_ACCESS_LOG === 'on';
  await app.register(errorHandler, { accessLog: accessLogOn });
  await app.register(accessLog, { enabled: accessLogOn });
  // Before the principal: a preflight carries no key and must be answered, not refused.
  await app.register(cors, { origins: config.GANTRY_CORS_ORIGINS });
  await app.register(bodyTimeouts, { bodyIdleTimeoutMs: config.GANTRY_BODY_IDLE_TIMEOUT_MS, metrics: services.metrics });
  await app.register(loadShedding, { maxEventLoopDelayMs: config.GANTRY_MAX_EVENT_LOOP_DELAY_MS });
  await app.register(openApi, {
    version: packageJson.version,
    registry: services.registry,
    catalog: services.catalog,
    authenticator: services.authenticator,
    maxModels: config.GANTRY_OPENAPI_MAX_MODELS,
  });
  await app.register(httpMetrics, { metrics: services.metrics });
  await app.register(principal, { authenticator: services.authenticator, metricsPublic: metricsArePublic(config) });
  // After the principal (they read it), before the routes (metering hooks onto the inference routes as they are added).
  await app.register(usageMetering, { meter: services.usage, metrics: services.metrics, maxTenantMetrics: config.GANTRY_MAX_TENANT_METRICS });
  await app.register(requestLimits, {
    redis: services.redis,
    prefix: config.GANTRY_QUEUE_PREFIX,
    limits: services.limits,
    meter: services.usage,
    metrics: services.metrics,
    maxTenantInflight: config.GANTRY_TENANT_MAX_INFLIGHT,
  });
  await app.register(serverHealthRoutes, services);
  await app.register(modelMetadataRoutes, services);
  await app.register(inferRoutes, services);
  await app.register(modelManagementRoutes, services);
  await app.register(modelAliasRoutes, services);
  await app.register(modelTrafficRoutes, services);
  await app.register(modelWarmupRoutes, services);
  await app.register(modelConfigRoutes, services);
  await app.register(repositoryRoutes, services);
  await app.register(statisticsRoutes, services);
  await app.register(tenantRoutes, services);
  await app.register(keyRoutes, services);
  await app.register(limitRoutes, services);
  await app.register(usageRoutes, services);
  await app.register(jobRoutes, services);
  await app.register(batchRoutes, services);
  await app.register(consoleRoutes, services);
  return app;
}
