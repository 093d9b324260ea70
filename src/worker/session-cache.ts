import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { LRUCache } from 'lru-cache';
import { errors } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ExecutionSettings } from '../queue/job-contracts.js';
import { fileExists, type FileModelStore } from '../registry/model-store.js';
import type { SessionSettings } from './instance-messages.js';
import { ModelBatcher } from './model-batcher.js';
import { ModelInstances, type LoadedModel } from './model-instances.js';

export interface CachedModel extends LoadedModel {
  sha256: string;
  instances: ModelInstances;
  batcher: ModelBatcher;
}

export interface SessionCacheOptions {
  maxLoadedModels: number;
  executionProviders: string[];
  /** Where optimized graphs are kept between loads (per worker host). */
  cacheDirectory: string;
}

/** Settings that need new sessions when they change; batching settings apply to the running batcher. */
function sessionKey(sha256: string, settings: ExecutionSettings): string {
  return [sha256, settings.instances, settings.intraOpThreads, settings.interOpThreads, settings.graphOptimizationLevel, settings.optimizedModelCache].join(':');
}

/**
 * The models this worker process has loaded, keyed by blob sha256 and session settings (two versions with the
 * same bytes share sessions). Blobs are verified against their sha256 before loading, and concurrent requests
 * for one model share one load. The least recently used model is unloaded past `maxLoadedModels`.
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
      dispose: (model, key) => {
        this.logger.info({ sha256: model.sha256, key }, 'unloading model instances');
        model.batcher.rejectQueued(errors.modelNotReady('(unloaded)', undefined, 'UNLOADING'));
        void model.instances.close();
      },
    });
  }

  /** Returns the loaded model for these settings, loading it first if needed. */
  async get(sha256: string, settings: ExecutionSettings): Promise<CachedModel> {
    const key = sessionKey(sha256, settings);
    const cached = this.cache.get(key);
    if (cached !== undefined && cached.instances.healthy) {
      cached.batcher.updateSettings(settings);
      return cached;
    }
    if (cached !== undefined) this.cache.delete(key);
    const inFlight = this.loading.get(key);
    if (inFlight !== undefined) return inFlight;
    const load = this.load(sha256, settings, key).finally(() => this.loading.delete(key));
    this.loading.set(key, load);
    return load;
  }

  private async load(sha256: string, settings: ExecutionSettings, key: string): Promise<CachedModel> {
    // Verifying the bytes here means a corrupted or swapped blob is reported, never executed.
    if (!(await this.store.verify(sha256))) {
      throw errors.invalidModel(`the stored blob is missing or does not match its sha256 ${sha256}`);
    }
    const { modelPath, sessionSettings, optimizedTarget } = await this.plan(sha256, settings);
    const { instances, loaded } = await ModelInstances.load(modelPath, settings.instances, sessionSettings);
    if (optimizedTarget !== undefined) await this.keepOptimized(optimizedTarget);
    const batcher = new ModelBatcher(instances, loaded.signature, settings);
    const model: CachedModel = { ...loaded, sha256, instances, batcher };
    // Sessions of the same model under older settings are replaced, not kept beside the new ones.
    for (const otherKey of [...this.cache.keys()]) if (otherKey.startsWith(`${sha256}:`)) this.cache.delete(otherKey);
    this.cache.set(key, model);
    return model;
  }

  /**
   * Decides where to load from. With the optimized-model cache on (CPU only: CUDA graphs are device-specific),
   * the first load writes onnxruntime's optimized graph beside the cache, and later loads read that graph with
   * optimization off, which skips the optimizer's work.
   */
  private async plan(sha256: string, settings: ExecutionSettings) {
    const sessionSettings: SessionSettings = {
      executionProviders: this.options.executionProviders,
      graphOptimizationLevel: settings.graphOptimizationLevel,
      ...(settings.intraOpThreads > 0 ? { intraOpThreads: settings.intraOpThreads } : {}),
      ...(settings.interOpThreads > 0 ? { interOpThreads: settings.interOpThreads } : {}),
    };
    const cpuOnly = this.options.executionProviders.every((provider) => provider === 'cpu');
    if (!settings.optimizedModelCache || !cpuOnly || settings.graphOptimizationLevel === 'disabled') {
      return { modelPath: this.store.pathOf(sha256), sessionSettings, optimizedTarget: undefined };
    }
    const optimizedPath = path.join(this.options.cacheDirectory, `${sha256}-${settings.graphOptimizationLevel}.onnx`);
    if (await fileExists(optimizedPath)) {
      return { modelPath: optimizedPath, sessionSettings: { ...sessionSettings, graphOptimizationLevel: 'disabled' as const }, optimizedTarget: undefined };
    }
    await mkdir(this.options.cacheDirectory, { recursive: true });
    // Written under a private name and renamed, so a concurrent worker never reads half a file.
    const partial = `${optimizedPath}.${process.pid}.partial`;
    return { modelPath: this.store.pathOf(sha256), sessionSettings: { ...sessionSettings, optimizedModelPath: partial }, optimizedTarget: { partial, final: optimizedPath } };
  }

  private async keepOptimized(target: { partial: string; final: string }): Promise<void> {
    try {
      await rename(target.partial, target.final);
    } catch (error) {
      this.logger.debug({ err: error }, 'optimized model not cached');
      await rm(target.partial, { force: true });
    }
  }

  /** Drops every loaded session of a blob (the model was unloaded or deleted). */
  evict(sha256: string): void {
    for (const key of [...this.cache.keys()]) if (key.startsWith(`${sha256}:`)) this.cache.delete(key);
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.loading.values()]);
    const models = [...this.cache.values()];
    this.cache.clear();
    await Promise.all(models.map((model) => model.instances.close()));
  }
}
