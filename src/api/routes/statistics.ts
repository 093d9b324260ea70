import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ErrorCode, GantryError, errors } from '../../errors.js';
import { errorBodySchema } from '../../protocol/oip-schemas.js';
import { readStatistics, type TritonModelStats } from '../../registry/model-statistics.js';
import { displayModelName } from '../../auth/model-names.js';
import type { Principal } from '../../auth/principal.js';
import { forModel, requestedModel } from '../../inference/requested-model.js';
import { checkVersion } from '../../inference/requested-version.js';
import { modelParamsSchema, modelVersionParamsSchema } from '../route-params.js';
import type { ApiServices } from '../services.js';
import { visibleModelNames } from '../../inference/visible-models.js';

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

  /**
   * Every version of a model (qualified name; any state: an unloaded version keeps its totals), named as
   * `principal` is shown it; 404 for an unknown model.
   */
  const modelStats = async (principal: Principal, model: string): Promise<TritonModelStats[]> => {
    const versions = await registry.listVersions(model);
    if (versions.length === 0) throw errors.modelNotFound(model);
    const shown = displayModelName(principal, model);
    return Promise.all(versions.map(async (record) => ({ ...(await readStatistics(redis, prefix, model, record.version)), name: shown })));
  };

  const responses = { 200: statisticsResponseSchema, '4xx': errorBodySchema, '5xx': errorBodySchema };
  typed.get('/v2/models/stats', { schema: { tags: ['statistics'], summary: "Statistics of every version of the caller's models (the admin's: every tenant's)", response: responses } }, async (request) => {
    const names = await visibleModelNames(registry, request.principal);
    const perModel = await Promise.all(
      // A model deleted between the listing and the read is simply left out.
      names.map((name) =>
        modelStats(request.principal, name).catch((error: unknown) => {
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
    async (request) => {
      const model = requestedModel(request.principal, request.params.model);
      return forModel(model, async () => ({ model_stats: await modelStats(request.principal, model.qualified) }));
    },
  );
  typed.get(
    '/v2/models/:model/versions/:version/stats',
    { schema: { tags: ['statistics'], summary: 'Statistics of one model version', params: modelVersionParamsSchema, response: responses } },
    async (request) => {
      const model = requestedModel(request.principal, request.params.model);
      const version = checkVersion(request.params.version)!;
      return forModel(model, async () => {
        if ((await registry.getVersion(model.qualified, version)) === undefined) throw errors.modelNotFound(model.qualified, version);
        return { model_stats: [{ ...(await readStatistics(redis, prefix, model.qualified, version)), name: model.shown }] };
      });
    },
  );
}
