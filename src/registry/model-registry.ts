import type { Redis } from 'ioredis';
import { splitQualifiedName, tenantSeparator } from '../auth/model-names.js';
import { defaultTenant } from '../auth/principal.js';
import { errors } from '../errors.js';
import type { ModelSignature } from '../protocol/signature.js';
import {
  blobPendingKey,
  deploymentMarkerKey,
  modelAliasesKey,
  modelBlobIndexKey,
  modelConfigKey,
  modelCreationLockKey,
  modelVersionsKey,
  modelsKey,
  modelTrafficKey,
  nextVersionKey,
  statisticsKey,
  tenantCapsLockKey,
  tenantHoldingsKey,
  tenantModelsIndexedKey,
  tenantModelsKey,
  versionKey,
} from '../redis-keys.js';
import { BlobReferences } from './blob-references.js';
import { IdenticalVersions, versionChoiceErrors } from './identical-versions.js';
import { ModelLifecycle } from './model-lifecycle.js';
import type { ModelState } from './model-state.js';
import { RedisLock } from './redis-lock.js';
import type { ModelRouting, RegistryRecords, StoredModel, VersionRecord } from './registry-records.js';
import { recordWarmupSample } from './warmup-samples.js';
import { checkTenantCaps, hasTenantCaps, type TenantCapLimit, type TenantCaps, type TenantHoldings } from './tenant-caps.js';
import { publishRegistryEvent, type RegistryEvent } from './registry-events.js';

/**
 * Lease of a tenant's caps lock: checking the caps and creating a version takes milliseconds (one durable record
 * and one transaction); a holder that died frees it after this.
 */
const capsLockLeaseMs = 10_000;
/** How long an upload waits for its tenant's caps lock before it answers 503 (a little over one lease). */
const capsLockWaitMs = capsLockLeaseMs + 2000;

export interface CreateVersionOptions {
  /** The upload's pending blob reference, dropped in the transaction that creates the version. */
  uploadId?: string;
  /** The model's configuration at upload, kept in the version's durable record. */
  configAtUpload?: unknown;
  /**
   * The caps of the model's tenant: checked, with the tenant's holdings, under a per-tenant lock that also covers
   * the creation, so concurrent uploads never take a tenant past a cap. Without caps nothing is locked.
   */
  caps?: TenantCaps;
  /** Told which cap refused a version (for gantry_limit_rejections_total). */
  onCapRefused?: (limit: TenantCapLimit) => void;
}

/** What an upload asks of the version it makes (POST and PUT /v1/models/{m}/versions…). */
export interface UploadVersionOptions extends CreateVersionOptions {
  /** Makes a new version even when a live version of the model holds the same bytes (?duplicate=true). */
  duplicate?: boolean;
  /** The number the version must get (PUT): above every number the model has had, deleted ones included. */
  version?: string;
}

/** The version an upload answers with: the one it created, or the live one holding the same bytes (`existing`). */
export interface UploadedVersion {
  record: ModelVersion;
  existing: boolean;
}

export interface ModelVersion {
  name: string;
  version: string;
  sha256: string;
  size: number;
  state: ModelState;
  reason?: string;
  createdAt: string;
  signature?: ModelSignature;
  /** How the warm-up went, as stored: a JSON WarmupReport (warmup-report.ts), or an older plain string. */
  warmup?: string;
  /** The sha256 naming the version's warm-up sample in the data directory (warmup-samples.ts), when it has one. */
  warmupSample?: string;
  /** Bumped by every load, unload and fault (model-lifecycle.ts); absent in versions made before it existed. */
  loadGeneration?: number;
}

export type { RegistryEvent } from './registry-events.js';

/**
 * How the API's registry keeps every version durable: its records in the model store, and the deployment id
 * that must be in Redis for a version number to be handed out. Workers, which create no versions, have none.
 */
