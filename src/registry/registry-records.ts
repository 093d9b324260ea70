import type { ModelSignature } from '../protocol/signature.js';

/**
 * What the model store keeps of each version, beside its blob, so that the registry in Redis can be rebuilt when
 * Redis loses its data: everything an upload decided (its number, its bytes, its configuration) and what its
 * first load learnt (the signature). States are not kept: a rebuilt version loads again.
 */
export interface VersionRecord {
  name: string;
  version: string;
  sha256: string;
  /** Bytes. */
  size: number;
  /** ISO 8601, when the upload created the version. */
  createdAt: string;
  /** The model's run-time configuration (model-config.ts) when this version was uploaded. */
  configAtUpload?: unknown;
  /** Read by the worker at the first load; absent until a load succeeded. */
  signature?: ModelSignature;
  /** The sha256 of the version's warm-up sample (warmup-samples.ts), when it was given one. */
  warmupSample?: string;
}

/** Which version requests reach: a model's aliases and traffic policy, kept whole after every change. */
export interface ModelRouting {
  /** As model-aliases.ts keeps them: alias → `{version, updatedAt}`. */
  aliases: Array<{ alias: string; version: string; updatedAt: string }>;
  /** The stored traffic policy (model-traffic.ts), when the model has one. */
  traffic?: unknown;
}

/** Everything the store knows of one model name. */
export interface StoredModel {
  name: string;
  /** The highest version number ever given to this name (deleted ones included); 0 when none. */
  highestVersion: number;
  /** Versions not deleted, oldest first. */
  versions: VersionRecord[];
  /** The model's configuration as last changed (PUT /v1/models/{m}/config), when it was ever changed. */
  config?: unknown;
  /** The model's aliases and traffic policy as last changed, when they ever were. */
  routing?: ModelRouting;
}

/**
 * The durable half of the registry, kept in the model store (one set per deployment, i.e. per queue prefix).
 * The file store implements it with small files (file-registry-records.ts); an object store can implement it
 * with one object per file. Every write is atomic and durable before it resolves.
 */
export interface RegistryRecords {
  /** The deployment id this store holds for the prefix, or undefined when none was recorded yet. */
  readDeploymentId(): Promise<string | undefined>;
  /** Records `id` unless an id is there already; returns the id the store holds afterwards (this one or the older). */
  claimDeploymentId(id: string): Promise<string>;
  /** Creates or replaces a version's record. */
  writeVersion(record: VersionRecord): Promise<void>;
  /** Adds the signature a load read to a version's record (kept apart, so it never revives a deleted version). */
  writeSignature(name: string, version: string, signature: ModelSignature): Promise<void>;
  /** Records a version's warm-up sample (kept apart from the record, like the signature). */
  writeWarmupSample(name: string, version: string, sample: string): Promise<void>;
  /** Records the model's aliases and traffic policy; undefined forgets them (the model went). */
  writeRouting(name: string, routing: ModelRouting | undefined): Promise<void>;
  /** Replaces a version's record by a tombstone: the version is gone, its number stays taken. */
  markDeleted(name: string, version: string): Promise<void>;
  /** The highest version number ever given to `name`, deleted ones included; 0 when none. */
  highestVersion(name: string): Promise<number>;
  /** Records the model's configuration; undefined forgets it (the model's last version went). */
  writeModelConfig(name: string, config: unknown): Promise<void>;
  /** Every model name the store knows (deleted ones included, for their numbers), with its live versions. */
  readAll(): Promise<StoredModel[]>;
}
