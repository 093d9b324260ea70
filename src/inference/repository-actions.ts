import { displayModelName } from '../auth/model-names.js';
import type { Principal } from '../auth/principal.js';
import type { Config } from '../config.js';
import { ErrorCode, GantryError, errors } from '../errors.js';
import type { InferenceProducer } from '../queue/inference-producer.js';
import { executionConfigOf, type ModelConfigStore } from '../registry/model-config.js';
import type { ModelRegistry, ModelVersion } from '../registry/model-registry.js';
import type { ModelStore } from '../registry/model-store.js';
import type { ModelCatalog } from './model-catalog.js';
import { forModel, requestedModel } from './requested-model.js';
import { visibleModelNames } from './visible-models.js';

/**
 * Triton's model repository extension over Gantry's registry (REST POST /v2/repository/…, gRPC RepositoryIndex,
 * RepositoryModelLoad, RepositoryModelUnload). The repository is the registry: every uploaded version is in the
 * index; unload keeps the files and makes every version UNAVAILABLE; load has the workers load the versions again.
 */

/** The reason an unloaded version carries; the index shows it, and load clears it. */
export const unloadedReason = 'unloaded';

/** One version in the repository index. */
export interface RepositoryIndexEntry {
  name: string;
  version: string;
  state: string;
  reason: string;
}

/** What the repository actions read and change. */
export interface RepositorySources {
  registry: ModelRegistry;
  catalog: ModelCatalog;
  store: Pick<ModelStore, 'exists'>;
  producer: Pick<InferenceProducer, 'requestLoad'>;
  modelConfigs: ModelConfigStore;
  config: Pick<Config, 'GANTRY_LOAD_TIMEOUT_MS'>;
  /** False once shutdown began: loads are refused then. */
  isAcceptingWork: () => boolean;
}

/** Every version of the caller's models (the admin's: every tenant's), only the READY ones when `onlyReady`. */
export async function repositoryIndex(sources: Pick<RepositorySources, 'registry'>, principal: Principal, onlyReady: boolean): Promise<RepositoryIndexEntry[]> {
  const names = await visibleModelNames(sources.registry, principal);
  const perModel = await Promise.all(names.map((name) => sources.registry.listVersions(name)));
  return perModel
    .flat()
    .filter((record) => !onlyReady || record.state === 'READY')
    .map((record) => ({ name: displayModelName(principal, record.name), version: record.version, state: record.state, reason: record.reason ?? '' }));
}

/**
 * Loads (or reloads) every version of a model; resolves once the newest is READY.
 * @param parameterNames the load parameters the request carried: any is refused (Triton's "config" and "file:…"
 * override the repository's files; Gantry's files come from uploads, its configuration from PUT …/config).
 * @throws 400/404 for the name; 501 for load parameters; 503 while shutting down or when the newest version
 * did not become READY; 412 when no version has its file in the store.
 */
export async function loadModel(sources: RepositorySources, principal: Principal, modelName: string, parameterNames: readonly string[]): Promise<void> {
  const requested = requestedModel(principal, modelName);
  await forModel(requested, async () => {
    if (parameterNames.length > 0) {
      throw errors.unsupported(
        `Load parameters are not supported (got ${parameterNames.map((name) => `'${name}'`).join(', ')}); upload files with POST /v1/models/{model}/versions and change the configuration with PUT /v1/models/{model}/config.`,
      );
    }
    await loadEveryVersion(sources, requested.qualified);
  });
}

async function loadEveryVersion(sources: RepositorySources, model: string): Promise<void> {
  const { registry, catalog } = sources;
  if (!sources.isAcceptingWork()) throw errors.shuttingDown();
  const versions = await registry.listVersions(model);
  if (versions.length === 0) throw errors.modelNotFound(model);

  const loadable: ModelVersion[] = [];
  for (const record of versions) {
    if (await sources.store.exists(record.sha256)) loadable.push(record);
    else await registry.lifecycle.markUnavailable(model, record.version, 'the model file is missing from the store');
  }
  const newest = loadable.at(-1);
  if (newest === undefined) {
    catalog.invalidate(model);
    throw new GantryError(ErrorCode.FailedPrecondition, `No version of model '${model}' has its model file in the store any more; upload it again.`);
  }

  const settings = executionConfigOf(await sources.modelConfigs.get(model));
  // Each version's load carries the generation its LOADING began with: an unload or a delete that comes while it
  // runs wins, and so does a newer load of the same version.
  const loads: Array<{ record: ModelVersion; loadGeneration: number }> = [];
  for (const record of loadable) {
    const loadGeneration = await registry.lifecycle.beginLoad(model, record.version);
    if (loadGeneration !== undefined) loads.push({ record, loadGeneration });
  }
  catalog.invalidate(model);
  const outcomes = await Promise.allSettled(
    loads.map(({ record, loadGeneration }) => {
      const target = { model, version: record.version, sha256: record.sha256, settings, loadGeneration };
      return sources.producer.requestLoad(target, sources.config.GANTRY_LOAD_TIMEOUT_MS);
    }),
  );
  // The worker records each outcome (READY, or UNAVAILABLE with onnxruntime's reason) before it replies.
  catalog.invalidate(model);
  const newestOutcome = outcomes.at(-1);
  if (newestOutcome === undefined || loads.at(-1)?.record.version !== newest.version) throw errors.modelNotFound(model, newest.version);
  if (newestOutcome.status === 'rejected') {
    throw newestOutcome.reason instanceof GantryError ? newestOutcome.reason : errors.internal('Loading the model failed.');
  }
  const loaded = await registry.getVersion(model, newest.version);
  if (loaded?.state !== 'READY') throw errors.modelNotReady(model, newest.version, loaded?.state ?? 'UNAVAILABLE');
  await registry.announceModelEvent('model-loaded', model);
}

/**
 * Unloads a model: every version becomes UNAVAILABLE (files are kept; load brings it back). Triton's
 * "unload_dependents" needs nothing more: no Gantry model depends on another.
 * @throws 400/404 for the name.
 */
export async function unloadModel(sources: Pick<RepositorySources, 'registry' | 'catalog'>, principal: Principal, modelName: string): Promise<void> {
  const requested = requestedModel(principal, modelName);
  const model = requested.qualified;
  await forModel(requested, async () => {
    const changed = await sources.registry.lifecycle.unloadModel(model, unloadedReason);
    if (changed.length === 0) throw errors.modelNotFound(model);
    sources.catalog.invalidate(model);
    await sources.registry.announceModelEvent('model-unloaded', model);
  });
}
