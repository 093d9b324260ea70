import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { errorBodySchema, modelMetadataSchema, modelReadySchema } from '../../protocol/oip-schemas.js';
import { modelMetadata, modelReadiness } from '../../inference/model-metadata-view.js';
import { modelParamsSchema, modelVersionParamsSchema } from '../route-params.js';
import type { ApiServices } from '../services.js';

/** GET /v2/models/{m}[/versions/{v}] and …/ready — the protocol's model metadata and model readiness. */
export async function modelMetadataRoutes(app: FastifyInstance, services: ApiServices): Promise<void> {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  const { catalog, liveWorkers } = services;

  const metadataResponses = { 200: modelMetadataSchema, '4xx': errorBodySchema, '5xx': errorBodySchema };
  typed.get(
    '/v2/models/:model',
    { schema: { tags: ['models'], summary: 'Model metadata (newest READY version)', params: modelParamsSchema, response: metadataResponses } },
    async (request) => modelMetadata(catalog, request.principal, request.params.model, undefined, liveWorkers),
  );
  typed.get(
    '/v2/models/:model/versions/:version',
    { schema: { tags: ['models'], summary: 'Model version metadata', params: modelVersionParamsSchema, response: metadataResponses } },
    async (request) => modelMetadata(catalog, request.principal, request.params.model, request.params.version, liveWorkers),
  );

  // Ready answers 200 when ready and 503 when not (a readiness probe must fail), the body saying which.
  const readyResponses = { 200: modelReadySchema, 503: modelReadySchema, '4xx': errorBodySchema };
  typed.get(
    '/v2/models/:model/ready',
    { schema: { tags: ['models'], summary: 'Model readiness', params: modelParamsSchema, response: readyResponses } },
    async (request, reply) => {
      const answer = await modelReadiness(catalog, request.principal, request.params.model, undefined, liveWorkers);
      return reply.status(answer.ready ? 200 : 503).send(answer);
    },
  );
  typed.get(
    '/v2/models/:model/versions/:version/ready',
    { schema: { tags: ['models'], summary: 'Model version readiness', params: modelVersionParamsSchema, response: readyResponses } },
    async (request, reply) => {
      const answer = await modelReadiness(catalog, request.principal, request.params.model, request.params.version, liveWorkers);
      return reply.status(answer.ready ? 200 : 503).send(answer);
    },
  );
}
