/**
 * Gantry's typed TypeScript client (package export `gantry/client`): see docs/client.md. It imports nothing from
 * the server (src/api, src/worker, ...), only the protocol's own codecs (test/integration/dependency-rules.test.ts).
 */
export { GantryClient, type InferOptions } from './gantry-client.js';
export { GantryError } from './gantry-error.js';
export type { ClientOptions } from './http-transport.js';
export { binaryThresholdBytes, type InferResult } from './infer-codec.js';
export type { PushOptions } from './models-api.js';
export type { UploadSource } from './upload-body.js';
export type {
  ModelDetail,
  ModelMetadata,
  ModelState,
  ModelSummary,
  PushedVersion,
  ServerMetadata,
  TensorMetadata,
  VersionDetail,
  VersionSummary,
  WarmupReport,
} from './model-types.js';
export type { Datatype, Tensor, TensorData, TensorInput, TensorValues, TypedArray } from './tensor-types.js';
export { maxRetryDelayMs } from './retry-policy.js';
