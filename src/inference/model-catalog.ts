import type { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import { errors } from '../errors.js';
import type { ModelSignature } from '../protocol/signature.js';
import type { ModelConfig, ModelConfigStore } from '../registry/model-config.js';
import type { ModelRegistry, ModelVersion } from '../registry/model-registry.js';
import { followRegistryEvents } from '../registry/registry-events.js';

/** How long a cached version list is trusted when no invalidation event arrives (a missed event heals). */
const cacheTtlMs = 2000;

/**
 * Models whose versions and configuration are cached at once. Only existing models are cached (an unknown name
 * is asked of Redis each time), so this bounds the cache by models in use, not by names callers make up.
 */
export const maxCachedModels = 10_000;

export interface ServingVersion extends ModelVersion {
  signature: ModelSignature;
}

/**
 * The API's read-through view of the registry. Inference needs a model's signature on every request, so the
 * version lists of existing models are cached in memory (at most maxCachedModels, least recently used out) and
 * dropped when the registry announces a change.
 */
export class ModelCatalog {
  private readonly cache = new LRUCache<string, { versions: ModelVersion[]; fetchedAt: number }>({ max: maxCachedModels });
  private readonly configs = new LRUCache<string, { config: ModelConfig; fetchedAt: number }>({ max: maxCachedModels });
  private readonly deletionListeners: Array<(name: string) => void> = [];

  constructor(
    private readonly registry: ModelRegistry,
    private readonly modelConfigs: ModelConfigStore,
    private readonly prefix: string,
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
    const cached = this.cache.get(name);
    if (cached !== undefined && Date.now() - cached.fetchedAt < cacheTtlMs) return cached.versions;
    const versions = await this.registry.listVersions(name);
    // An unknown name is not cached: callers could otherwise fill the cache with names made up for the purpose.
    if (versions.length > 0) this.cache.set(name, { versions, fetchedAt: Date.now() });
    else this.cache.delete(name);
    return versions;
  }

  /** A named version (any state), or 404. */
  async version(name: string, version: string): Promise<ModelVersion> {
    const found = (await this.versions(name)).find((candidate) => candidate.version === version);
    if (found === undefined) throw errors.modelNotFound(name, version);
    return found;
  }

  /**
   * The version that serves a request: the named one, which must be READY, or else the newest READY one.
   * @throws 404 for unknown models or versions, 503 (retryable) when nothing is READY yet.
   */
  async serving(name: string, version?: string): Promise<ServingVersion> {
    const versions = await this.versions(name);
    if (versions.length === 0) throw errors.modelNotFound(name);
    if (version !== undefined) {
      const found = versions.find((candidate) => candidate.version === version);
      if (found === undefined) throw errors.modelNotFound(name, version);
      if (found.state !== 'READY' || found.signature === undefined) throw errors.modelNotReady(name, version, found.state);
      return found as ServingVersion;
    }
    for (let index = versions.length - 1; index >= 0; index--) {
      const candidate = versions[index]!;
      if (candidate.state === 'READY' && candidate.signature !== undefined) return candidate as ServingVersion;
    }
    throw errors.noReadyVersion(name);
  }
}
