import type { Redis } from 'ioredis';
import { errors } from '../errors.js';
import type { ModelSignature } from '../protocol/signature.js';
import { registryEventsChannel } from '../queue/names.js';
import { subscribeWhenReady } from '../queue/redis-connection.js';
import type { ModelConfig, ModelConfigStore } from '../registry/model-config.js';
import type { ModelRegistry, ModelVersion, RegistryEvent } from '../registry/model-registry.js';

/** How long a cached version list is trusted when no invalidation event arrives (a missed event heals). */
const cacheTtlMs = 2000;

export interface ServingVersion extends ModelVersion {
  signature: ModelSignature;
}

/**
 * The API's read-through view of the registry. Inference needs a model's signature on every request, so the
 * version lists are cached in memory and dropped when the registry announces a change.
 */
export class ModelCatalog {
  private readonly cache = new Map<string, { versions: ModelVersion[]; fetchedAt: number }>();
  private readonly configs = new Map<string, { config: ModelConfig; fetchedAt: number }>();

  constructor(
    private readonly registry: ModelRegistry,
    private readonly modelConfigs: ModelConfigStore,
    private readonly prefix: string,
  ) {}

  /** Follows registry events on an already-connected subscriber connection. */
  async follow(subscriber: Redis): Promise<void> {
    const channel = registryEventsChannel(this.prefix);
    // 'messageBuffer', not 'message': a 'message' listener makes ioredis decode every message on this connection
    // to a string, the multi-megabyte inference replies included.
    subscriber.on('messageBuffer', (from: Buffer, message: Buffer) => {
      if (from.toString() !== channel) return;
      try {
        const event = JSON.parse(message.toString('utf8')) as RegistryEvent;
        this.invalidate(event.name);
      } catch {
        this.cache.clear();
        this.configs.clear();
      }
    });
    await subscribeWhenReady(subscriber, channel);
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
    this.cache.set(name, { versions, fetchedAt: Date.now() });
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