export interface RegistryDurability {
  records: RegistryRecords;
  /** The deployment id while the registry in Redis is this store's and intact; undefined while it is not. */
  deploymentId: () => string | undefined;
}

/** A version put back into Redis by a rebuild, and whether it can load (its blob is in the store). */
export interface RestoredVersion {
  name: string;
  version: string;
  sha256: string;
  state: ModelState;
}

/**
 * Model metadata in Redis: which models exist, their versions, each version's blob, state and signature.
 * Model bytes are not here: they live in the content-addressed store, named by sha256. With `durability`,
 * every version is also recorded in the model store (registry-records.ts), so Redis can lose its data.
 */
export class ModelRegistry {
  readonly blobReferences: BlobReferences;
  /** The one writer of a version's state after its creation (model-lifecycle.ts). */
  readonly lifecycle: ModelLifecycle;
  /** Which live version of a model holds given bytes (an identical upload answers with it). */
  readonly identicalVersions: IdenticalVersions;
  /** Whether this process has seen the tenant index built (indexTenants); checked once per process. */
  private tenantIndexChecked = false;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly durability?: RegistryDurability,
  ) {
    this.blobReferences = new BlobReferences(redis, prefix);
    this.lifecycle = new ModelLifecycle(redis, prefix);
    this.identicalVersions = new IdenticalVersions(redis, prefix);
  }

  private modelsKey(): string {
    return modelsKey(this.prefix);
  }
  /** The qualified names of one tenant's models: a tenant's list never reads another tenant's names. */
  private tenantModelsKey(tenant: string): string {
    return tenantModelsKey(this.prefix, tenant);
  }
  /** Set once every model in modelsKey is also in its tenant's set (see indexTenants). */
  private tenantIndexKey(): string {
    return tenantModelsIndexedKey(this.prefix);
  }
  /**
   * What one tenant's live versions hold, a hash: `versions` (over all its models) and `bytes` (each version counts
   * its own size, even when it shares its blob with another), changed in the same transaction that creates or
   * deletes a version, so the caps (tenant-caps.ts) read exact numbers.
   */
  private tenantHoldingsKey(tenant: string): string {
    return tenantHoldingsKey(this.prefix, tenant);
  }
  /** Held while a capped tenant's version is checked against its caps and created (see createVersion). */
  private tenantCapsLockKey(tenant: string): string {
    return tenantCapsLockKey(this.prefix, tenant);
  }
  private versionsKey(name: string): string {
    return modelVersionsKey(this.prefix, name);
  }
  private nextVersionKey(name: string): string {
    return nextVersionKey(this.prefix, name);
  }
  private versionKey(name: string, version: string): string {
    return versionKey(this.prefix, name, version);
  }

  /**
   * Registries from before tenants keep their models only in the global set, and no tenant's stored bytes: every
   * model then is the default tenant's. The first registry call that needs the tenant index builds it, once per
   * Redis (a marker key), atomically, before it reads or changes a tenant's set or count.
   */
  private async indexTenants(): Promise<void> {
    if (this.tenantIndexChecked) return;
    await this.redis.eval(indexTenantsScript, 2, this.modelsKey(), this.tenantIndexKey(), this.prefix);
    this.tenantIndexChecked = true;
  }

  private async announce(event: RegistryEvent): Promise<void> {
    await publishRegistryEvent(this.redis, this.prefix, event);
  }

  /**
   * Allocates the next version number ("1", "2", …) and records the version as LOADING; its blob's reference
   * is taken in the same transaction (and `options.uploadId`'s pending reference dropped).
   *
   * With durability, a number is handed out only while Redis holds this store's deployment id, and always above
   * the highest number the store ever recorded for the name (so a Redis that lost its data never hands out a
   * number again); the version's record is on disk before the version exists in Redis.
   * @throws UNAVAILABLE (503) while the registry in Redis is lost or being rebuilt.
   */
  async createVersion(name: string, blob: { sha256: string; size: number }, options: CreateVersionOptions = {}): Promise<ModelVersion> {
    return (await this.uploadVersion(name, blob, { ...options, duplicate: true })).record;
  }

  /**
   * An upload's version: unless `options.duplicate`, a live version of the model holding the same bytes (any state)
   * is the answer (`existing`) and nothing is created, caps unchecked; otherwise as createVersion, numbered
   * `options.version` when given. Looking for the identical version and creating this one happen under one lock per
   * model, so concurrent identical uploads make one version; a capped tenant's caps lock is taken first.
   * @throws ALREADY_EXISTS (409) when `options.version` is not above every number the model has had, or another
   *   number holds the same bytes; UNAVAILABLE (503) as createVersion, or while the model's lock stays busy.
   */
  async uploadVersion(name: string, blob: { sha256: string; size: number }, options: UploadVersionOptions = {}): Promise<UploadedVersion> {
    await this.indexTenants();
    const capped = options.caps !== undefined && hasTenantCaps(options.caps);
    const { tenant } = splitQualifiedName(name);
    const capsLock = capped ? await this.acquireLock(this.tenantCapsLockKey(tenant), errors.tenantUploadsBusy) : undefined;
    try {
      const creationLock = await this.acquireLock(modelCreationLockKey(this.prefix, name), versionChoiceErrors.busy);
      try {
        if (options.duplicate !== true) {
          const identical = await this.identicalVersions.find(name, blob.sha256);
          const record = identical === undefined ? undefined : await this.getVersion(name, identical);
          if (record !== undefined) {
            if (options.version !== undefined && options.version !== record.version)
              throw versionChoiceErrors.identicalTo(name, options.version, record.version);
            await this.releaseToExisting(blob.sha256, options.uploadId);
            return { record, existing: true };
          }
        }
        if (capped) checkTenantCaps(tenant, options.caps!, await this.tenantHoldings(tenant, name), blob.size, options.onCapRefused);
        return { record: await this.createVersionNow(name, blob, options), existing: false };
      } finally {
        await creationLock.release();
      }
    } finally {
      await capsLock?.release();
    }
  }

  /**
   * Drops the pending reference of an upload answered by an existing version: that version's reference keeps the
   * file. Unlike a refused upload's (BlobReferences.releasePending), a file left unreferenced here (the version
   * deleted meanwhile) gets the full grace period, since callers used those bytes.
   */
  private async releaseToExisting(sha256: string, uploadId: string | undefined): Promise<void> {
    if (uploadId === undefined) return;
    await this.redis.zrem(blobPendingKey(this.prefix, sha256), uploadId);
    await this.blobReferences.stampIfUnreferenced(sha256);
  }

  /** Takes a creation lock (a tenant's caps, a model's creation); waits for the holder (at most capsLockWaitMs). */
  private async acquireLock(key: string, busy: () => Error): Promise<RedisLock> {
    const deadline = Date.now() + capsLockWaitMs;
    for (;;) {
      const lock = await RedisLock.tryAcquire(this.redis, key, capsLockLeaseMs);
      if (lock !== undefined) return lock;
      if (Date.now() > deadline) throw busy();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  private async createVersionNow(name: string, blob: { sha256: string; size: number }, options: UploadVersionOptions): Promise<ModelVersion> {
    const version = options.version === undefined ? await this.allocateVersion(name) : await this.claimVersion(name, options.version);
    const record: ModelVersion = {
      name,
      version,
      sha256: blob.sha256,
      size: blob.size,
      state: 'LOADING',
      createdAt: new Date().toISOString(),
      loadGeneration: ModelLifecycle.firstGeneration,
    };
    if (this.durability !== undefined) {
      const { name: _name, state: _state, loadGeneration: _generation, ...kept } = record;
      await this.durability.records.writeVersion({
        name,
        ...kept,
        ...(options.configAtUpload === undefined ? {} : { configAtUpload: options.configAtUpload }),
      });
    }
    const { tenant } = splitQualifiedName(name);
    const transaction = this.redis
      .multi()
      .hset(this.versionKey(name, version), serialize(record))
      .zadd(this.versionsKey(name), Number(version), version)
      .sadd(this.modelsKey(), name)
      .sadd(this.tenantModelsKey(tenant), name)
      .hincrby(this.tenantHoldingsKey(tenant), 'versions', 1)
      .hincrby(this.tenantHoldingsKey(tenant), 'bytes', blob.size);
    this.identicalVersions.add(transaction, name, blob.sha256, version);
    await this.blobReferences.addReference(transaction, blob.sha256, `${name}/${version}`, options.uploadId).exec();
    await this.announce({ type: 'version-created', name, version });
    return record;
  }

  private async allocateVersion(name: string): Promise<string> {
    if (this.durability === undefined) return String(await this.redis.incr(this.nextVersionKey(name)));
    const deploymentId = this.durability.deploymentId();
    if (deploymentId === undefined) throw errors.registryUnavailable();
    const highestStored = await this.durability.records.highestVersion(name);
    const allocated = Number(
      await this.redis.eval(allocateVersionScript, 2, deploymentMarkerKey(this.prefix), this.nextVersionKey(name), deploymentId, highestStored),
    );
    if (allocated <= 0) throw errors.registryUnavailable();
    return String(allocated);
  }

  /**
   * Takes a chosen number for a new version of `name` (under the model's creation lock): only one above every number
   * the model has had, in Redis and in the store, so a deleted version's number is never reused and the newest
   * version stays the highest; the counter moves up to it, so later uploads continue after it.
   */
  private async claimVersion(name: string, version: string): Promise<string> {
    const deploymentId = this.durability === undefined ? '' : this.durability.deploymentId();
    if (deploymentId === undefined) throw errors.registryUnavailable();
    const highestStored = this.durability === undefined ? 0 : await this.durability.records.highestVersion(name);
    const claimed = Number(
      await this.redis.eval(claimVersionScript, 2, deploymentMarkerKey(this.prefix), this.nextVersionKey(name), deploymentId, highestStored, version),
    );
    if (claimed === 0) throw errors.registryUnavailable();
    if (claimed < 0) throw versionChoiceErrors.numberTaken(name, version, -claimed);
    return version;
  }

  /** Keeps the signature a load read in the version's durable record (a rebuilt version shows it before loading). */
  async recordSignature(name: string, version: string, signature: ModelSignature): Promise<void> {
    if (this.durability === undefined || (await this.redis.exists(this.versionKey(name, version))) === 0) return;
    await this.durability.records.writeSignature(name, version, signature);
  }

  /**
   * Gives a version its warm-up sample (the sha256 a WarmupSampleStore named it by), in the store's records first
   * (so a rebuilt registry keeps it) and then in Redis; its next load runs it.
   * @throws GantryError(NOT_FOUND) when the version no longer exists (deleted meanwhile).
   */
  async setWarmupSample(name: string, version: string, sample: string): Promise<void> {
    if ((await this.redis.exists(this.versionKey(name, version))) === 0) throw errors.modelNotFound(name, version);
    await this.durability?.records.writeWarmupSample(name, version, sample);
    await recordWarmupSample(this.redis, this.prefix, name, version, sample);
  }

  async getVersion(name: string, version: string): Promise<ModelVersion | undefined> {
    const fields = await this.redis.hgetall(this.versionKey(name, version));
    return Object.keys(fields).length === 0 ? undefined : deserialize(fields);
  }

  /** All versions of a model, oldest first; empty when the model does not exist. */
  async listVersions(name: string): Promise<ModelVersion[]> {
    const versions = await this.redis.zrange(this.versionsKey(name), 0, -1);
    if (versions.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const version of versions) pipeline.hgetall(this.versionKey(name, version));
    const replies = (await pipeline.exec()) ?? [];
    const records: ModelVersion[] = [];
    for (const [error, fields] of replies) {
      // A connection lost between the two reads (a Redis failover) fails each command of the pipeline: that is
      // "Redis unavailable" (503), not "no such version" (skipping them answered 404 for a model that exists).
      if (error !== null) throw error;
      if (fields !== null && Object.keys(fields as object).length > 0) records.push(deserialize(fields as Record<string, string>));
    }
    return records;
  }

  /** True while some version (of any model) uses the blob, so its bytes must stay in the store. */
  async isBlobReferenced(sha256: string): Promise<boolean> {
    return this.blobReferences.isReferenced(sha256);
  }

  /**
   * True while a version other than `except` (`<model>/<version>`) that uses the blob is READY or LOADING: a worker
   * that loaded the blob for a version that moved on keeps its sessions only then.
   */
  async isBlobServing(sha256: string, except: { name: string; version: string }): Promise<boolean> {
    const members = await this.redis.smembers(this.blobReferences.referencesKey(sha256));
    for (const member of members) {
      // A member is `<qualified name>/<version>`; versions are numbers, so the last slash splits it.
      const at = member.lastIndexOf('/');
      const name = member.slice(0, at);
      const version = member.slice(at + 1);
      if (name === except.name && version === except.version) continue;
      const state = await this.redis.hget(this.versionKey(name, version), 'state');
      if (state === 'READY' || state === 'LOADING') return true;
    }
    return false;
  }

  async modelExists(name: string): Promise<boolean> {
    return (await this.redis.sismember(this.modelsKey(), name)) === 1;
  }

  /** Every model's qualified name, sorted (every tenant's: for the admin, metrics and the registry's own checks). */
  async listModelNames(): Promise<string[]> {
    return (await this.redis.smembers(this.modelsKey())).sort();
  }

  /** The qualified names of one tenant's models, sorted; reads only that tenant's set, not every tenant's names. */
  async listTenantModelNames(tenant: string): Promise<string[]> {
    await this.indexTenants();
    return (await this.redis.smembers(this.tenantModelsKey(tenant))).sort();
  }

  /**
   * What a tenant holds now: its models, its versions over all of them and their bytes (each version's size as
   * uploaded), and whether `model` (a qualified name) is one of its models already.
   */
  async tenantHoldings(tenant: string, model?: string): Promise<TenantHoldings> {
    await this.indexTenants();
    const replies = await this.redis
      .multi()
      .scard(this.tenantModelsKey(tenant))
      .hmget(this.tenantHoldingsKey(tenant), 'versions', 'bytes')
      .sismember(this.tenantModelsKey(tenant), model ?? '')
      .exec();
    const [models, counts, member] = (replies ?? []).map(([error, value]) => {
      if (error !== null) throw error;
      return value;
    }) as [number, Array<string | null>, number];
    return { models, versions: Number(counts[0] ?? 0), storedBytes: Number(counts[1] ?? 0), hasModel: member === 1 };
  }

  /**
   * Counts one stopped run (a run the worker ended at GANTRY_MAX_RUN_MS) against a version, atomically and only
   * while the version exists. Returns the version's strikes so far; 0 when it no longer exists.
   */
  async recordRunStrike(name: string, version: string): Promise<number> {
    return Number(await this.redis.eval(recordStrikeScript, 1, this.versionKey(name, version)));
  }

  /** Publishes a model-level event ('model-unloaded', 'model-loaded', …) on the registry channel. */
  async announceModelEvent(type: RegistryEvent['type'], name: string): Promise<void> {
    await this.announce({ type, name });
  }

  /**
   * Removes a version (its durable record becomes a tombstone first, so its number stays taken). Its blob is
   * never removed here: when no version references the blob any more, its grace period starts and the garbage
   * collection (blob-collector.ts) removes it later (at once for `neverUsed`: a version refused at its first
   * load, which no caller could use). Returns that blob's sha256 as `orphanedBlob` then.
   */
  async deleteVersion(name: string, version: string, { neverUsed = false } = {}): Promise<{ deleted: boolean; orphanedBlob?: string }> {
    const record = await this.getVersion(name, version);
    if (record === undefined) return { deleted: false };
    await this.indexTenants();
    await this.durability?.records.markDeleted(name, version);
    const { tenant } = splitQualifiedName(name);
    // The version's bytes leave its tenant's count only when this transaction is the one that deletes it (two
    // deletes of one version racing must not subtract it twice).
    const transaction = this.redis
      .multi()
      .eval(deleteVersionHashScript, 2, this.versionKey(name, version), this.tenantHoldingsKey(tenant))
      .zrem(this.versionsKey(name), version);
    const replies = await this.blobReferences
      .dropReference(transaction, record.sha256, `${name}/${version}`)
      .scard(this.blobReferences.referencesKey(record.sha256))
      .del(statisticsKey(this.prefix, name, version))
      .exec();
    const remainingReferences = Number(replies?.[3]?.[1] ?? 1);
    await this.identicalVersions.forget(name, record.sha256, version);
    if (remainingReferences === 0) await this.blobReferences.stampIfUnreferenced(record.sha256, { neverUsed });
    // A model exists while it has versions: the last one going takes the model's entry with it.
    if ((await this.redis.zcard(this.versionsKey(name))) === 0) {
      await this.redis.multi().srem(this.modelsKey(), name).srem(this.tenantModelsKey(tenant), name).del(modelConfigKey(this.prefix, name)).exec();
      await this.durability?.records.writeModelConfig(name, undefined);
    }
    await this.announce({ type: 'version-deleted', name, version, sha256: record.sha256 });
    return remainingReferences === 0 ? { deleted: true, orphanedBlob: record.sha256 } : { deleted: true };
  }

  /** Removes a model and all its versions; returns the blobs no version references any more. */
  async deleteModel(name: string): Promise<{ deleted: boolean; orphanedBlobs: string[] }> {
    const versions = await this.redis.zrange(this.versionsKey(name), 0, -1);
    const existed = await this.modelExists(name);
    const orphanedBlobs: string[] = [];
    for (const version of versions) {
      const result = await this.deleteVersion(name, version);
      if (result.orphanedBlob !== undefined) orphanedBlobs.push(result.orphanedBlob);
    }
    // The version counter stays (and the store's tombstones), so a re-created model never reuses an old number.
    await this.redis
      .multi()
      .srem(this.modelsKey(), name)
      .srem(this.tenantModelsKey(splitQualifiedName(name).tenant), name)
      .del(this.versionsKey(name))
      .del(modelConfigKey(this.prefix, name))
      // Its versions left the index one by one; what remains is the marker (a later lookup builds it again).
      .del(modelBlobIndexKey(this.prefix, name))
      .exec();
    await this.durability?.records.writeModelConfig(name, undefined);
    await this.announce({ type: 'model-deleted', name });
    return { deleted: existed || versions.length > 0, orphanedBlobs };
  }

  /**
   * Puts the store's records back into Redis after Redis lost them (registry-rebuild.ts), then the deployment
   * marker, last, so the registry counts as intact only once whole. A version still in Redis is left as it is;
   * a restored one is LOADING (to be loaded again), or UNAVAILABLE when its blob is not in the store. Each
   * name's counter goes to at least the highest number the store knows. A model's configuration comes back as
   * last changed, or else as its newest version was uploaded with.
   */
  async restore(models: StoredModel[], deploymentId: string, missingBlobs: ReadonlySet<string>): Promise<RestoredVersion[]> {
    const restored: RestoredVersion[] = [];
    await this.indexTenants();
    for (const model of models) {
      await this.redis.eval(raiseCounterScript, 1, this.nextVersionKey(model.name), model.highestVersion);
      for (const stored of model.versions) {
        // The one state write outside model-lifecycle.ts: it runs under the rebuild lock (registry-rebuild.ts) and
        // only creates hashes that do not exist, so no transition of the version can be in flight to race with.
        if ((await this.redis.exists(this.versionKey(model.name, stored.version))) === 1) continue;
        const missing = missingBlobs.has(stored.sha256);
        const record: ModelVersion = {
          name: model.name,
          version: stored.version,
          sha256: stored.sha256,
          size: stored.size,
          state: missing ? 'UNAVAILABLE' : 'LOADING',
          createdAt: stored.createdAt,
          loadGeneration: ModelLifecycle.firstGeneration,
          ...(missing ? { reason: 'the model file is missing from the store' } : {}),
          ...(stored.signature === undefined ? {} : { signature: stored.signature }),
          ...(stored.warmupSample === undefined ? {} : { warmupSample: stored.warmupSample }),
        };
        const { tenant } = splitQualifiedName(model.name);
        const transaction = this.redis
          .multi()
          .hset(this.versionKey(model.name, stored.version), serialize(record))
          .zadd(this.versionsKey(model.name), Number(stored.version), stored.version)
          .sadd(this.modelsKey(), model.name)
          .sadd(this.tenantModelsKey(tenant), model.name)
          .hincrby(this.tenantHoldingsKey(tenant), 'versions', 1)
          .hincrby(this.tenantHoldingsKey(tenant), 'bytes', stored.size);
        this.identicalVersions.add(transaction, model.name, stored.sha256, stored.version);
        await this.blobReferences.addReference(transaction, stored.sha256, `${model.name}/${stored.version}`).exec();
        restored.push({ name: model.name, version: stored.version, sha256: stored.sha256, state: record.state });
      }
      const config = model.config ?? model.versions.at(-1)?.configAtUpload;
      if (config !== undefined && model.versions.length > 0) await this.redis.set(modelConfigKey(this.prefix, model.name), JSON.stringify(config), 'NX');
      if (model.routing !== undefined && model.versions.length > 0) await this.restoreRouting(model.name, model.routing, model.versions);
    }
    // Every version now in Redis is counted in its tenant's set and bytes (this process indexed the rest before, or
    // they were restored here), so a process that starts later must not count them again.
    await this.redis.set(this.tenantIndexKey(), '1');
    await this.redis.set(deploymentMarkerKey(this.prefix), deploymentId);
    for (const version of restored) await this.announce({ type: 'version-created', name: version.name, version: version.version });
    return restored;
  }

  /**
   * Puts a model's aliases and traffic policy back as the store recorded them, without replacing any Redis still
   * has: an alias only onto a version the store keeps (the policy as it was: a split version that is gone gets no
   * traffic).
   */
  private async restoreRouting(name: string, routing: ModelRouting, versions: readonly VersionRecord[]): Promise<void> {
    const kept = new Set(versions.map((version) => version.version));
    const transaction = this.redis.multi();
    for (const alias of routing.aliases) {
      if (kept.has(alias.version))
        transaction.hsetnx(modelAliasesKey(this.prefix, name), alias.alias, JSON.stringify({ version: alias.version, updatedAt: alias.updatedAt }));
    }
    if (routing.traffic !== undefined) transaction.set(modelTrafficKey(this.prefix, name), JSON.stringify(routing.traffic), 'NX');
    await transaction.exec();
  }
}

/**
 * KEYS: deployment marker, the name's version counter. ARGV: the deployment id, the highest number the store
 * knows. Refuses (0) unless Redis holds this deployment's id; otherwise the next number above both counters.
 */
const allocateVersionScript = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
if current < tonumber(ARGV[2]) then redis.call('SET', KEYS[2], ARGV[2]) end
return redis.call('INCR', KEYS[2])`;

/**
 * KEYS: deployment marker, the name's version counter. ARGV: the deployment id ('' without durability: unchecked),
 * the highest number the store knows, the chosen number. Refuses (0) unless Redis holds this deployment's id; a number
 * not above both counters is refused as the negated highest; otherwise the counter becomes the number.
 */
const claimVersionScript = `
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local highest = math.max(tonumber(redis.call('GET', KEYS[2]) or '0'), tonumber(ARGV[2]))
if tonumber(ARGV[3]) <= highest then return -highest end
redis.call('SET', KEYS[2], ARGV[3])
return tonumber(ARGV[3])`;

/** KEYS[1] a version counter; ARGV[1] a number it must be at least. */
const raiseCounterScript = `
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return 1`;

/**
 * KEYS: a version hash, its tenant's holdings hash. Deletes the version hash; only when it existed does the version
 * leave its tenant's holdings (which go with its last version: a tenant holding nothing leaves no key). Returns 1
 * when it deleted the version, 0 when it was gone already.
 */
const deleteVersionHashScript = `
local size = tonumber(redis.call('HGET', KEYS[1], 'size') or '0')
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[2], 'bytes', -size)
if redis.call('HINCRBY', KEYS[2], 'versions', -1) <= 0 then redis.call('DEL', KEYS[2]) end
return 1`;

/**
 * KEYS: the global models set, the tenant-index marker. ARGV: the registry's key prefix.
 * Unless the marker says it was done: puts every model name into its tenant's set ("<tenant>~<name>", else the
 * default tenant's) and counts its versions and their sizes in its tenant's holdings; then sets the marker.
 */
const indexTenantsScript = `
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
for _, name in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local at = string.find(name, '${tenantSeparator}', 1, true)
  local tenant = '${defaultTenant}'
  if at then tenant = string.sub(name, 1, at - 1) end
  redis.call('SADD', ARGV[1] .. ':tenant:' .. tenant .. ':models', name)
  for _, version in ipairs(redis.call('ZRANGE', ARGV[1] .. ':model:{' .. name .. '}:versions', 0, -1)) do
    local size = tonumber(redis.call('HGET', ARGV[1] .. ':model:{' .. name .. '}:v:' .. version, 'size') or '0')
    redis.call('HINCRBY', ARGV[1] .. ':tenant:' .. tenant .. ':holdings', 'versions', 1)
    redis.call('HINCRBY', ARGV[1] .. ':tenant:' .. tenant .. ':holdings', 'bytes', size)
  end
