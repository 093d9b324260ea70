import type { Redis } from 'ioredis';
import type { ModelSignature } from '../protocol/signature.js';
import { registryEventsChannel } from '../queue/names.js';
import { modelConfigKey } from './model-config.js';
import { statisticsKey } from './model-statistics.js';
import type { ModelState } from './model-state.js';

export interface ModelVersion {
  name: string;
  version: string;
  sha256: string;
  size: number;
  state: ModelState;
  reason?: string;
  createdAt: string;
  signature?: ModelSignature;
  /** "ok", or why the synthetic warm-up inference failed (recorded, not fatal). */
  warmup?: string;
}

export interface RegistryEvent {
  type:
    | 'version-created'
    | 'version-changed'
    | 'version-deleted'
    | 'model-deleted'
    /** The model's run-time configuration (model-config.ts) changed. */
    | 'config-changed'
    /** Every version was made UNAVAILABLE ("unloaded"); workers drop the model's sessions. */
    | 'model-unloaded'
    /** A repository load request finished with the model READY. */
    | 'model-loaded';
  name: string;
  version?: string;
  /** The blob of a deleted version, so workers can release its sessions. */
  sha256?: string;
}

/**
 * Model metadata in Redis: which models exist, their versions, each version's blob, state and signature.
 * Model bytes are not here: they live in the content-addressed store, named by sha256.
 */
export class ModelRegistry {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private modelsKey(): string {
    return `${this.prefix}:models`;
  }
  private versionsKey(name: string): string {
    return `${this.prefix}:model:{${name}}:versions`;
  }
  private nextVersionKey(name: string): string {
    return `${this.prefix}:model:{${name}}:next-version`;
  }
  private versionKey(name: string, version: string): string {
    return `${this.prefix}:model:{${name}}:v:${version}`;
  }
  private blobReferencesKey(sha256: string): string {
    return `${this.prefix}:blob:${sha256}:refs`;
  }

  private async announce(event: RegistryEvent): Promise<void> {
    await this.redis.publish(registryEventsChannel(this.prefix), JSON.stringify(event));
  }

