import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { ApiMetrics } from '../../metrics/api-metrics.js';

/** Times every request by its route template (never the raw URL, which would hold model names and ids). */
async function httpMetricsPlugin(app: FastifyInstance, options: { metrics: ApiMetrics }): Promise<void> {
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    options.metrics.httpDuration.observe({ method: request.method, route, status_code: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });
  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    const text = await options.metrics.registry.metrics();
    return reply.type(options.metrics.registry.contentType).send(text);
  });
}

export default fp(httpMetricsPlugin, { name: 'gantry-http-metrics' });
