import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { errors } from '../../errors.js';
import { errorBodySchema, modelMetadataSchema, modelReadySchema, onnxPlatform } from '../../protocol/oip-schemas.js';
import { forModel, requestedModel } from '../../inference/requested-model.js';
import { checkVersion } from '../../inference/requested-version.js';
import { modelParamsSchema, modelVersionParamsSchema } from '../route-params.js';
import type { ApiServices } from '../services.js';

/** GET /v2/models/{m}[/versions/{v}] and …/ready — the protocol's model metadata and model readiness. */
export async function modelMetadataRoutes(app: FastifyInstance, services: ApiServices): Promise<void> {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  const { catalog } = services;

  const metadata = async (request: FastifyRequest, modelName: string, requestedVersion: string | undefined) => {
    const model = requestedModel(request.principal, modelName);
    const version = checkVersion(requestedVersion);
    return forModel(model, async () => {
      const versions = await catalog.versions(model.qualified);
      if (versions.length === 0) throw errors.modelNotFound(model.qualified);
      // Metadata describes the version that would serve; a named version is described whatever its state.
      const described = version === undefined ? await catalog.serving(model.qualified) : await catalog.version(model.qualified, version);
      if (described.signature === undefined) throw errors.modelNotReady(model.qualified, described.version, described.state);
      return {
        name: model.shown,
        versions: versions.map((candidate) => candidate.version),
        platform: onnxPlatform,
        inputs: described.signature.inputs,
        outputs: described.signature.outputs,
      };
    });
  };

  /** Whether the model (or the named version) is READY, with the name to show. */
  const ready = async (request: FastifyRequest, modelName: string, requestedVersion: string | undefined) => {
    const model = requestedModel(request.principal, modelName);
    const version = checkVersion(requestedVersion);
    const isReady = await forModel(model, async () => {
      const versions = await catalog.versions(model.qualified);
      if (versions.length === 0) throw errors.modelNotFound(model.qualified);
      if (version === undefined) return versions.some((candidate) => candidate.state === 'READY');
      return (await catalog.version(model.qualified, version)).state === 'READY';
    });
    return { name: model.shown, ready: isReady };
  };

  const metadataResponses = { 200: modelMetadataSchema, '4xx': errorBodySchema, '5xx': errorBodySchema };
  typed.get('/v2/models/:model', { schema: { tags: ['models'], summary: 'Model metadata (newest READY version)', params: modelParamsSchema, response: metadataResponses } }, async (request) =>
    metadata(request, request.params.model, undefined),
  );
  typed.get(
    '/v2/models/:model/versions/:version',
    { schema: { tags: ['models'], summary: 'Model version metadata', params: modelVersionParamsSchema, response: metadataResponses } },
    async (request) => metadata(request, request.params.model, request.params.version),
  );

  // Ready answers 200 when ready and 503 when not (a readiness probe must fail), the body saying which.
  const readyResponses = { 200: modelReadySchema, 503: modelReadySchema, '4xx': errorBodySchema };
  typed.get('/v2/models/:model/ready', { schema: { tags: ['models'], summary: 'Model readiness', params: modelParamsSchema, response: readyResponses } }, async (request, reply) => {
    const answer = await ready(request, request.params.model, undefined);
    return reply.status(answer.ready ? 200 : 503).send(answer);
  });
  typed.get(
    '/v2/models/:model/versions/:version/ready',
    { schema: { tags: ['models'], summary: 'Model version readiness', params: modelVersionParamsSchema, response: readyResponses } },
    async (request, reply) => {
      const answer = await ready(request, request.params.model, request.params.version);
      return reply.status(answer.ready ? 200 : 503).send(answer);
    },
  );
}
