import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorBodySchema } from '../../protocol/oip-schemas.js';
import { modelStatistics } from '../../inference/model-statistics-view.js';
import { modelParamsSchema, modelVersionParamsSchema } from '../route-params.js';
import type { ApiServices } from '../services.js';

// extension_statistics.md, "Statistics Response JSON Object": $duration_stat, $batch_stats, $model_stat.
const durationStatSchema = z.object({ count: z.number(), ns: z.number() });
const modelStatSchema = z.object({
  name: z.string(),
  version: z.string(),
  last_inference: z.number().describe('ms since the epoch of the last inference; 0 when none'),
  inference_count: z.number(),
  execution_count: z.number(),
  inference_stats: z.object({
    success: durationStatSchema,
    fail: durationStatSchema,
    queue: durationStatSchema,
    compute_input: durationStatSchema,
    compute_infer: durationStatSchema,
    compute_output: durationStatSchema,
  }),
  batch_stats: z.array(
    z.object({ batch_size: z.number(), compute_input: durationStatSchema, compute_infer: durationStatSchema, compute_output: durationStatSchema }),
  ),
});
export const statisticsResponseSchema = z.object({ model_stats: z.array(modelStatSchema) });

/** Statistics extension: GET /v2/models[/{m}[/versions/{v}]]/stats, counted across all workers. */
export async function statisticsRoutes(app: FastifyInstance, services: ApiServices): Promise<void> {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  const responses = { 200: statisticsResponseSchema, '4xx': errorBodySchema, '5xx': errorBodySchema };
  typed.get(
    '/v2/models/stats',
    { schema: { tags: ['statistics'], summary: "Statistics of every version of the caller's models (the admin's: every tenant's)", response: responses } },
    async (request) => modelStatistics(services, request.principal),
  );
  typed.get(
    '/v2/models/:model/stats',
    { schema: { tags: ['statistics'], summary: 'Statistics of every version of a model', params: modelParamsSchema, response: responses } },
    async (request) => modelStatistics(services, request.principal, request.params.model),
  );
  typed.get(
    '/v2/models/:model/versions/:version/stats',
    { schema: { tags: ['statistics'], summary: 'Statistics of one model version', params: modelVersionParamsSchema, response: responses } },
    async (request) => modelStatistics(services, request.principal, request.params.model, request.params.version),
  );
}
