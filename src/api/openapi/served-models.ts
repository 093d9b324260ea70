import { displayModelName } from '../../auth/model-names.js';
import { hasScope, type Principal } from '../../auth/principal.js';
import { ErrorCode, GantryError } from '../../errors.js';
import type { ModelCatalog } from '../../inference/model-catalog.js';
import { visibleModelNames } from '../../inference/visible-models.js';
import type { ModelRegistry } from '../../registry/model-registry.js';
import type { ServedModel } from './model-operation.js';

/** The models one caller's document describes, and what it leaves out. */
export interface ServedModelsView {
  models: ServedModel[];
  /** Models the caller can see: all of them, READY or not. */
  visible: number;
  /** Looked at and not READY (nothing serves an unpinned request): no operation. */
  notReady: number;
  /** Not looked at: past GANTRY_OPENAPI_MAX_MODELS READY ones, or past the names looked at. */
  leftOut: number;
  /** Why the caller sees no models at all, when that is not because it has none. */
  hidden?: string;
}

/** How many names are looked at for each model the document may show: bounds the reads when most are not READY. */
const namesLookedAtPerModel = 4;

/** Models looked at together (each a catalog read, from memory while the catalog holds it). */
const lookupBatch = 32;

/**
 * Picks the READY models a caller's OpenAPI document describes: the caller's visible models (its tenant's, within
 * the key's allow-list; the admin's: every tenant's) in name order, at most `maxModels` of them, looking at no more
 * than `namesLookedAtPerModel × maxModels` names. Each is read through the model catalog, which the registry's
 * events keep current (a new version, a load or unload, an alias or traffic change reach it within a message),
 * so the document is fresh on every request without a read of Redis per model while the catalog holds it.
 *
 * A caller without `infer` or `models:read` learns no model names (it could not call or describe them anyway).
 */
export async function servedModelsFor(
  principal: Principal,
  sources: { registry: ModelRegistry; catalog: ModelCatalog },
  maxModels: number,
): Promise<ServedModelsView> {
  if (!hasScope(principal, 'infer') && !hasScope(principal, 'models:read')) {
    return { models: [], visible: 0, notReady: 0, leftOut: 0, hidden: "this key holds neither 'infer' nor 'models:read'" };
  }
  if (maxModels === 0) return { models: [], visible: 0, notReady: 0, leftOut: 0, hidden: 'GANTRY_OPENAPI_MAX_MODELS is 0' };
  const names = await visibleModelNames(sources.registry, principal);
  const lookAt = names.slice(0, maxModels * namesLookedAtPerModel);
  const models: ServedModel[] = [];
  let notReady = 0;
  let looked = 0;
  for (let start = 0; start < lookAt.length && models.length < maxModels; start += lookupBatch) {
    const batch = lookAt.slice(start, start + lookupBatch);
    const served = await Promise.all(batch.map((qualified) => servedModel(sources.catalog, principal, qualified)));
    for (const model of served) {
      if (models.length === maxModels) break;
      looked += 1;
      if (model === undefined) notReady += 1;
      else models.push(model);
    }
  }
  return { models, visible: names.length, notReady, leftOut: names.length - looked };
}

/** The model as its unpinned requests are served now, or undefined when none of its versions can serve them. */
async function servedModel(catalog: ModelCatalog, principal: Principal, qualified: string): Promise<ServedModel | undefined> {
  try {
    const serving = await catalog.serving(qualified);
    return { shown: displayModelName(principal, qualified), version: serving.version, signature: serving.signature };
  } catch (error) {
    // Not READY (503), or deleted since its name was read (404): no operation, and nothing to tell.
    if (error instanceof GantryError && (error.code === ErrorCode.Unavailable || error.code === ErrorCode.NotFound)) return undefined;
    throw error;
  }
}
