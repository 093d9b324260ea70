import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ErrorCode, GantryError, errors } from '../../errors.js';
import { errorBodySchema } from '../../protocol/oip-schemas.js';
import { readStatistics, type TritonModelStats } from '../../registry/model-statistics.js';
import { checkModelName, checkVersion, modelParamsSchema, modelVersionParamsSchema } from '../route-params.js';
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
  const { registry, redis, config } = services;
  const prefix = config.GANTRY_QUEUE_PREFIX;

  /** Every version of a model (any state: an unloaded version keeps its totals); 404 for an unknown model. */
  const modelStats = async (model: string): Promise<TritonModelStats[]> => {
    const versions = await registry.listVersions(model);
    if (versions.length === 0) throw errors.modelNotFound(model);
    return Promise.all(versions.map((record) => readStatistics(redis, prefix, model, record.version)));
  };

  const responses = { 200: statisticsResponseSchema, '4xx': errorBodySchema, '5xx': errorBodySchema };
  typed.get('/v2/models/stats', { schema: { tags: ['statistics'], summary: 'Statistics of every version of every model', response: responses } }, async () => {
    const names = await registry.listModelNames();
    const perModel = await Promise.all(
      // A model deleted between the listing and the read is simply left out.
      names.map((name) =>
        modelStats(name).catch((error: unknown) => {
          if (error instanceof GantryError && error.code === ErrorCode.NotFound) return [] as TritonModelStats[];
          throw error;
        }),
      ),
    );
    return { model_stats: perModel.flat() };
  });
  typed.get(
    '/v2/models/:model/stats',
    { schema: { tags: ['statistics'], summary: 'Statistics of every version of a model', params: modelParamsSchema, response: responses } },
    async (request) => ({ model_stats: await modelStats(checkModelName(request.params.model)) }),
  );
  typed.get(
    '/v2/models/:model/versions/:version/stats',
    { schema: { tags: ['statistics'], summary: 'Statistics of one model version', params: modelVersionParamsSchema, response: responses } },
    async (request) => {
      const model = checkModelName(request.params.model);
      const version = checkVersion(request.params.version)!;
      if ((await registry.getVersion(model, version)) === undefined) throw errors.modelNotFound(model, version);
      return { model_stats: [await readStatistics(redis, prefix, model, version)] };
    },
  );
}
