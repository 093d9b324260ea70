import type { Redis } from 'ioredis';
import { modelAliasesKey, modelTrafficKey, versionKey } from '../redis-keys.js';

/**
 * The field a version's hash gets once a delete has claimed it. Setting an alias or a traffic policy refuses a
 * version that has it (model-aliases.ts, model-traffic.ts), so nothing can come to point at a version between the
 * delete's check ("no alias points at it, no policy names it") and its removal. A delete that dies after the claim
 * leaves a version that serves as before and that a retried delete removes.
 */
export const deletingField = 'deleting';

/** What claiming a version for deletion found. */
export type DeletionClaim =
  | { outcome: 'claimed' }
  | { outcome: 'not-found' }
  /** Aliases point at the version (a delete without force). */
  | { outcome: 'aliased'; aliases: string[] }
  /** The model's traffic policy names the version in a split or as the shadow (a delete without force). */
  | { outcome: 'named-by-traffic' };

/**
 * KEYS: the version hash, the model's aliases hash, the model's traffic policy. ARGV: the version, '1' for a forced
 * delete. Checks and claims in one step. An unreadable alias entry or policy counts as not naming the version
 * (their readers ignore them too).
 */
const claimScript = `
if redis.call('EXISTS', KEYS[1]) == 0 then return {'not-found'} end
if ARGV[2] ~= '1' then
  local pointing = {'aliased'}
  local entries = redis.call('HGETALL', KEYS[2])
  for index = 1, #entries, 2 do
    local ok, stored = pcall(cjson.decode, entries[index + 1])
    if ok and type(stored) == 'table' and stored.version == ARGV[1] then pointing[#pointing + 1] = entries[index] end
  end
  if #pointing > 1 then return pointing end
  local policyText = redis.call('GET', KEYS[3])
  if policyText then
    local ok, policy = pcall(cjson.decode, policyText)
    if ok and type(policy) == 'table' then
      if type(policy.splits) == 'table' then
        for _, split in ipairs(policy.splits) do
          if type(split) == 'table' and split.version == ARGV[1] then return {'named-by-traffic'} end
        end
      end
      if type(policy.shadow) == 'table' and policy.shadow.version == ARGV[1] then return {'named-by-traffic'} end
    end
  end
end
redis.call('HSET', KEYS[1], '${deletingField}', '1')
return {'claimed'}`;

/**
 * Claims a version for deletion: unless `force`, only while no alias points at it and the model's traffic policy
 * does not name it. From the claim on, no alias or policy can come to name it; the caller then deletes it.
 */
export async function claimVersionDeletion(redis: Redis, prefix: string, model: string, version: string, force: boolean): Promise<DeletionClaim> {
  const [outcome, ...aliases] = (await redis.eval(
    claimScript,
    3,
    versionKey(prefix, model, version),
    modelAliasesKey(prefix, model),
    modelTrafficKey(prefix, model),
    version,
    force ? '1' : '0',
  )) as string[];
  if (outcome === 'aliased') return { outcome, aliases: aliases.sort() };
  return { outcome: outcome as 'claimed' | 'not-found' | 'named-by-traffic' };
}
