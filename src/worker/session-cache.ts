import { mkdir, rename, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LRUCache } from 'lru-cache';
import { ErrorCode, GantryError, errors } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ExecutionSettings } from '../queue/job-contracts.js';
import { fileExists } from '../registry/file-model-store.js';
import type { BlobCache } from './blob-cache.js';
import { intraOpShare, onnxruntimeThreadsOf } from '../registry/thread-budget.js';
import type { SessionSettings } from './instance-messages.js';
import { ModelBatcher } from './model-batcher.js';
import { IsolatedModelPaths } from './isolated-model-path.js';
import { ModelInstances, type LoadedModel } from './model-instances.js';
import type { RunWatchdog } from './run-watchdog.js';
import type { WarmupReport } from '../registry/warmup-report.js';
import { warmupSampleErrors, type WarmupSampleStore } from '../registry/warmup-samples.js';

export interface CachedModel extends LoadedModel {
  sha256: string;
  instances: ModelInstances;
  batcher: ModelBatcher;
  /** onnxruntime threads its sessions hold (counted against GANTRY_MAX_THREADS_PER_WORKER). */
  threads: number;
  /** What its sessions are estimated to hold (counted against GANTRY_WORKER_SESSION_MEMORY_BYTES): file size x instances. */
  memoryBytes: number;
  /**
   * The warm-ups run (or running) on these sessions, by sample sha256 ('' for the zero-filled one): versions with
   * the same bytes share sessions, and each version's sample runs on them once before it serves from them.
   */
  warmups: Map<string, Promise<WarmupReport>>;
}

/** A loaded model and how the warm-up a caller asked for went on it. */
export interface WarmedModel {
  model: CachedModel;
  warmup: WarmupReport;
}

const zeroWarmup = '';

const sessionMemoryErrors = {
  /** A model that could never fit this worker's budget, whatever it unloads: not retried, the variable named. */
  tooLarge: (bytes: number, budget: number) =>
    new GantryError(
      ErrorCode.Unavailable,
      `This model's sessions need about ${bytes} bytes (its file's size x instances), more than this worker's GANTRY_WORKER_SESSION_MEMORY_BYTES (${budget}): raise it, lower the model's instances, or serve the model from a pool with more memory (GANTRY_WORKER_MODELS).`,
    ),
};

/** Why loaded sessions were released to make room (gantry_worker_session_evictions_total{reason}). */
export type EvictionReason = 'memory' | 'threads' | 'count';

export interface SessionCacheOptions {
  /** Most models kept loaded whatever their size; past it the least recently used goes. */
  maxLoadedModels: number;
  /**
   * GANTRY_WORKER_SESSION_MEMORY_BYTES: what the loaded sessions may hold together, each estimated as its model
   * file's size x its instances; past it idle models are released, least recently used first. Unbounded when absent.
   */
  maxSessionBytes?: number;
  /** Told of each model released to make room, with why; and of the estimated bytes held after every change. */
  onEviction?: (reason: EvictionReason) => void;
  onMemoryChange?: (bytes: number) => void;
  /** Counts loads refused at the memory budget (metrics.limitTrips with limit 'session_memory'). */
  onMemoryBudgetRefused?: () => void;
  /** Told of each warm-up run: with the version's sample or zero-filled inputs, how it went and how long it took. */
  onWarmup?: (input: 'sample' | 'zero-filled', report: WarmupReport, seconds: number) => void;
  executionProviders: string[];
  /** Where optimized graphs are kept between loads (per worker host). */
  cacheDirectory: string;
  /** GANTRY_MAX_THREADS_PER_WORKER: onnxruntime threads all loaded models may hold together. */
  maxThreads?: number;
  /** Stops loads past their deadline (and runs past theirs); absent in tests that need no deadlines. */
  watchdog?: RunWatchdog;
  /** How long an unloaded model's run in progress may take to finish before it counts as stuck; default 500 ms. */
  unloadGraceMs?: number;
  /** Called when an unloaded model's thread is still inside a native call after the grace: restart the worker. */
  onStuckUnload?: (sha256: string) => void;
  /** Counts refusals (metrics.limitTrips with limit 'thread_budget'). */
  onThreadBudgetRefused?: () => void;
  /** Where each load's folder of its own goes (isolated-model-path.ts); default: `loading` in cacheDirectory. */
  isolationDirectory?: string;
  /** Where warm-up samples are read (the shared data directory); without it, asking for a sample fails the load. */
  warmupSamples?: WarmupSampleStore;
  /**
   * The cores automatic intra-op threads are shared out of (intraOpShare) and the thread budget counts them by;
   * default os.availableParallelism() of this process.
   */
  availableParallelism?: number;
}

