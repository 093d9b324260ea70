import type { Principal } from '../auth/principal.js';
import { errors } from '../errors.js';
import { onnxPlatform } from '../protocol/oip-schemas.js';
import type { TensorSpec } from '../protocol/signature.js';
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
}

/** Whether a model (or one version) is READY, with the name the caller is shown. */
export interface ModelReadiness {
  name: string;
  ready: boolean;
}

/**
 * The metadata of the version that would serve a request (the newest READY one), or of the named version
 * whatever its state, as long as a worker has read its signature.
 * @throws 400 for a malformed name or version; 404 for a model or version the caller cannot see; 503 when the
 * described version has no signature yet (or, with no version named, none is READY).
 */
export async function modelMetadata(catalog: ModelCatalog, principal: Principal, modelName: string, requestedVersion?: string): Promise<ModelMetadata> {
  const model = requestedModel(principal, modelName);
  const version = checkVersion(requestedVersion);
  return forModel(model, async () => {
    const versions = await catalog.versions(model.qualified);
    if (versions.length === 0) throw errors.modelNotFound(model.qualified);
    const described = version === undefined ? await catalog.serving(model.qualified) : await catalog.version(model.qualified, version);
    if (described.signature === undefined) throw errors.modelNotReady(model.qualified, described.version, described.state);
    return {
      name: model.shown,
      versions: versions.map((candidate) => candidate.version),
      platform: onnxPlatform,
      inputs: described.signature.inputs,
      outputs: described.signature.outputs,
    };
  });
}

/**
 * Whether any version of the model (or the named version) is READY.
 * @throws 400 for a malformed name or version; 404 for a model or version the caller cannot see.
 */
export async function modelReadiness(catalog: ModelCatalog, principal: Principal, modelName: string, requestedVersion?: string): Promise<ModelReadiness> {
  const model = requestedModel(principal, modelName);
  const version = checkVersion(requestedVersion);
  const ready = await forModel(model, async () => {
    const versions = await catalog.versions(model.qualified);
    if (versions.length === 0) throw errors.modelNotFound(model.qualified);
    if (version === undefined) return versions.some((candidate) => candidate.state === 'READY');
    return (await catalog.version(model.qualified, version)).state === 'READY';
  });
  return { name: model.shown, ready };
}
