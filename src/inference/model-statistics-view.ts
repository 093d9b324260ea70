import type { Redis } from 'ioredis';
import { displayModelName } from '../auth/model-names.js';
import type { Principal } from '../auth/principal.js';
import { ErrorCode, GantryError, errors } from '../errors.js';
import { readStatistics, type TritonModelStats } from '../registry/model-statistics.js';
import type { ModelRegistry } from '../registry/model-registry.js';
import type { ModelCatalog } from './model-catalog.js';
import { forModel, requestedModel } from './requested-model.js';
import { checkVersion } from './requested-version.js';
import { visibleModelNames } from './visible-models.js';

/** What the statistics views read: the registry for the versions, Redis (under the queue prefix) for the totals. */
export interface StatisticsSources {
  registry: ModelRegistry;
  /** Resolves a named version or alias to its version (whatever its state). */
  catalog: Pick<ModelCatalog, 'described'>;
  redis: Redis;
  config: { GANTRY_QUEUE_PREFIX: string };
}

/** The statistics extension's answer (REST GET …/stats, gRPC ModelStatistics). */
export interface StatisticsAnswer {
  model_stats: TritonModelStats[];
}

/** Every version of a model (qualified name; any state: an unloaded version keeps its totals), named as `principal` is shown it. */
async function everyVersionStats(sources: StatisticsSources, principal: Principal, model: string): Promise<TritonModelStats[]> {
  const versions = await sources.registry.listVersions(model);
  if (versions.length === 0) throw errors.modelNotFound(model);
  const shown = displayModelName(principal, model);
  return Promise.all(
    versions.map(async (record) => ({ ...(await readStatistics(sources.redis, sources.config.GANTRY_QUEUE_PREFIX, model, record.version)), name: shown })),
  );
}

/**
 * Statistics counted across all workers: of every version of every model the caller can see (no model named;
 * the admin's: every tenant's), of every version of one model, or of one version.
 * @throws 400 for a malformed name or version; 404 for a model or version the caller cannot see.
 */
export async function modelStatistics(
  sources: StatisticsSources,
  principal: Principal,
  modelName?: string,
  requestedVersion?: string,
): Promise<StatisticsAnswer> {
  if (modelName === undefined || modelName === '') {
    const names = await visibleModelNames(sources.registry, principal);
    const perModel = await Promise.all(
      // A model deleted between the listing and the read is simply left out.
      names.map((name) =>
        everyVersionStats(sources, principal, name).catch((error: unknown) => {
          if (error instanceof GantryError && error.code === ErrorCode.NotFound) return [] as TritonModelStats[];
          throw error;
        }),
      ),
    );
    return { model_stats: perModel.flat() };
  }
  const model = requestedModel(principal, modelName);
  const version = checkVersion(requestedVersion);
  return forModel(model, async () => {
    if (version === undefined) return { model_stats: await everyVersionStats(sources, principal, model.qualified) };
    // A version number or an alias (the statistics are the version's it points at).
    const { version: concrete } = await sources.catalog.described(model.qualified, version);
    return { model_stats: [{ ...(await readStatistics(sources.redis, sources.config.GANTRY_QUEUE_PREFIX, model.qualified, concrete)), name: model.shown }] };
  });
}
