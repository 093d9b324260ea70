import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { restInferenceCall } from '../../inference/rest-call.js';
import { renderResult } from '../../inference/result-rendering.js';
import { callbackSchema, jobStates, jobView } from '../../jobs/job-record.js';
import { requestedModel } from '../../inference/requested-model.js';
import { errorBodySchema, inferRequestSchema, inferResponseSchema } from '../../protocol/oip-schemas.js';
import { registerInferenceBodyReading } from '../inference-body.js';
import { sendInferenceResult } from '../infer-reply.js';
import { createJobFromRequest, jobSchema } from '../job-creation.js';
import { modelParamsSchema, modelVersionParamsSchema } from '../route-params.js';
import type { ApiServices } from '../services.js';

const jobParamsSchema = z.object({ jobId: z.string().max(64) });

/** An inference request, plus what a job adds: where its webhook goes, and how long its result is kept. */
const jobRequestSchema = inferRequestSchema.extend({
  callback: callbackSchema.optional().describe('Where to POST the job status once it has finished (signed when a secret is given).'),
  retention: z.number().int().positive().optional().describe('Seconds the result is kept once finished (default GANTRY_JOB_RETENTION_S).'),
});

const listQuerySchema = z.object({
  state: z.enum(jobStates).optional(),
  model: z.string().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.string().max(200).optional(),
});

/**
 * Asynchronous jobs (docs/jobs.md): POST /v1/models/{m}[/versions/{v}]/jobs takes the same body as infer (JSON or
 * the binary extension) and answers 202 at once; GET /v1/jobs/{id} shows its state, …/result its answer exactly as
 * infer would have given it; DELETE cancels; GET /v1/jobs lists the caller's. Thin over JobService.
 */
export async function jobRoutes(app: FastifyInstance, services: ApiServices): Promise<void> {
  const typed = app.withTypeProvider<ZodTypeProvider>();

  // The creation routes read their bodies exactly as infer does (limits, binary extension, parse threads).
  await app.register(async (creation) => {
    registerInferenceBodyReading(creation, services);
    const create = creation.withTypeProvider<ZodTypeProvider>();
    const responses = { 200: jobSchema, 202: jobSchema, '4xx': errorBodySchema, '5xx': errorBodySchema };
    const handle = (request: FastifyRequest, reply: FastifyReply) => {
      const body = request.body as z.infer<typeof jobRequestSchema>;
      const params = request.params as { model: string; version?: string };
      const call = restInferenceCall({
        principal: request.principal,
        model: params.model,
        version: params.version,
        body,
        binary: request.inferBody?.binary,
        decoded: request.inferBody?.decoded,
        headers: request.headers,
      });
      call.usage = request.usage ??= {};
      return createJobFromRequest(request, reply, services, call, { callback: body.callback, retention: body.retention });
    };
    create.post(
      '/v1/models/:model/jobs',
      {
        schema: {
          tags: ['jobs'],
          summary: 'Queue an asynchronous inference on the serving version',
          params: modelParamsSchema,
          body: jobRequestSchema,
          response: responses,
        },
      },
      handle,
    );
    create.post(
      '/v1/models/:model/versions/:version/jobs',
      {
        schema: {
          tags: ['jobs'],
          summary: 'Queue an asynchronous inference on one version',
          params: modelVersionParamsSchema,
          body: jobRequestSchema,
          response: responses,
        },
      },
      handle,
    );
  });

  typed.get(
    '/v1/jobs/:jobId',
    {
      schema: {
        tags: ['jobs'],
        summary: "An asynchronous job's state, attempts and webhook deliveries",
        params: jobParamsSchema,
        response: { 200: jobSchema, '4xx': errorBodySchema },
      },
    },
    async (request) => {
      const record = await services.jobs.find(request.principal, request.params.jobId);
      return jobView(record, record.callback === undefined ? undefined : await services.jobStore.deliveries(record.id));
    },
  );

  typed.get(
    '/v1/jobs/:jobId/result',
    {
      schema: {
        tags: ['jobs'],
        summary: "A finished job's answer, exactly as infer would have answered (JSON or binary); 409 while it is not finished",
        params: jobParamsSchema,
        response: { 200: inferResponseSchema, '4xx': errorBodySchema, '5xx': errorBodySchema },
      },
    },
    async (request, reply) => {
      const { record, answer } = await services.jobs.result(request.principal, request.params.jobId);
      if (!answer.ok) throw answer.toError();
      void record;
      return sendInferenceResult(reply, renderResult(record.rendering, answer.outputs));
    },
  );

  typed.delete(
    '/v1/jobs/:jobId',
    {
      schema: {
        tags: ['jobs'],
        summary: 'Cancel a job: a queued one never runs; a running one finishes, its answer discarded',
        params: jobParamsSchema,
        response: { 200: jobSchema, '4xx': errorBodySchema },
      },
    },
    async (request) => jobView(await services.jobs.cancel(request.principal, request.params.jobId), undefined),
  );

  typed.get(
    '/v1/jobs',
    {
      schema: {
        tags: ['jobs'],
        summary: "The caller's jobs, newest first (cursor pagination)",
        querystring: listQuerySchema,
        response: { 200: z.object({ jobs: z.array(jobSchema), nextCursor: z.string().optional() }), '4xx': errorBodySchema },
      },
    },
    async (request) => {
      const { state, model, limit, cursor } = request.query;
      const qualified = model === undefined ? undefined : requestedModel(request.principal, model).qualified;
      const page = await services.jobs.list(request.principal, {
        limit,
        ...(cursor === undefined ? {} : { cursor }),
        ...(state === undefined ? {} : { state }),
        ...(qualified === undefined ? {} : { model: qualified }),
      });
      return { jobs: page.jobs.map((record) => jobView(record, undefined)), ...(page.nextCursor === undefined ? {} : { nextCursor: page.nextCursor }) };
    },
  );
}
