import type { Redis } from 'ioredis';
import type { ModelSignature } from '../protocol/signature.js';
import { modelVersionsKey, versionKey } from '../redis-keys.js';
import { publishRegistryEvent } from './registry-events.js';

/**
 * The one owner of a version's state (Triton's model lifecycle). Every transition is one Lua script, so a check
 * and its write can never be split by another writer, and each is guarded by the version's load generation (the
 * `loadGeneration` field of its hash):
 *
 * - a load starts (→ LOADING) and an unload or fault (→ UNAVAILABLE) bump the generation;
 * - a load's outcome (LOADING → READY | UNAVAILABLE) is recorded only while the state is LOADING and the generation
 *   is still the one the load started with, so an unload, a fault or a newer load that came meanwhile wins;
 * - a delete removes the hash (model-registry.ts), so a later outcome finds nothing and writes nothing.
 *
 * The one exception is the rebuild of a lost registry (registry-rebuild.ts), which writes whole hashes under the
 * registry's rebuild lock while no version exists yet to race with.
 */

/** What a load's outcome write did: recorded it, or refused it because the version moved on or was deleted. */
export type LoadOutcomeRecord = 'recorded' | 'superseded' | 'deleted';

/** A load's outcome: READY with what the worker read, or UNAVAILABLE with onnxruntime's reason. */
export type LoadOutcome = { state: 'READY'; signature: ModelSignature; warmup?: string } | { state: 'UNAVAILABLE'; reason: string };

/** The generation a version hash made before load generations existed counts as: any load may still finish it. */
const generationOfOldRecords = 0;

export class ModelLifecycle {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  /** The generation a new version starts with (createVersion writes it with the version's hash). */
  static readonly firstGeneration = 1;

  /** The version's current load generation; undefined when the version does not exist. */
  async currentGeneration(name: string, version: string): Promise<number | undefined> {
    const key = this.versionKey(name, version);
    const [state, generation] = await this.redis.hmget(key, 'state', 'loadGeneration');
    // Every version hash has a state: none means no version.
    if (state === null) return undefined;
    return generation === null ? generationOfOldRecords : Number(generation);
  }

  /**
   * Starts a (re)load: the version becomes LOADING with a new generation, and its stopped runs are forgotten (an
   * operator who loads it again gives it a fresh start). Any load still in flight for an older generation will find
   * its outcome refused. Returns the generation the new load must carry; undefined when the version does not exist.
   */
  async beginLoad(name: string, version: string): Promise<number | undefined> {
    const generation = Number(await this.redis.eval(beginLoadScript, 1, this.versionKey(name, version)));
    if (generation <= 0) return undefined;
    await this.announce(name, version);
    return generation;
  }

  /**
   * Records a load's outcome, only while the version is LOADING and still at `generation` (the one the load was
   * started for). A refused outcome changes nothing: the caller then releases what it loaded for the version.
   */
  async finishLoad(name: string, version: string, generation: number, outcome: LoadOutcome): Promise<LoadOutcomeRecord> {
    const fields =
      outcome.state === 'READY'
        ? ['state', 'READY', 'reason', '', 'signature', JSON.stringify(outcome.signature), ...(outcome.warmup === undefined ? [] : ['warmup', outcome.warmup])]
        : ['state', 'UNAVAILABLE', 'reason', outcome.reason];
    const result = String(await this.redis.eval(finishLoadScript, 1, this.versionKey(name, version), generation, generationOfOldRecords, ...fields));
    if (result === 'recorded') await this.announce(name, version);
    return result as LoadOutcomeRecord;
  }

  /**
   * Makes one version UNAVAILABLE with `reason` (a fault at run time, a missing file) and bumps its generation, so
   * a load in flight cannot make it READY again. Returns false when the version does not exist.
   */
  async markUnavailable(name: string, version: string, reason: string): Promise<boolean> {
    const changed = Number(await this.redis.eval(markUnavailableScript, 1, this.versionKey(name, version), reason)) === 1;
    if (changed) await this.announce(name, version);
    return changed;
  }

  /**
   * Unloads every version of a model (the repository extension's unload): each existing one becomes UNAVAILABLE
   * with `reason` and a new generation, in one step, so every load in flight loses. Returns the versions changed.
   * Announces nothing: the caller announces what the change means ('model-unloaded').
   */
  async unloadModel(name: string, reason: string): Promise<string[]> {
    return (await this.redis.eval(unloadModelScript, 1, modelVersionsKey(this.prefix, name), this.versionKey(name, ''), reason)) as string[];
  }

  private versionKey(name: string, version: string): string {
    return versionKey(this.prefix, name, version);
  }

  private async announce(name: string, version: string): Promise<void> {
    await publishRegistryEvent(this.redis, this.prefix, { type: 'version-changed', name, version });
  }
}

/** KEYS[1] a version hash. Returns the new generation, or 0 when the version does not exist. */
const beginLoadScript = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local generation = redis.call('HINCRBY', KEYS[1], 'loadGeneration', 1)
redis.call('HSET', KEYS[1], 'state', 'LOADING', 'reason', '')
redis.call('HDEL', KEYS[1], 'runStrikes')
return generation`;

/**
 * KEYS[1] a version hash. ARGV: the load's generation, the generation of hashes without one, then field/value pairs.
 * Writes the pairs only while the version exists, is LOADING and is at the load's generation.
 */
const finishLoadScript = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 'deleted' end
local current = redis.call('HGET', KEYS[1], 'loadGeneration') or ARGV[2]
if redis.call('HGET', KEYS[1], 'state') ~= 'LOADING' or current ~= ARGV[1] then return 'superseded' end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
return 'recorded'`;

/** KEYS[1] a version hash; ARGV[1] the reason. 1 when it changed the version, 0 when the version does not exist. */
const markUnavailableScript = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'loadGeneration', 1)
redis.call('HSET', KEYS[1], 'state', 'UNAVAILABLE', 'reason', ARGV[1])
return 1`;

/** KEYS[1] the versions zset; ARGV: the version key prefix, the reason. Only existing version hashes change. */
const unloadModelScript = `
local changed = {}
for _, version in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local key = ARGV[1] .. version
  if redis.call('EXISTS', key) == 1 then
    redis.call('HINCRBY', key, 'loadGeneration', 1)
    redis.call('HSET', key, 'state', 'UNAVAILABLE', 'reason', ARGV[2])
    table.insert(changed, version)
  end
end
return changed`;