/**
 * Which sessions of a version run a job. `foreground`: the version's configured instances, for requests someone
 * waits on. `background`: work nobody waits on (shadow copies), on a session of its own with one onnxruntime thread,
 * in a thread at the lowest OS priority (instance-thread.ts), so it takes only CPU time the foreground leaves idle
 * and never delays a foreground run already queued behind it in a batcher. It costs one more session of the model
 * while background work uses it, counted against the same budgets and released like any other.
 */
export type SessionLane = 'foreground' | 'background';

/** What a background session runs with: one instance, one thread each for onnxruntime's intra- and inter-op work. */
function laneSettings(settings: ExecutionSettings, lane: SessionLane): ExecutionSettings {
  return lane === 'foreground' ? settings : { ...settings, instances: 1, intraOpThreads: 1, interOpThreads: 1 };
}

/** Settings that need new sessions when they change; batching settings apply to the running batcher. */
function sessionKey(sha256: string, lane: SessionLane, settings: ExecutionSettings): string {
  return [
    sha256,
    lane,
    settings.instances,
    settings.intraOpThreads,
    settings.interOpThreads,
    settings.graphOptimizationLevel,
    settings.optimizedModelCache,
    settings.allowSpinning,
  ].join(':');
}

/**
 * The models this worker process has loaded, keyed by blob sha256 and session settings (two versions with the
 * same bytes share sessions). Blobs are verified against their sha256 before loading, and concurrent requests
 * for one model share one load. Idle models are unloaded, least recently used first, to keep within the memory
 * and thread budgets; and past `maxLoadedModels` the least recently used one goes whatever it is doing.
 */
export class SessionCache {
  private readonly isolation: IsolatedModelPaths;
  private readonly cache: LRUCache<string, CachedModel>;
  private readonly loading = new Map<string, Promise<CachedModel>>();
  /** Threads and estimated bytes reserved by loads in progress, by session key. */
  private readonly reserved = new Map<string, { threads: number; bytes: number }>();
  /** Estimated bytes of the loaded sessions (the cache's entries). */
  private loadedBytes = 0;
  private readonly releases = new Set<Promise<void>>();
  /** True while a delete is under way (the disposer then stops runs instead of letting them finish). */
  private unloading = false;
  /** Whether the worker said once that background sessions could not get SCHED_IDLE. */
  private warnedNiceOnly = false;
  private readonly availableParallelism: number;

  constructor(
    private readonly blobs: BlobCache,
    private readonly options: SessionCacheOptions,
    private readonly logger: Logger,
  ) {
    this.availableParallelism = options.availableParallelism ?? os.availableParallelism();
    this.isolation = new IsolatedModelPaths(options.isolationDirectory ?? path.join(options.cacheDirectory, 'loading'));
    this.cache = new LRUCache<string, CachedModel>({
      max: options.maxLoadedModels,
      dispose: (model, key, reason) => {
        this.logger.info({ sha256: model.sha256, key }, 'unloading model instances');
        this.loadedBytes -= model.memoryBytes;
        this.options.onMemoryChange?.(this.loadedBytes);
        // 'evict' is the cache's own: the count bound. Releases for the budgets are counted where they are decided.
        if (reason === 'evict') this.options.onEviction?.('count');
        model.batcher.rejectQueued(errors.modelUnloaded());
        const release = this.release(model, this.unloading).finally(() => this.releases.delete(release));
        this.releases.add(release);
      },
    });
  }

