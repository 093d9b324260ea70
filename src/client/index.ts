/**
 * Gantry's typed TypeScript client (package exports `gantry` and `gantry/client`; docs/client.md). It imports
 * nothing from the server (src/api, src/worker, ...), only the protocol's own codecs
 * (test/integration/dependency-rules.test.ts says so).
 */
export { GantryClient } from './gantry-client.js';
export { GantryGrpcClient, type GrpcClientOptions } from './grpc-client.js';
export { GantryError } from './gantry-error.js';
export type { ClientOptions } from './http-transport.js';
export { binaryThresholdBytes, type InferResult } from './infer-codec.js';
export type { InferOptions } from './infer-request.js';
export type { PushOptions } from './models-api.js';
export type { JobCreateOptions } from './jobs-api.js';
export type { BatchResultLine, BatchSource, BatchSubmitOptions } from './batches-api.js';
export type { UploadSource } from './upload-body.js';
export type {
  ModelAlias,
  ModelDetail,
  ModelMetadata,
  ModelSettings,
  ModelState,
  ModelSummary,
  PushedVersion,
  ServerMetadata,
  TensorMetadata,
  TrafficPolicy,
  VersionDetail,
  VersionSummary,
  WarmupReport,
} from './model-types.js';
export type { Batch, BatchState, Callback, Delivery, Job, JobState } from './job-types.js';
export type {
  ApiKey,
  CreatedKey,
  KeyChanges,
  KeyCreation,
  KeyLimits,
  Scope,
  Tenant,
  TenantChanges,
  TenantCreation,
  TenantLimits,
  UsageCounts,
  UsageQuery,
  UsageReport,
  UsageRow,
} from './control-types.js';
export type { Datatype, Tensor, TensorData, TensorInput, TensorValues, TypedArray } from './tensor-types.js';
export { baseRetryDelayMs, maxRetryDelayMs } from './retry-policy.js';