  /** Allocates the next version number ("1", "2", …) and records it as LOADING. */
  async createVersion(name: string, blob: { sha256: string; size: number }): Promise<ModelVersion> {
    const version = String(await this.redis.incr(this.nextVersionKey(name)));
    const record: ModelVersion = {
      name,
      version,
      sha256: blob.sha256,
      size: blob.size,
      state: 'LOADING',
      createdAt: new Date().toISOString(),
    };
    await this.redis
      .multi()
      .hset(this.versionKey(name, version), serialize(record))
      .zadd(this.versionsKey(name), Number(version), version)
      .sadd(this.modelsKey(), name)
      .sadd(this.blobReferencesKey(blob.sha256), `${name}/${version}`)
      .exec();
    await this.announce({ type: 'version-created', name, version });
    return record;
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
      if (error === null && fields !== null && Object.keys(fields as object).length > 0) records.push(deserialize(fields as Record<string, string>));
    }
    return records;
  }

  /** True while some version (of any model) uses the blob, so its bytes must stay in the store. */
  async isBlobReferenced(sha256: string): Promise<boolean> {
    return (await this.redis.scard(this.blobReferencesKey(sha256))) > 0;
  }

  async modelExists(name: string): Promise<boolean> {
    return (await this.redis.sismember(this.modelsKey(), name)) === 1;
  }

  async listModelNames(): Promise<string[]> {
    return (await this.redis.smembers(this.modelsKey())).sort();
  }

  /** Records a state change; `extra` carries the signature, warm-up result or reason that goes with it. */
  async updateVersion(
    name: string,
    version: string,
    change: { state: ModelState; reason?: string; signature?: ModelSignature; warmup?: string },
  ): Promise<void> {
    const key = this.versionKey(name, version);
    // Only an existing version may change: a load finishing after a delete must not resurrect it.
    if ((await this.redis.exists(key)) === 0) return;
    const fields: Record<string, string> = { state: change.state, reason: change.reason ?? '' };
    if (change.signature !== undefined) fields.signature = JSON.stringify(change.signature);
    if (change.warmup !== undefined) fields.warmup = change.warmup;
    await this.redis.hset(key, fields);
    await this.announce({ type: 'version-changed', name, version });
  }

  /**
   * Counts one stopped run (a run the worker ended at GANTRY_MAX_RUN_MS) against a version, atomically and only
   * while the version exists. Returns the version's strikes so far; 0 when it no longer exists.
   */
  async recordRunStrike(name: string, version: string): Promise<number> {
    return Number(await this.redis.eval(recordStrikeScript, 1, this.versionKey(name, version)));
  }

  /** Forgets a version's stopped runs: an operator who loads it again (repository load) gives it a fresh start. */
  async resetRunStrikes(name: string, version: string): Promise<void> {
    await this.redis.hdel(this.versionKey(name, version), 'runStrikes');
  }

  /**
   * Sets every existing version of a model to one state (the repository extension's unload), atomically and
   * without resurrecting a version deleted meanwhile. Returns the versions changed. Announces nothing: the
   * caller announces what the change means (e.g. 'model-unloaded').
   */
  async setAllVersionsState(name: string, change: { state: ModelState; reason?: string }): Promise<string[]> {
    const changed = (await this.redis.eval(
      setAllVersionsStateScript,
      1,
      this.versionsKey(name),
      this.versionKey(name, ''),
      change.state,
      change.reason ?? '',
    )) as string[];
    return changed;
  }

  /** Publishes a model-level event ('model-unloaded', 'model-loaded', …) on the registry channel. */
  async announceModelEvent(type: RegistryEvent['type'], name: string): Promise<void> {
    await this.announce({ type, name });
  }

  /**
   * Removes a version. Returns its blob's sha256 when no version references the blob any more, so the caller
   * can delete the bytes; undefined otherwise (or when the version did not exist).
   */
  async deleteVersion(name: string, version: string): Promise<{ deleted: boolean; orphanedBlob?: string }> {
    const record = await this.getVersion(name, version);
    if (record === undefined) return { deleted: false };
    const replies = await this.redis
      .multi()
      .del(this.versionKey(name, version))
      .zrem(this.versionsKey(name), version)
      .srem(this.blobReferencesKey(record.sha256), `${name}/${version}`)
      .scard(this.blobReferencesKey(record.sha256))
      .del(statisticsKey(this.prefix, name, version))
      .exec();
    const remainingReferences = Number(replies?.[3]?.[1] ?? 1);
    // A model exists while it has versions: the last one going takes the model's entry with it.
    if ((await this.redis.zcard(this.versionsKey(name))) === 0) {
      await this.redis.multi().srem(this.modelsKey(), name).del(modelConfigKey(this.prefix, name)).exec();
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
    // The version counter stays, so a re-created model never reuses an old version number for other bytes.
    await this.redis.multi().srem(this.modelsKey(), name).del(this.versionsKey(name)).del(modelConfigKey(this.prefix, name)).exec();
    await this.announce({ type: 'model-deleted', name });
    return { deleted: existed || versions.length > 0, orphanedBlobs };
  }
}

/** KEYS[1] a version hash: its `runStrikes` field goes up by one, unless the version is gone (then 0). */
const recordStrikeScript = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HINCRBY', KEYS[1], 'runStrikes', 1)`;

/** KEYS[1] the versions zset; ARGV: version key prefix, state, reason. Only existing version hashes change. */
const setAllVersionsStateScript = `
local changed = {}
for _, version in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local key = ARGV[1] .. version
  if redis.call('EXISTS', key) == 1 then
    redis.call('HSET', key, 'state', ARGV[2], 'reason', ARGV[3])
    table.insert(changed, version)
  end
end
return changed`;

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
  return record;
}