end
redis.call('SET', KEYS[2], '1')
return 1`;

/** KEYS[1] a version hash: its `runStrikes` field goes up by one, unless the version is gone (then 0). */
const recordStrikeScript = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HINCRBY', KEYS[1], 'runStrikes', 1)`;

function serialize(record: ModelVersion): Record<string, string> {
  const fields: Record<string, string> = {
    name: record.name,
    version: record.version,
    sha256: record.sha256,
    size: String(record.size),
    state: record.state,
    reason: record.reason ?? '',
    createdAt: record.createdAt,
  };
  if (record.signature !== undefined) fields.signature = JSON.stringify(record.signature);
  if (record.warmup !== undefined) fields.warmup = record.warmup;
  if (record.warmupSample !== undefined) fields.warmupSample = record.warmupSample;
  if (record.loadGeneration !== undefined) fields.loadGeneration = String(record.loadGeneration);
  return fields;
}

function deserialize(fields: Record<string, string>): ModelVersion {
  const record: ModelVersion = {
    name: fields.name ?? '',
    version: fields.version ?? '',
    sha256: fields.sha256 ?? '',
    size: Number(fields.size ?? 0),
    state: (fields.state ?? 'UNAVAILABLE') as ModelState,
    createdAt: fields.createdAt ?? '',
  };
  if (fields.reason) record.reason = fields.reason;
  if (fields.signature) record.signature = JSON.parse(fields.signature) as ModelSignature;
  if (fields.warmup) record.warmup = fields.warmup;
  if (fields.warmupSample) record.warmupSample = fields.warmupSample;
  if (fields.loadGeneration) record.loadGeneration = Number(fields.loadGeneration);
  return record;
}
