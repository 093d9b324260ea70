import { LRUCache } from 'lru-cache';
import { errors } from '../errors.js';
import type { Logger } from '../logger.js';
import type { FileModelStore } from '../registry/model-store.js';
import type { SessionSettings } from './instance-messages.js';
import { ModelInstances, type LoadedModel } from './model-instances.js';

export interface CachedModel extends LoadedModel {
  instances: ModelInstances;
}

export interface SessionCacheOptions {
  maxLoadedModels: number;
  instancesPerModel: number;
  settings: SessionSettings;
}

/**
 * The models this worker process has loaded, keyed by blob sha256 (two versions with the same bytes share
 * sessions). Loads are verified against the sha256 first, and concurrent requests for one model share one load.
 * The least recently used model is unloaded when more than `maxLoadedModels` are resident.
 */
export class SessionCache {
  private readonly cache: LRUCache<string, CachedModel>;
  private readonly loading = new Map<string, Promise<CachedModel>>();

  constructor(
    private readonly store: FileModelStore,
    private readonly options: SessionCacheOptions,
    private readonly logger: Logger,
  ) {
    this.cache = new LRUCache<string, CachedModel>({
      max: options.maxLoadedModels,
      dispose: (model, sha256) => {
        this.logger.info({ sha256 }, 'unloading model instances');
        void model.instances.close();
      },
    });
  }

  /** Returns the loaded model, loading it first if needed. */
  async get(sha256: string): Promise<CachedModel> {
    const cached = this.cache.get(sha256);
    if (cached !== undefined && cached.instances.healthy) return cached;
    if (cached !== undefined) this.cache.delete(sha256);
    const inFlight = this.loading.get(sha256);
    if (inFlight !== undefined) return inFlight;
    const load = this.load(sha256).finally(() => this.loading.delete(sha256));
    this.loading.set(sha256, load);
    return load;
  }

  private async load(sha256: string): Promise<CachedModel> {
    // Verifying the bytes here means a corrupted or swapped blob is reported, never executed.
    if (!(await this.store.verify(sha256))) {
      throw errors.invalidModel(`the stored blob is missing or does not match its sha256 ${sha256}`);
    }
    const { instances, loaded } = await ModelInstances.load(this.store.pathOf(sha256), this.options.instancesPerModel, this.options.settings);
    const model: CachedModel = { ...loaded, instances };
    this.cache.set(sha256, model);
    return model;
  }

  evict(sha256: string): void {
    this.cache.delete(sha256);
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.loading.values()]);
    const models = [...this.cache.values()];
    this.cache.clear();
    await Promise.all(models.map((model) => model.instances.close()));
  }
}
