import underPressure from '@fastify/under-pressure';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { ErrorCode } from '../../errors.js';

/** The one route never shed (readiness may be: a busy API should get no new traffic, but stay alive). */
export const livenessRoute = '/v2/health/live';

/**
 * Sheds load when the API's event loop falls behind: past `maxEventLoopDelayMs` every new request gets 503 with
 * Retry-After at once, instead of joining a backlog that would time out anyway. Liveness stays exempt
 * (`/v2/health/live` always answers 200), so an overloaded API is not restarted; readiness is shed like any
 * route, which takes a busy API out of rotation until it catches up.
 */
async function loadSheddingPlugin(app: FastifyInstance, options: { maxEventLoopDelayMs: number }): Promise<void> {
  if (options.maxEventLoopDelayMs === 0) return;
  await app.register(underPressure, {
    maxEventLoopDelay: options.maxEventLoopDelayMs,
    retryAfter: 1,
    pressureHandler: (request, reply) => {
      // Liveness answers whatever the load: a shed probe would get the pod restarted, which only adds load.
      // Sending nothing lets the request through (under-pressure calls next()).
      if (request.routeOptions.url === livenessRoute) return;
      // Fastify stops the request here: hooks after a sent reply do not run the handler.
      void reply
        .status(503)
        .header('retry-after', '1')
        .send({ error: 'The server is overloaded; retry shortly.', code: ErrorCode.Unavailable, requestId: request.id });
    },
  });
}

export default fp(loadSheddingPlugin, { name: 'gantry-load-shedding' });
