import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { createRequire } from 'node:module';
import { serverLiveSchema, serverMetadataSchema, serverReadySchema } from '../../protocol/oip-schemas.js';
import type { ApiServices } from '../services.js';

const packageJson = createRequire(import.meta.url)('../../../../package.json') as { version: string };

/** Protocol extensions this server implements; only what is really there is listed. */
export const implementedExtensions: string[] = [
  'binary_tensor_data',
  'classification',
  'model_configuration',
  'model_repository',
  'schedule_policy',
  'statistics',
];

/** GET /v2, /v2/health/live, /v2/health/ready. */
export async function serverHealthRoutes(app: FastifyInstance, services: ApiServices): Promise<void> {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  typed.get('/v2', { schema: { tags: ['health'], summary: 'Server metadata', response: { 200: serverMetadataSchema } } }, async () => ({
    name: 'gantry',
    version: packageJson.version,
    extensions: implementedExtensions,
  }));
  typed.get('/v2/health/live', { schema: { tags: ['health'], summary: 'Liveness', response: { 200: serverLiveSchema } } }, async () => ({ live: true }));
  typed.get(
    '/v2/health/ready',
    { schema: { tags: ['health'], summary: 'Readiness: accepting work and Redis reachable', response: { 200: serverReadySchema, 503: serverReadySchema } } },
    async (_request, reply) => {
      const ready = services.isAcceptingWork() && services.redis.status === 'ready';
      return reply.status(ready ? 200 : 503).send({ ready, live: true });
    },
  );
}