  /**
   * Ends a model's threads. Unloaded or deleted on purpose (`stopRuns`), its runs get a short grace and a thread
   * still inside a run then restarts the worker, so a deleted model stops using CPU within about a second.
   * Pushed out by the LRU or replaced by new settings, its runs may finish (up to GANTRY_MAX_RUN_MS, after which
   * the watchdog stops them anyway).
   */
  private async release(model: CachedModel, stopRuns: boolean): Promise<void> {
    const { stuck } = await model.instances.close(stopRuns ? (this.options.unloadGraceMs ?? 500) : (this.options.watchdog?.limits.maxRunMs ?? 60_000));
    if (stuck) {
      this.logger.error({ sha256: model.sha256 }, 'an unloaded model is still running inside onnxruntime; the worker restarts to stop it');
      this.options.onStuckUnload?.(model.sha256);
    }
  }

  /** Removes load folders left by workers that died mid-load (see isolated-model-path.ts); call at start-up. */
  async removeStaleLoads(): Promise<void> {
    await this.isolation.removeStale();
  }

  /** Returns the loaded model for these settings, loading and warming it (zero-filled inputs) first if needed. */
  async get(sha256: string, settings: ExecutionSettings, lane: SessionLane = 'foreground'): Promise<CachedModel> {
    return (await this.warmed(sha256, settings, undefined, lane)).model;
  }

  /**
   * Returns the loaded model for these settings once the warm-up has run on every instance: the version's sample
   * (`warmupSample`, its sha256), or zero-filled inputs without one. Each runs once per sessions.
   * @throws GantryError(INVALID_MODEL) when the sample cannot be read or fails: the version must not serve untested.
   */
  async warmed(sha256: string, settings: ExecutionSettings, warmupSample?: string, lane: SessionLane = 'foreground'): Promise<WarmedModel> {
    const model = await this.loaded(sha256, laneSettings(settings, lane), lane);
    const key = warmupSample ?? zeroWarmup;
    let warming = model.warmups.get(key);
    if (warming === undefined) {
      warming = this.warm(model, warmupSample);
      model.warmups.set(key, warming);
    }
    let warmup: WarmupReport;
    try {
      warmup = await warming;
    } catch (error) {
      model.warmups.delete(key);
      throw error;
    }
    if (warmup.status === 'failed') {
      // Forgotten, so a reload of the version tries the sample again.
      model.warmups.delete(key);
      throw warmupSampleErrors.failed(warmup.reason ?? 'no reason given');
    }
    return { model, warmup };
  }

  private async warm(model: CachedModel, warmupSample: string | undefined): Promise<WarmupReport> {
    const startedAt = performance.now();
    const report = await this.runWarmup(model, warmupSample);
    this.options.onWarmup?.(warmupSample === undefined ? 'zero-filled' : 'sample', report, (performance.now() - startedAt) / 1000);
    // One line per warm-up, so an operator (and the tests) can see that each worker warmed before serving.
    this.logger.info(
      {
        sha256: model.sha256,
        warmupSample: warmupSample ?? 'zero-filled',
        instances: model.instances.count,
        intraOpThreads: model.intraOpThreads,
        warmup: report,
      },
      'warm-up ran on every instance',
    );
    return report;
  }

  private async runWarmup(model: CachedModel, warmupSample: string | undefined): Promise<WarmupReport> {
    if (warmupSample === undefined) return model.instances.warm();
    let sample;
    try {
      if (this.options.warmupSamples === undefined) throw new Error('this worker has no warm-up sample store');
      sample = await this.options.warmupSamples.get(warmupSample);
    } catch (error) {
      return { status: 'failed', reason: error instanceof Error ? error.message : String(error) };
    }
    return model.instances.warm(sample);
  }

