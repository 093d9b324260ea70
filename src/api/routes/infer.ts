import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { Readable } from 'node:stream';
import type { z } from 'zod';
import { encodeInferResponseParts, inferenceHeaderContentLength } from '../../protocol/binary-extension.js';
import { errorBodySchema, inferRequestSchema, inferResponseSchema, type InferRequestBody } from '../../protocol/oip-schemas.js';
import { restInferenceCall } from '../../inference/rest-call.js';
import { modelParamsSchema, modelVersionParamsSchema } from '../route-params.js';
import { registerInferenceBodyReading } from '../inference-body.js';
import type { ApiServices } from '../services.js';

/** Aborts when the client closes the connection before its response was written. */
function clientGone(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  return controller.signal;
}

/**
 * POST /v2/models/{m}[/versions/{v}]/infer — the protocol's inference call over REST, with JSON tensors or the
 * binary tensor extension in both directions. A thin adapter: the body is read by inference-body.ts, turned into
 * a call by rest-call.ts, run by the inference service (every check, decoding, output selection, classification,
 * the schedule parameters), and its result written here in the protocol's encoding.
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
      signal: clientGone(reply),
      headers: request.headers,
    });
    // The service fills it in as it learns the model and cost; plugins/usage-metering.ts meters it.
    call.usage = request.usage ??= {};
    const result = await services.inference.infer(call);
    const response = encodeInferResponseParts(
      { model_name: result.modelName, model_version: result.modelVersion, ...(result.id === undefined ? {} : { id: result.id }) },
      result.outputs,
    );
    if (response.parts === undefined) {
      // 64-bit integer outputs are written as exact JSON numbers, which a JavaScript object cannot hold: the
      // encoder's text goes out as it is, past the response schema's serializer.
      if (response.serialized !== undefined) return reply.type('application/json; charset=utf-8').send(response.serialized);
      // Otherwise the body is the plain JSON response object.
      return response.json as z.infer<typeof inferResponseSchema>;
    }
    // The header and the tensors go out as they are, without first being copied into one buffer.
    return reply
      .header(inferenceHeaderContentLength, String(response.headerLength))
      .header('content-length', String(response.byteLength))
      .type('application/octet-stream')
      .send(Readable.from(response.parts, { objectMode: false }));
  };

  const responses = { 200: inferResponseSchema, '4xx': errorBodySchema, '5xx': errorBodySchema };
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
