import underPressure from '@fastify/under-pressure';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { ErrorCode } from '../../errors.js';

/**
 * Sheds load when the API's event loop falls behind: past `maxEventLoopDelayMs` every new request gets 503 with
 * Retry-After at once, instead of joining a backlog that would time out anyway. Health routes stay exempt
 * (`exposeStatusRoute` is off; probes answer from their own routes), so an overloaded API is not restarted.
 */
async function loadSheddingPlugin(app: FastifyInstance, options: { maxEventLoopDelayMs: number }): Promise<void> {
  if (options.maxEventLoopDelayMs === 0) return;
  await app.register(underPressure, {
    maxEventLoopDelay: options.maxEventLoopDelayMs,
    retryAfter: 1,
    pressureHandler: (request, reply) => {
      void reply
        .status(503)
        .header('retry-after', '1')
        .send({ error: 'The server is overloaded; retry shortly.', code: ErrorCode.Unavailable, requestId: request.id });
    },
  });
}

export default fp(loadSheddingPlugin, { name: 'gantry-load-shedding' });
