import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { errorBodySchema, inferRequestSchema, inferResponseSchema, type InferRequestBody } from '../../protocol/oip-schemas.js';
import { ConnectionClosed } from '../connection-closed.js';
import { sendInferenceResult } from '../infer-reply.js';
import { createJobFromRequest, jobCreatedSchema, wantsAsync } from '../job-creation.js';
import { restInferenceCall } from '../../inference/rest-call.js';
import { modelParamsSchema, modelVersionParamsSchema } from '../route-params.js';
import { registerInferenceBodyReading } from '../inference-body.js';
import type { ApiServices } from '../services.js';

/**
 * POST /v2/models/{m}[/versions/{v}]/infer — the protocol's inference call over REST, with JSON tensors or the
 * binary tensor extension in both directions. A thin adapter: the body is read by inference-body.ts, turned into
 * a call by rest-call.ts, run by the inference service (every check, decoding, output selection, classification,
 * the schedule parameters), and its result written in the protocol's encoding (infer-reply.ts). With
 * `Prefer: respond-async` (RFC 7240) the call becomes an asynchronous job instead: 202 and where to find it.
 */
export async function inferRoutes(app: FastifyInstance, services: ApiServices): Promise<void> {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  registerInferenceBodyReading(app, services);

  const handle = async (request: FastifyRequest, body: InferRequestBody, model: string, version: string | undefined, reply: FastifyReply) => {
    const call = restInferenceCall({
      principal: request.principal,
      model,
      version,
      body,
      binary: request.inferBody?.binary,
      decoded: request.inferBody?.decoded,
      signal: new ConnectionClosed(reply.raw),
      headers: request.headers,
    });
    // The service fills it in as it learns the model and cost; plugins/usage-metering.ts meters it.
    call.usage = request.usage ??= {};
    if (wantsAsync(request)) return createJobFromRequest(request, reply, services, call, {});
    return sendInferenceResult(reply, await services.inference.infer(call));
  };

  // 202: `Prefer: respond-async` made an asynchronous job instead (GET /v1/jobs/{id}).
  const responses = { 200: inferResponseSchema, 202: jobCreatedSchema, '4xx': errorBodySchema, '5xx': errorBodySchema };
  typed.post(
    '/v2/models/:model/infer',
    {
      schema: {
        tags: ['inference'],
        summary: 'Run an inference on the newest READY version',
        params: modelParamsSchema,
        body: inferRequestSchema,
        response: responses,
      },
    },
    async (request, reply) => handle(request, request.body, request.params.model, undefined, reply),
  );
  typed.post(
    '/v2/models/:model/versions/:version/infer',
    {
      schema: {
        tags: ['inference'],
        summary: 'Run an inference on one version',
        params: modelVersionParamsSchema,
        body: inferRequestSchema,
        response: responses,
      },
    },
    async (request, reply) => handle(request, request.body, request.params.model, request.params.version, reply),
  );
}
