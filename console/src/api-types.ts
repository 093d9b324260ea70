// The shapes of the API answers the console reads (the routes' zod schemas in src/api/routes say the same).

export interface TensorMetadata {
  name: string;
  datatype: string;
  /** -1 for a dimension of any size. */
  shape: number[];
}

export interface WarmupReport {
  status: 'ok' | 'skipped' | 'failed';
  reason?: string;
}

export interface VersionSummary {
  version: string;
  state: string;
  sha256?: string;
  size: number;
  createdAt: string;
}

export interface VersionDetail extends VersionSummary {
  name: string;
  platform: string;
  reason?: string;
  warmup?: WarmupReport;
  inputs?: TensorMetadata[];
  outputs?: TensorMetadata[];
  servedBy?: number;
  unservedReason?: string;
}

export interface ModelList {
  models: Array<{ name: string; tenant: string; versions: VersionSummary[] }>;
}

export interface ModelDetail {
  name: string;
  versions: VersionDetail[];
}

export interface AliasList {
  name: string;
  aliases: Array<{ alias: string; version: string }>;
}

export interface OutputTensor {
  name: string;
  datatype: string;
  shape: number[];
  data: unknown[];
}

export interface InferAnswer {
  model_name: string;
  model_version: string;
  outputs: OutputTensor[];
}
