import type { Principal } from '../auth/principal.js';
import { ErrorCode, GantryError, errors } from '../errors.js';
import { onnxPlatform } from '../protocol/oip-schemas.js';
import type { TensorSpec } from '../protocol/signature.js';
import type { LiveWorkers, ModelServing } from '../workers-view/live-workers.js';
import type { ModelCatalog } from './model-catalog.js';
import { forModel, requestedModel } from './requested-model.js';
import { checkVersion } from './requested-version.js';

/** The protocol's model metadata (REST GET /v2/models/{m}[/versions/{v}], gRPC ModelMetadata). */
export interface ModelMetadata {
  /** The name as the caller is shown it. */
  name: string;
  versions: string[];
  platform: string;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  /**
   * Only when workers run and none serves the model (GANTRY_WORKER_MODELS): 0, and why. A served model's answer
   * is the protocol's own, unchanged.
   */
  servedBy?: number;
  unservedReason?: string;
}

/** Whether a model (or one version) is READY, with the name the caller is shown. */
export interface ModelReadiness {
  name: string;
  ready: boolean;
  /** Why a READY model is not ready: live workers run, none serves it. */
  unservedReason?: string;
}

/** What the views ask about worker pools; without it (tests, tools) no model counts as unserved. */
export type ServingSource = Pick<LiveWorkers, 'serving'>;

/** The serving fields of an answer: only for a model live workers exist for but none serves. */
function servingFields(serving: ModelServing | undefined): { servedBy?: number; unservedReason?: string } {
  return serving?.unservedReason === undefined ? {} : { servedBy: serving.servedBy, unservedReason: serving.unservedReason };
}

/**
 * The metadata of the version that would serve a request (serving-version.ts: the `production` alias's, else the
 * newest READY one), or of the named version or alias's version whatever its state, as long as a worker has read
 * its signature.
 * @throws 400 for a malformed name or version; 404 for a model, version or alias the caller cannot see; 503 when
 * the described version has no signature yet (or, with no version named, nothing can serve).
 */
export async function modelMetadata(
  catalog: ModelCatalog,
  principal: Principal,
  modelName: string,
  requestedVersion?: string,
  workers?: ServingSource,
): Promise<ModelMetadata> {
  const model = requestedModel(principal, modelName);
  const version = checkVersion(requestedVersion);
  return forModel(model, async () => {
    const versions = await catalog.versions(model.qualified);
    const described = await catalog.described(model.qualified, version);
    if (described.signature === undefined) throw errors.modelNotReady(model.qualified, described.version, described.state);
    return {
      name: model.shown,
      versions: versions.map((candidate) => candidate.version),
      platform: onnxPlatform,
      inputs: described.signature.inputs,
      outputs: described.signature.outputs,
      ...servingFields(await workers?.serving(model.qualified, model.shown)),
    };
  });
}

/**
 * Whether a request naming `requestedVersion` would be served: the named version (or the alias's) is READY; with
 * nothing named, the version the serving rule picks is (a model pinned by `production` to an unloaded version is
 * not ready, even with other versions READY), and a live worker serves the model (when workers run but none
 * serves it, it is not ready, saying why).
 * @throws 400 for a malformed name or version; 404 for a model, version or alias the caller cannot see.
 */
export async function modelReadiness(
  catalog: ModelCatalog,
  principal: Principal,
  modelName: string,
  requestedVersion?: string,
  workers?: ServingSource,
): Promise<ModelReadiness> {
  const model = requestedModel(principal, modelName);
  const version = checkVersion(requestedVersion);
  const ready = await forModel(model, async () => {
    try {
      return (await catalog.described(model.qualified, version)).state === 'READY';
    } catch (error) {
      // Nothing that could serve (none READY, or an alias whose version is gone): not ready, rather than an error.
      if (error instanceof GantryError && error.code === ErrorCode.Unavailable) return false;
      throw error;
    }
  });
  if (!ready) return { name: model.shown, ready };
  const unservedReason = (await workers?.serving(model.qualified, model.shown))?.unservedReason;
  return unservedReason === undefined ? { name: model.shown, ready } : { name: model.shown, ready: false, unservedReason };
}