  private async loaded(sha256: string, settings: ExecutionSettings, lane: SessionLane): Promise<CachedModel> {
    const key = sessionKey(sha256, lane, settings);
    const cached = this.cache.get(key);
    if (cached !== undefined && cached.instances.healthy) {
      cached.batcher.updateSettings(settings);
      return cached;
    }
    if (cached !== undefined) this.cache.delete(key);
    const inFlight = this.loading.get(key);
    if (inFlight !== undefined) return inFlight;
    const load = this.load(sha256, settings, key, lane).finally(() => this.loading.delete(key));
    this.loading.set(key, load);
    return load;
  }

  private async load(sha256: string, settings: ExecutionSettings, key: string, lane: SessionLane): Promise<CachedModel> {
    // The blob cache verifies the bytes (once per worker): a corrupted or swapped blob is reported, never executed.
    const blobPath = await this.blobs.localFile(sha256);
    const planned = await this.plan(sha256, settings, blobPath);
    const { modelPath, optimizedTarget } = planned;
    const sessionSettings = lane === 'background' ? { ...planned.sessionSettings, background: true } : planned.sessionSettings;
    // Budgeted before the load at the share automatic threads start with: the measurement may only lower it.
    const threads = onnxruntimeThreadsOf(settings, this.availableParallelism);
    const bytes = await this.estimatedBytes(modelPath, settings.instances);
    this.makeRoom(threads, bytes);
    this.reserved.set(key, { threads, bytes });
    let instances: ModelInstances;
    let loaded: LoadedModel;
    // A blob is loaded from a folder of its own, never from the store's (see isolated-model-path.ts).
    const isolated = modelPath === blobPath ? await this.isolation.isolate(modelPath) : undefined;
    try {
      ({ instances, loaded } = await ModelInstances.load(isolated?.modelPath ?? modelPath, settings.instances, sessionSettings, {
        watchdog: this.options.watchdog,
        label: sha256,
      }));
    } finally {
      this.reserved.delete(key);
      await isolated?.remove();
    }
    if (optimizedTarget !== undefined) await this.keepOptimized(optimizedTarget);
    if (loaded.backgroundScheduling === 'nice' && !this.warnedNiceOnly) {
      this.warnedNiceOnly = true;
      this.logger.warn(
        { sha256 },
        "background sessions (shadow copies) run at nice 19 only: SCHED_IDLE could not be set (util-linux's chrt missing, or not Linux), so a running shadow may still delay primaries a little",
      );
    }
    if (settings.intraOpThreads === 0 && loaded.intraOpThreads !== undefined) {
      // Once per load: what automatic threads came to, and the run time it was chosen from (absent: nothing to choose, or zeros rejected).
      this.logger.info(
        { sha256, lane, instances: settings.instances, intraOpThreads: loaded.intraOpThreads, measuredRunMs: loaded.measuredRunMs },
        'automatic intra-op threads chosen',
      );
    }
    // What the sessions really hold from now on: automatic threads may have come down to one.
    const heldThreads =
      settings.intraOpThreads === 0 && loaded.intraOpThreads !== undefined
        ? onnxruntimeThreadsOf({ ...settings, intraOpThreads: loaded.intraOpThreads }, this.availableParallelism)
        : threads;
    const batcher = new ModelBatcher(instances, loaded.signature, settings);
    const model: CachedModel = { ...loaded, sha256, instances, batcher, threads: heldThreads, memoryBytes: bytes, warmups: new Map() };
    // Sessions of the same model and lane under older settings are replaced, not kept beside the new ones.
    for (const otherKey of [...this.cache.keys()]) if (otherKey !== key && otherKey.startsWith(`${sha256}:${lane}:`)) this.cache.delete(otherKey);
    this.cache.set(key, model);
    this.loadedBytes += bytes;
    this.options.onMemoryChange?.(this.loadedBytes);
    return model;
  }

