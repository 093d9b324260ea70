import type { Redis } from 'ioredis';
import { ErrorCode, GantryError } from '../errors.js';
import { modelTrafficKey, versionKey } from '../redis-keys.js';
import { deletingField } from './deletion-claim.js';
import { publishRegistryEvent } from './registry-events.js';
import type { StickyBy, TrafficPolicy } from './traffic-policy.js';

/** A stored policy: the policy and when it was last set. */
export interface StoredTrafficPolicy extends TrafficPolicy {
  /** When the policy was last set (ISO 8601). */
  updatedAt: string;
}

/** The errors of traffic policies, each naming what was wrong and how to fix it. */
export const trafficErrors = {
  versionNamed: (model: string, version: string) =>
    new GantryError(
      ErrorCode.FailedPrecondition,
      `Version '${version}' of model '${model}' is named by the model's traffic policy (a split or the shadow); change it first (PUT /v1/models/{model}/traffic, or DELETE it) or delete with ?force=true, which leaves the policy as it is (a split version that is gone gets no traffic).`,
    ),
};

/**
 * Stores a policy only while every version it names exists and no delete has claimed it (deletion-claim.ts), in one
 * step, so a policy never starts out naming a version deleted at the same moment. KEYS: policy key, then one version record per named version. ARGV: the
 * stored JSON. Returns 0 when stored, else the (1-based) position of the first version that does not exist.
 */
const setPolicyScript = `
for index = 2, #KEYS do
  if redis.call('EXISTS', KEYS[index]) == 0 or redis.call('HEXISTS', KEYS[index], '${deletingField}') == 1 then return index - 1 end
end
redis.call('SET', KEYS[1], ARGV[1])
return 0`;

/** What setting a policy did. */
export type SetTrafficOutcome = { outcome: 'set'; policy: StoredTrafficPolicy } | { outcome: 'no-such-version'; version: string };

/** The versions a policy names (splits, then the shadow), each once. */
export function versionsNamed(policy: TrafficPolicy): string[] {
  const named = (policy.splits ?? []).map((split) => split.version);
  if (policy.shadow !== undefined) named.push(policy.shadow.version);
  return [...new Set(named)];
}

function isStickyBy(value: unknown): value is StickyBy {
  if (value === null) return true;
  if (typeof value !== 'object') return false;
  const sticky = value as { kind?: unknown; header?: unknown };
  return sticky.kind === 'key' || (sticky.kind === 'header' && typeof sticky.header === 'string');
}

/** A stored policy as written by {@link ModelTraffic.set}; an unreadable one reads as no policy (nothing is split). */
function parseStored(stored: string | null): StoredTrafficPolicy | undefined {
  if (stored === null) return undefined;
  try {
    const parsed = JSON.parse(stored) as Partial<StoredTrafficPolicy>;
    const policy: StoredTrafficPolicy = { updatedAt: typeof parsed.updatedAt === 'string' ? parsed.updatedAt : '' };
    if (Array.isArray(parsed.splits)) {
      policy.splits = parsed.splits.filter(
        (split) => typeof split?.version === 'string' && typeof split.weight === 'number' && Number.isInteger(split.weight) && split.weight > 0,
      );
    }
    if (parsed.stickyBy !== undefined && isStickyBy(parsed.stickyBy)) policy.stickyBy = parsed.stickyBy;
    const shadow = parsed.shadow;
    if (shadow !== undefined && typeof shadow?.version === 'string' && typeof shadow.percent === 'number') policy.shadow = shadow;
    return policy;
  } catch {
    return undefined;
  }
}

/**
 * Models' traffic policies in Redis, one JSON string per model (qualified name, so each tenant's are its own),
 * beside the model's versions under the model's hash tag. Every change announces `traffic-changed`, so every API
 * process's catalog re-reads the policy at once.
 */
export class ModelTraffic {
  /**
   * @param afterChange told each changed model before its change is announced (the API keeps the routing in the
   *   store's records, routing-records.ts).
   */
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly afterChange?: (model: string) => Promise<void>,
  ) {}

  /** The model's policy, or undefined when it has none. */
  async get(model: string): Promise<StoredTrafficPolicy | undefined> {
    return parseStored(await this.redis.get(modelTrafficKey(this.prefix, model)));
  }

  /** Replaces the model's policy, only while every version it names exists (any state). */
  async set(model: string, policy: TrafficPolicy): Promise<SetTrafficOutcome> {
    const stored: StoredTrafficPolicy = { ...policy, updatedAt: new Date().toISOString() };
    const named = versionsNamed(policy);
    const missing = Number(
      await this.redis.eval(
        setPolicyScript,
        1 + named.length,
        modelTrafficKey(this.prefix, model),
        ...named.map((version) => versionKey(this.prefix, model, version)),
        JSON.stringify(stored),
      ),
    );
    if (missing > 0) return { outcome: 'no-such-version', version: named[missing - 1]! };
    await this.announce(model);
    return { outcome: 'set', policy: stored };
  }

  /** Removes the model's policy (a deleted model's too). @returns whether it had one. */
  async remove(model: string): Promise<boolean> {
    const removed = (await this.redis.del(modelTrafficKey(this.prefix, model))) > 0;
    if (removed) await this.announce(model);
    return removed;
  }

  private async announce(model: string): Promise<void> {
    try {
      await this.afterChange?.(model);
    } finally {
      // Announced even when the record could not be written: Redis changed, and every catalog must follow it.
      await publishRegistryEvent(this.redis, this.prefix, { type: 'traffic-changed', name: model });
    }
  }
}
