import type { Datatype } from '../protocol/datatypes.js';

/** Model states, in Triton's vocabulary. */
export type ModelState = 'LOADING' | 'READY' | 'UNAVAILABLE' | 'UNLOADING';

/** A tensor of a model's signature (-1 marks a dimension of any size). */
export interface TensorMetadata {
  name: string;
  datatype: Datatype;
  shape: number[];
}

/** A version as GET /v1/models lists it. */
export interface VersionSummary {
  version: string;
  state: ModelState;
  /** The file's sha256; shown only to keys that may manage the model (models:write). */
  sha256?: string;
  size: number;
  createdAt: string;
}

/** A model as GET /v1/models lists it. */
export interface ModelSummary {
  /** The name as the caller addresses it (`<tenant>~<name>` for an admin's view of another tenant's). */
  name: string;
  tenant: string;
  versions: VersionSummary[];
}

/** How a version's warm-up went: ok, skipped (zero-filled inputs failed, no sample given), failed. */
export interface WarmupReport {
  status: 'ok' | 'skipped' | 'failed';
  reason?: string;
}

/** One version in full (GET /v1/models/{m}/versions/{v}). */
export interface VersionDetail extends VersionSummary {
  name: string;
  platform: string;
  /** Why the version is UNAVAILABLE. */
  reason?: string;
  warmup?: WarmupReport;
  inputs?: TensorMetadata[];
  outputs?: TensorMetadata[];
  servedBy?: number;
  unservedReason?: string;
}

/** A model with every version (GET /v1/models/{m}). */
export interface ModelDetail {
  name: string;
  versions: VersionDetail[];
}

/**
 * The upload route's answer. `status` 201: a new version, loaded (READY) or refused; 202: accepted, still loading
 * (`wait: false`, or no worker answered within GANTRY_LOAD_TIMEOUT_MS); 200: a version holding the same file
 * existed already and answers (`existing: true`; push with `duplicate: true` for a new one).
 */
export interface PushedVersion extends VersionDetail {
  status: 200 | 201 | 202;
  existing?: true;
}

/** The protocol's model metadata (GET /v2/models/{m}[/versions/{v}]). */
export interface ModelMetadata {
  name: string;
  versions?: string[];
  platform: string;
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
  servedBy?: number;
  unservedReason?: string;
}

/** GET /v2. */
export interface ServerMetadata {
  name: string;
  version: string;
  extensions: string[];
}

/** A name for a version (`production`, `canary`, …); unpinned requests follow `production`. */
export interface ModelAlias {
  alias: string;
  version: string;
  updatedAt: string;
}

/** A model's traffic policy: weighted splits, stickiness, a shadow version; `{}` when it has none. */
export interface TrafficPolicy {
  splits?: Array<{ version: string; weight: number }>;
  /** "header:<name>", "key", or null (each request drawn anew). */
  stickyBy?: string | null;
  shadow?: { version: string; percent: number } | null;
  updatedAt?: string;
}

/** A model's run-time configuration (PUT /v1/models/{m}/config takes any subset; null resets a field). */
export interface ModelSettings {
  maxBatchSize?: number;
  preferredBatchSizes?: number[];
  maxQueueDelayMicroseconds?: number;
  instances?: number;
  intraOpThreads?: number;
  interOpThreads?: number;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  optimizedModelCache?: boolean;
  inferTimeoutMs?: number;
  maxQueueSize?: number;
  defaultPriority?: number;
  labels?: string[];
}