  /**
   * What a model's sessions will hold: its file's size per instance. onnxruntime keeps the weights (the bulk of
   * nearly every model file) once per session, plus arenas that depend on the inputs; the file size is known
   * before the load, costs one stat, and does not depend on what else this process is doing (RSS growth would).
   */
  private async estimatedBytes(modelPath: string, instances: number): Promise<number> {
    try {
      return (await stat(modelPath)).size * instances;
    } catch {
      // The load itself reports a missing file, with a better message.
      return 0;
    }
  }

  /**
   * Makes sure a load of `threads` more onnxruntime threads and `bytes` more estimated session memory stays within
   * GANTRY_MAX_THREADS_PER_WORKER and GANTRY_WORKER_SESSION_MEMORY_BYTES: it unloads idle models (no run, nothing
   * queued), least recently used first, and refuses the load (503, retry later) when the models still holding
   * the room are all busy. A load larger than a whole budget is refused for good, naming the variable.
   * Past the thread budget onnxruntime would fail to start threads (spawn EAGAIN, a 500 for everyone), and past
   * the memory the host has the kernel would end the worker, not just this load.
   */
  private makeRoom(threads: number, bytes: number): void {
    const maxThreads = this.options.maxThreads ?? Number.POSITIVE_INFINITY;
    const maxBytes = this.options.maxSessionBytes ?? Number.POSITIVE_INFINITY;
    if (threads > maxThreads) {
      this.options.onThreadBudgetRefused?.();
      throw errors.threadBudget(threads, maxThreads);
    }
    if (bytes > maxBytes) {
      this.options.onMemoryBudgetRefused?.();
      throw sessionMemoryErrors.tooLarge(bytes, maxBytes);
    }
    // Sessions of the same blob under older settings count too: they live until the new ones replace them.
    let usedThreads = 0;
    let usedBytes = 0;
    for (const model of this.cache.values()) {
      usedThreads += model.threads;
      usedBytes += model.memoryBytes;
    }
    for (const reservation of this.reserved.values()) {
      usedThreads += reservation.threads;
      usedBytes += reservation.bytes;
    }
    const fits = () => usedThreads + threads <= maxThreads && usedBytes + bytes <= maxBytes;
    if (fits()) return;
    for (const [key, model] of [...this.cache.rentries()] as Array<[string, CachedModel]>) {
      if (fits()) break;
      if (!model.instances.idle || model.batcher.queuedCount > 0) continue;
      const reason: EvictionReason = usedBytes + bytes > maxBytes ? 'memory' : 'threads';
      this.logger.info(
        { sha256: model.sha256, threads: model.threads, memoryBytes: model.memoryBytes, reason },
        reason === 'memory'
          ? 'unloading an idle model to stay within GANTRY_WORKER_SESSION_MEMORY_BYTES'
          : 'unloading an idle model to stay within GANTRY_MAX_THREADS_PER_WORKER',
      );
      this.options.onEviction?.(reason);
      // Idle threads end within milliseconds of the terminate, so their share counts as free at once.
      this.cache.delete(key);
      usedThreads -= model.threads;
      usedBytes -= model.memoryBytes;
    }
    if (fits()) return;
    if (usedThreads + threads > maxThreads) {
      this.options.onThreadBudgetRefused?.();
      throw errors.serverBusy(
        `loading this model needs ${threads} onnxruntime threads, and the models busy on this worker hold ${usedThreads} of the ${maxThreads} allowed`,
        'GANTRY_MAX_THREADS_PER_WORKER',
      );
    }
    this.options.onMemoryBudgetRefused?.();
    throw errors.serverBusy(
      `loading this model needs about ${bytes} bytes of session memory, and the models busy on this worker hold ${usedBytes} of the ${maxBytes} allowed`,
      'GANTRY_WORKER_SESSION_MEMORY_BYTES',
    );
  }

