import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errors } from '../../errors.js';
import { errorBodySchema } from '../../protocol/oip-schemas.js';
import { loadModel, repositoryIndex, unloadModel } from '../../inference/repository-actions.js';
import { modelParamsSchema } from '../route-params.js';
import type { ApiServices } from '../services.js';

const parametersSchema = z.record(z.string(), z.unknown());

// extension_model_repository.md, "Index": an optional `ready` flag in, one entry per model version out.
const indexRequestSchema = z.object({ ready: z.boolean().optional() }).nullish();
const indexResponseSchema = z.array(z.object({ name: z.string(), version: z.string(), state: z.string(), reason: z.string() }));
// (A missing body arrives as null or undefined, so the bodies are nullish.)
// "Load" and "Unload": an optional `parameters` object; the response body is empty on success.
const loadRequestSchema = z.object({ parameters: parametersSchema.optional() }).nullish();
const unloadRequestSchema = z.object({ parameters: parametersSchema.optional() }).nullish();
const emptyResponseSchema = z.object({});

/** Model repository extension: POST /v2/repository/index, …/models/{m}/load and …/models/{m}/unload (src/inference/repository-actions.ts). */
export async function repositoryRoutes(app: FastifyInstance, services: ApiServices): Promise<void> {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  // The spec lets these bodies be empty (clients send no body, or `Content-Type: application/json` with an
  // empty one), so in this plugin an empty JSON body means "no body" rather than a parse error.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text) as unknown);
    } catch {
      done(errors.invalidArgument('The request body is not valid JSON.'), undefined);
    }
  });

  typed.post(
    '/v2/repository/index',
    {
      schema: {
        tags: ['repository'],
        summary: "Every version of the caller's models (the admin's: every tenant's) with its state (ready: true lists only READY ones)",
        body: indexRequestSchema,
        response: { 200: indexResponseSchema, '4xx': errorBodySchema, '5xx': errorBodySchema },
      },
    },
    async (request) => repositoryIndex(services, request.principal, request.body?.ready === true),
  );

  typed.post(
    '/v2/repository/models/:model/load',
    {
      schema: {
        tags: ['repository'],
        summary: 'Load (or reload) every version of a model; answers once the newest is READY',
        params: modelParamsSchema,
        body: loadRequestSchema,
        response: { 200: emptyResponseSchema, '4xx': errorBodySchema, '5xx': errorBodySchema },
      },
    },
    async (request) => {
      await loadModel(services, request.principal, request.params.model, Object.keys(request.body?.parameters ?? {}));
      return {};
    },
  );

  typed.post(
    '/v2/repository/models/:model/unload',
    {
      schema: {
        tags: ['repository'],
        summary: 'Unload a model: every version becomes UNAVAILABLE (files are kept; load brings it back)',
        params: modelParamsSchema,
        body: unloadRequestSchema,
        response: { 200: emptyResponseSchema, '4xx': errorBodySchema, '5xx': errorBodySchema },
      },
    },
    async (request) => {
      await unloadModel(services, request.principal, request.params.model);
      return {};
    },
  );
}
