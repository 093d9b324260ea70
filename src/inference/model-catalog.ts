import type { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import { errors } from '../errors.js';
import type { ModelSignature } from '../protocol/signature.js';
import type { ModelConfig, ModelConfigStore } from '../registry/model-config.js';
import type { ModelAliases } from '../registry/model-aliases.js';
import type { ModelTraffic } from '../registry/model-traffic.js';
import type { TrafficPolicy } from '../registry/traffic-policy.js';
import type { ModelRegistry, ModelVersion } from '../registry/model-registry.js';
import { followRegistryEvents } from '../registry/registry-events.js';
import type { InferenceCall } from './inference-call.js';
import { describedVersion, randomDraw, servingVersion, stickyDraw, type AliasTable, type SplitDraw } from './serving-version.js';

/**
 * How long a cached version list (and alias table) is trusted when no invalidation event arrives: a missed event
 * heals within it. Changes reach every API process faster by their registry event, which drops the entry at once.
 */
const cacheTtlMs = 2000;

/**
 * Models whose versions and configuration are cached at once. Only existing models are cached (an unknown name
 * is asked of Redis each time), so this bounds the cache by models in use, not by names callers make up.
 */
export const maxCachedModels = 10_000;

/** What a traffic split reads of the call it routes: the caller (sticky by key) and its headers or metadata (sticky by header). */
export type RoutedCall = Pick<InferenceCall, 'principal' | 'routingValue'>;

/**
 * The draw of one call under a policy: by the sticky value when the policy has one and the call carries it (a
 * missing sticky header draws at random), else at random.
 */
function drawFor(model: string, policy: TrafficPolicy, call: RoutedCall): SplitDraw {
  const sticky = policy.stickyBy;
  const value =
    sticky === undefined || sticky === null
      ? undefined
      : sticky.kind === 'key'
        ? `${call.principal.tenant}/${call.principal.keyId}`
        : call.routingValue?.(sticky.header);
  return value === undefined || value === '' ? randomDraw : stickyDraw(model, value);
}

export interface ServingVersion extends ModelVersion {
  signature: ModelSignature;
}

/** What the catalog knows of one model: its versions (oldest first), its aliases and its traffic policy, read together. */
interface CachedModel {
  versions: ModelVersion[];
  aliases: AliasTable;
  traffic: TrafficPolicy;
  fetchedAt: number;
}

const noAliases: AliasTable = new Map();
const noTraffic: TrafficPolicy = {};

/**
 * The API's read-through view of the registry. Inference needs a model's signature on every request, so the
 * version lists of existing models are cached in memory (at most maxCachedModels, least recently used out) and
 * dropped when the registry announces a change.
 */
export class ModelCatalog {
  private readonly cache = new LRUCache<string, CachedModel>({ max: maxCachedModels });
  /**
   * Bumped by every invalidation of a model: a read that began before an invalidation is answered but not cached,
   * so an alias moved while a read was under way is not then hidden for a whole cacheTtlMs.
   */
  private readonly generations = new LRUCache<string, number>({ max: maxCachedModels });
  private readonly configs = new LRUCache<string, { config: ModelConfig; fetchedAt: number }>({ max: maxCachedModels });
  private readonly deletionListeners: Array<(name: string) => void> = [];

  /**
   * @param modelAliases the aliases requests may name (and `production`, which unpinned requests follow); without
   *   them the catalog knows no aliases and the newest READY version serves.
   * @param modelTraffic the traffic policies (splits, shadow); without them nothing is split or shadowed.
   */
  constructor(
    private readonly registry: ModelRegistry,
    private readonly modelConfigs: ModelConfigStore,
    private readonly prefix: string,
    private readonly modelAliases?: ModelAliases,
    private readonly modelTraffic?: ModelTraffic,
  ) {}

  /** Follows registry events on an already-connected subscriber connection. */
  async follow(subscriber: Redis): Promise<void> {
    await followRegistryEvents(subscriber, this.prefix, (event) => {
      if (event === undefined) {
        // Unreadable (or from a newer version): forget everything rather than guess which model it meant.
        this.cache.clear();
        this.configs.clear();
        return;
      }
      this.invalidate(event.name);
      if (event.type === 'model-deleted') for (const listener of this.deletionListeners) listener(event.name);
    });
  }

  /** Calls `listener` with the name of each deleted model (from any API process), so per-model state can go. */
  onModelDeleted(listener: (name: string) => void): void {
    this.deletionListeners.push(listener);
  }

  /** Models with a cached version list or configuration (for tests: it must stay bounded). */
  get cachedModelCount(): number {
    return new Set([...this.cache.keys(), ...this.configs.keys()]).size;
  }

  invalidate(name: string): void {
    this.cache.delete(name);
    this.configs.delete(name);
    this.generations.set(name, (this.generations.get(name) ?? 0) + 1);
  }

  /** The model's run-time configuration (defaults where nothing was set), cached like the versions. */
  async config(name: string): Promise<ModelConfig> {
    const cached = this.configs.get(name);
    if (cached !== undefined && Date.now() - cached.fetchedAt < cacheTtlMs) return cached.config;
    const config = await this.modelConfigs.get(name);
    this.configs.set(name, { config, fetchedAt: Date.now() });
    return config;
  }

  async versions(name: string): Promise<ModelVersion[]> {
    return (await this.model(name)).versions;
  }

  /** The model's aliases (alias → version). */
  async aliases(name: string): Promise<AliasTable> {
    return (await this.model(name)).aliases;
  }

  /** The model's traffic policy (`{}` when it has none), cached with its versions and dropped by `traffic-changed`. */
  async traffic(name: string): Promise<TrafficPolicy> {
    return (await this.model(name)).traffic;
  }

  private async model(name: string): Promise<CachedModel> {
    const cached = this.cache.get(name);
    if (cached !== undefined && Date.now() - cached.fetchedAt < cacheTtlMs) return cached;
    const generation = this.generations.get(name) ?? 0;
    const [versions, aliases, traffic] = await Promise.all([
      this.registry.listVersions(name),
      this.modelAliases === undefined ? noAliases : this.modelAliases.table(name),
      this.modelTraffic === undefined ? noTraffic : this.readTraffic(name, this.modelTraffic),
    ]);
    const fetched: CachedModel = { versions, aliases, traffic, fetchedAt: Date.now() };
    // An unknown name is not cached: callers could otherwise fill the cache with names made up for the purpose.
    if (versions.length === 0) this.cache.delete(name);
    else if ((this.generations.get(name) ?? 0) === generation) this.cache.set(name, fetched);
    return fetched;
  }

  private async readTraffic(name: string, modelTraffic: ModelTraffic): Promise<TrafficPolicy> {
    const stored = await modelTraffic.get(name);
    if (stored === undefined) return noTraffic;
    const { updatedAt: _updatedAt, ...policy } = stored;
    return policy;
  }

  /** A named version (any state), or 404. */
  async version(name: string, version: string): Promise<ModelVersion> {
    const found = (await this.versions(name)).find((candidate) => candidate.version === version);
    if (found === undefined) throw errors.modelNotFound(name, version);
    return found;
  }

  /**
   * The version that serves a request naming `version` (a number, an alias, or nothing): serving-version.ts
   * decides, splitting by the model's traffic policy when nothing is named.
   * @param call the call being routed (its sticky value); absent: nothing to draw for, a split's heaviest READY
   *   version serves.
   * @throws 404 for unknown models, versions or aliases, 503 (retryable) when what would serve is not READY.
   */
  async serving(name: string, version?: string, call?: RoutedCall): Promise<ServingVersion> {
    return (await this.route(name, version, call)).serving;
  }

  /**
   * {@link serving}, with the traffic policy it was decided by: one read of the cached model gives the inference
   * service both the version and the shadow to copy the call to.
   */
  async route(name: string, version?: string, call?: RoutedCall): Promise<{ serving: ServingVersion; traffic: TrafficPolicy }> {
    const { versions, aliases, traffic } = await this.model(name);
    const draw = call === undefined ? undefined : drawFor(name, traffic, call);
    return { serving: servingVersion(name, versions, aliases, version, { policy: traffic, ...(draw === undefined ? {} : { draw }) }), traffic };
  }

  /**
   * The version a request naming `version` describes (metadata, readiness, configuration): a named version or
   * alias whatever its state, else the serving one (serving-version.ts).
   */
  async described(name: string, version?: string): Promise<ModelVersion> {
    const { versions, aliases, traffic } = await this.model(name);
    return describedVersion(name, versions, aliases, version, traffic);
  }
}
