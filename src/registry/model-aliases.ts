import type { Redis } from 'ioredis';
import { ErrorCode, GantryError } from '../errors.js';
import { modelAliasesKey, versionKey } from '../redis-keys.js';
import { deletingField } from './deletion-claim.js';
import { publishRegistryEvent } from './registry-events.js';

/**
 * Alias names: lowercase letters, digits, `-` and `_`, starting with a letter (so never all digits: an alias
 * never reads as a version number), at most 63 characters.
 */
export const aliasNamePattern = /^[a-z][a-z0-9_-]{0,62}$/;

/**
 * Names that are not aliases: `latest` reads as "the newest version" to a Triton or KServe user, which the
 * default already is unless `production` pins another; refusing it keeps a request from meaning two things.
 */
export const reservedAliasNames: ReadonlySet<string> = new Set(['latest']);

/** One alias of a model. */
export interface ModelAlias {
  alias: string;
  /** The version number it points at. */
  version: string;
  /** When it was last set (ISO 8601). */
  updatedAt: string;
}

/** The errors of aliases, each naming what was wrong and how to fix it. */
export const aliasErrors = {
  invalidName: (alias: string) =>
    new GantryError(
      ErrorCode.InvalidArgument,
      `Invalid alias '${alias.slice(0, 70)}': aliases use lowercase letters, digits, '-' and '_', start with a letter and have at most 63 characters.`,
    ),
  reserved: (alias: string) =>
    new GantryError(
      ErrorCode.InvalidArgument,
      `'${alias}' is reserved and is not an alias: name no version to get the serving one (the 'production' alias, else the newest READY version).`,
    ),
  notFound: (model: string, alias: string) =>
    new GantryError(ErrorCode.NotFound, `Model '${model}' has no alias '${alias}'; GET /v1/models/{model}/aliases lists its aliases.`),
  tooMany: (model: string, limit: number) =>
    new GantryError(
      ErrorCode.FailedPrecondition,
      `Model '${model}' already has ${limit} aliases, the most GANTRY_MAX_ALIASES_PER_MODEL allows; delete one (DELETE /v1/models/{model}/aliases/{alias}) first.`,
    ),
  versionHasAliases: (model: string, version: string, aliases: readonly string[]) => {
    const named = aliases
      .slice(0, 5)
      .map((alias) => `'${alias}'`)
      .join(', ');
    const more = aliases.length > 5 ? ` and ${aliases.length - 5} more` : '';
    return new GantryError(
      ErrorCode.FailedPrecondition,
      `Version '${version}' of model '${model}' has aliases pointing at it (${named}${more}); move them first (PUT /v1/models/{model}/aliases/{alias}) or delete with ?force=true, which removes them too.`,
    );
  },
};

/**
 * Sets an alias only while its version exists and the model's aliases stay within the bound, in one step, so a
 * version deleted at the same moment never ends up with an alias pointing at it: a version a delete has claimed
 * (deletion-claim.ts) counts as gone, and a forced delete removes the aliases pointing at it after the version.
 * KEYS: aliases hash, version record. ARGV: alias, stored value, most aliases. Returns 1 set, 0 no such version,
 * -1 too many aliases.
 */
const setAliasScript = `
if redis.call('EXISTS', KEYS[2]) == 0 or redis.call('HEXISTS', KEYS[2], '${deletingField}') == 1 then return 0 end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return -1 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1`;

/** Removes every alias pointing at one version. KEYS: aliases hash. ARGV: version. Returns the aliases removed. */
const removePointingAtScript = `
local entries = redis.call('HGETALL', KEYS[1])
local removed = {}
for index = 1, #entries, 2 do
  local ok, stored = pcall(cjson.decode, entries[index + 1])
  if not ok or type(stored) ~= 'table' or stored.version == ARGV[1] then
    redis.call('HDEL', KEYS[1], entries[index])
    removed[#removed + 1] = entries[index]
  end
end
return removed`;

/** What setting an alias did. */
export type SetAliasOutcome = { outcome: 'set'; alias: ModelAlias } | { outcome: 'no-such-version' } | { outcome: 'too-many-aliases' };

function parseStored(alias: string, stored: string): ModelAlias | undefined {
  try {
    const parsed = JSON.parse(stored) as { version?: unknown; updatedAt?: unknown };
    if (typeof parsed.version !== 'string') return undefined;
    return { alias, version: parsed.version, updatedAt: typeof parsed.updatedAt === 'string' ? parsed.updatedAt : '' };
  } catch {
    return undefined;
  }
}

/**
 * Models' aliases in Redis, one hash per model (qualified name, so each tenant's are its own), beside the model's
 * versions under the model's hash tag. Every change announces `aliases-changed`, so every API process's catalog
 * re-reads which version serves at once.
 */
export class ModelAliases {
  /**
   * @param afterChange told each changed model before its change is announced (the API keeps the routing in the
   *   store's records, routing-records.ts).
   */
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly afterChange?: (model: string) => Promise<void>,
  ) {}

  /** The model's aliases, by name (an unreadable entry is left out). */
  async list(model: string): Promise<ModelAlias[]> {
    const entries = await this.redis.hgetall(modelAliasesKey(this.prefix, model));
    return Object.entries(entries)
      .map(([alias, stored]) => parseStored(alias, stored))
      .filter((alias): alias is ModelAlias => alias !== undefined)
      .sort((first, second) => (first.alias < second.alias ? -1 : first.alias > second.alias ? 1 : 0));
  }

  /** The model's aliases as alias → version (what the serving rule reads). */
  async table(model: string): Promise<Map<string, string>> {
    return new Map((await this.list(model)).map((alias) => [alias.alias, alias.version]));
  }

  /** Points `alias` at an existing version (any state), unless that would pass `maxAliases`. */
  async set(model: string, alias: string, version: string, maxAliases: number): Promise<SetAliasOutcome> {
    const record: ModelAlias = { alias, version, updatedAt: new Date().toISOString() };
    const result = Number(
      await this.redis.eval(
        setAliasScript,
        2,
        modelAliasesKey(this.prefix, model),
        versionKey(this.prefix, model, version),
        alias,
        JSON.stringify({ version, updatedAt: record.updatedAt }),
        maxAliases,
      ),
    );
    if (result === 0) return { outcome: 'no-such-version' };
    if (result === -1) return { outcome: 'too-many-aliases' };
    await this.announce(model);
    return { outcome: 'set', alias: record };
  }

  /** Removes one alias. @returns whether it existed. */
  async remove(model: string, alias: string): Promise<boolean> {
    const removed = (await this.redis.hdel(modelAliasesKey(this.prefix, model), alias)) > 0;
    if (removed) await this.announce(model);
    return removed;
  }

  /** Removes every alias pointing at `version` (a deleted version). @returns the aliases removed. */
  async removePointingAt(model: string, version: string): Promise<string[]> {
    const removed = (await this.redis.eval(removePointingAtScript, 1, modelAliasesKey(this.prefix, model), version)) as string[];
    if (removed.length > 0) await this.announce(model);
    return removed;
  }

  /** Removes all of a deleted model's aliases. */
  async removeAll(model: string): Promise<void> {
    if ((await this.redis.del(modelAliasesKey(this.prefix, model))) > 0) await this.announce(model);
  }

  private async announce(model: string): Promise<void> {
    try {
      await this.afterChange?.(model);
    } finally {
      // Announced even when the record could not be written: Redis changed, and every catalog must follow it.
      await publishRegistryEvent(this.redis, this.prefix, { type: 'aliases-changed', name: model });
    }
  }
}
