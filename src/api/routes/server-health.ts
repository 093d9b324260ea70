import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { serverLiveSchema, serverMetadataSchema, serverReadySchema } from '../../protocol/oip-schemas.js';
import { serverMetadata, unreadyReason } from '../../inference/server-status.js';
import type { ApiServices } from '../services.js';

/** The protocol's readiness body, plus (when not ready) why, for operators and probes' logs. */
const readinessSchema = serverReadySchema.extend({ reason: z.string().optional() });

/** GET /v2, /v2/health/live, /v2/health/ready. */
export async function serverHealthRoutes(app: FastifyInstance, services: ApiServices): Promise<void> {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  typed.get('/v2', { schema: { tags: ['health'], summary: 'Server metadata', response: { 200: serverMetadataSchema } } }, async () => serverMetadata());
  typed.get('/v2/health/live', { schema: { tags: ['health'], summary: 'Liveness', response: { 200: serverLiveSchema } } }, async () => ({ live: true }));
  typed.get(
    '/v2/health/ready',
    {
      schema: {
        tags: ['health'],
        summary: 'Readiness: accepting work, Redis reachable and the model registry in it intact (503 says why not)',
        response: { 200: readinessSchema, 503: readinessSchema },
      },
    },
    async (_request, reply) => {
      const reason = unreadyReason(services);
      if (reason === undefined) return reply.status(200).send({ ready: true, live: true });
      return reply.status(503).send({ ready: false, live: true, reason });
    },
  );
}
