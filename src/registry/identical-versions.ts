import type { ChainableCommander, Redis } from 'ioredis';
import { ErrorCode, GantryError } from '../errors.js';
import { modelBlobIndexKey, modelVersionsKey, versionKey } from '../redis-keys.js';

/** The index's field that says it covers every version of its model (no sha256 is spelled like it). */
const builtField = '*built';

/**
 * KEYS: the model's index, its versions zset. ARGV: sha256, the version hashes' key up to the version number, the
 * built field. Builds the index from the versions when it was never built (a model from before the index, or a
 * Redis that lost it), then answers the live version holding the sha256, or false.
 */
const lookupScript = `
if redis.call('HEXISTS', KEYS[1], ARGV[3]) == 0 then
  for _, version in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
    local sha256 = redis.call('HGET', ARGV[2] .. version, 'sha256')
    if sha256 then redis.call('HSETNX', KEYS[1], sha256, version) end
  end
  redis.call('HSET', KEYS[1], ARGV[3], '1')
end
local version = redis.call('HGET', KEYS[1], ARGV[1])
if not version then return false end
if redis.call('HGET', ARGV[2] .. version, 'sha256') == ARGV[1] then return version end
redis.call('HDEL', KEYS[1], ARGV[1])
return false`;

/**
 * KEYS: the model's index, its versions zset. ARGV: sha256, the deleted version, the version hashes' key up to the
 * version number. Run after a version left the zset: when the index named it, it names another live version with
 * the same bytes (an upload made with ?duplicate=true), or the sha256 leaves the index.
 */
const forgetScript = `
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
for _, version in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if redis.call('HGET', ARGV[3] .. version, 'sha256') == ARGV[1] then
    redis.call('HSET', KEYS[1], ARGV[1], version)
    return 1
  end
end
return 1`;

/**
 * Which live version of a model holds given bytes (by sha256), so an upload of bytes the model has already answers
 * with that version instead of making another. Kept in step by the registry: a created or restored version is added
 * in its creating transaction, a deleted one is forgotten after its deletion; the index builds itself from the
 * versions the first time it is read (models from before it, a rebuilt registry).
 */
export class IdenticalVersions {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  /** The live version of `name` holding `sha256`, or undefined when none does. */
  async find(name: string, sha256: string): Promise<string | undefined> {
    const version = await this.redis.eval(
      lookupScript,
      2,
      this.indexKey(name),
      modelVersionsKey(this.prefix, name),
      sha256,
      this.versionKeyStart(name),
      builtField,
    );
    return typeof version === 'string' ? version : undefined;
  }

  /** Queues, on the transaction that creates a version, its entry (the first version with those bytes keeps it). */
  add(transaction: ChainableCommander, name: string, sha256: string, version: string): ChainableCommander {
    return transaction.hsetnx(this.indexKey(name), sha256, version);
  }

  /** After a version was deleted (it has left the model's versions): the index no longer names it. */
  async forget(name: string, sha256: string, version: string): Promise<void> {
    await this.redis.eval(forgetScript, 2, this.indexKey(name), modelVersionsKey(this.prefix, name), sha256, version, this.versionKeyStart(name));
  }

  private indexKey(name: string): string {
    return modelBlobIndexKey(this.prefix, name);
  }

  private versionKeyStart(name: string): string {
    return versionKey(this.prefix, name, '');
  }
}

/** The errors of an upload that names its version number (PUT /v1/models/{m}/versions/{v}). */
export const versionChoiceErrors = {
  /** The number is not above every number the model has had. */
  numberTaken: (name: string, version: string, highest: number) =>
    new GantryError(
      ErrorCode.AlreadyExists,
      `Version ${version} of model '${name}' cannot be created: the model has had versions up to ${highest} (deleted versions keep their numbers, ` +
        `and a chosen number must be above all of them). Choose a number above ${highest}, or POST /v1/models/{model}/versions for the next one.`,
    ),
  /** The bytes are those of another version of the model. */
  identicalTo: (name: string, version: string, existing: string) =>
    new GantryError(
      ErrorCode.AlreadyExists,
      `Version ${version} of model '${name}' was not created: version ${existing} holds the same file. ` +
        'Use that version, or add ?duplicate=true to make another version of the same file.',
    ),
  /** Another upload of the same model is being created and has not finished within the wait. */
  busy: () =>
    new GantryError(ErrorCode.Unavailable, 'Another upload of this model is creating its version; retry shortly.', {
      retryAfterSeconds: 1,
    }),
};