  /**
   * Decides where to load from. With the optimized-model cache on (CPU only: CUDA graphs are device-specific),
   * the first load writes onnxruntime's optimized graph beside the cache, and later loads read that graph with
   * optimization off, which skips the optimizer's work.
   */
  private async plan(sha256: string, settings: ExecutionSettings, blobPath: string) {
    const sessionSettings: SessionSettings = {
      executionProviders: this.options.executionProviders,
      graphOptimizationLevel: settings.graphOptimizationLevel,
      allowSpinning: settings.allowSpinning,
      // Automatic (0): the instance's share of the cores, measured down to one for a light model (thread-choice.ts);
      // inter-op one, since the sessions run in sequential mode and start no inter-op pool.
      ...(settings.intraOpThreads > 0
        ? { intraOpThreads: settings.intraOpThreads }
        : { intraOpThreads: intraOpShare(settings.instances, this.availableParallelism), autoIntraOpThreads: true }),
      interOpThreads: settings.interOpThreads > 0 ? settings.interOpThreads : 1,
    };
    const cpuOnly = this.options.executionProviders.every((provider) => provider === 'cpu');
    if (!settings.optimizedModelCache || !cpuOnly || settings.graphOptimizationLevel === 'disabled') {
      return { modelPath: blobPath, sessionSettings, optimizedTarget: undefined };
    }
    const optimizedPath = path.join(this.options.cacheDirectory, `${sha256}-${settings.graphOptimizationLevel}.onnx`);
    if (await fileExists(optimizedPath)) {
      return { modelPath: optimizedPath, sessionSettings: { ...sessionSettings, graphOptimizationLevel: 'disabled' as const }, optimizedTarget: undefined };
    }
    await mkdir(this.options.cacheDirectory, { recursive: true });
    // Written under a private name and renamed, so a concurrent worker never reads half a file.
    const partial = `${optimizedPath}.${process.pid}.partial`;
    return {
      modelPath: blobPath,
      sessionSettings: { ...sessionSettings, optimizedModelPath: partial },
      optimizedTarget: { partial, final: optimizedPath },
    };
  }

  private async keepOptimized(target: { partial: string; final: string }): Promise<void> {
    try {
      await rename(target.partial, target.final);
    } catch (error) {
      this.logger.debug({ err: error }, 'optimized model not cached');
      await rm(target.partial, { force: true });
    }
  }

  /** Whether a loaded session or a load in progress uses the blob (the blob cache keeps its copy then). */
  usesBlob(sha256: string): boolean {
    const prefix = `${sha256}:`;
    for (const key of this.cache.keys()) if (key.startsWith(prefix)) return true;
    for (const key of this.loading.keys()) if (key.startsWith(prefix)) return true;
    return false;
  }

  /**
   * Drops every loaded session of a blob (the model was unloaded or deleted), stopping its runs. Its bytes are hashed
   * again at the next load: unloading and loading a model is how an operator has them checked again.
   */
  evict(sha256: string): void {
    this.blobs.forgetVerification(sha256);
    this.unloading = true;
    try {
      for (const key of [...this.cache.keys()]) if (key.startsWith(`${sha256}:`)) this.cache.delete(key);
    } finally {
      this.unloading = false;
    }
  }

  /** Fails the queued requests of models whose instances were given up (the worker is about to restart). */
  rejectQueuedOfUnhealthy(error: GantryError): void {
    for (const model of this.cache.values()) if (!model.instances.healthy) model.batcher.rejectQueued(error);
  }

  /** Unloads everything (shutdown); a thread that cannot be ended is left to the process's end (worker-exit.ts). */
  async close(): Promise<void> {
    await Promise.allSettled([...this.loading.values()]);
    this.unloading = true;
    try {
      this.cache.clear();
    } finally {
      this.unloading = false;
    }
    await Promise.allSettled([...this.releases]);
  }
}
