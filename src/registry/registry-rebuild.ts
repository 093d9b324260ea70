import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import type { ExecutionSettings } from '../queue/job-contracts.js';
import { executionConfigOf, type ModelConfigStore } from './model-config.js';
import { type ModelRegistry, type RestoredVersion } from './model-registry.js';
import type { RegistryRecords } from './registry-records.js';
import { RedisLock } from './redis-lock.js';
import { deploymentMarkerKey, registryRebuildLockKey } from '../redis-keys.js';

/** Lease of the rebuild lock: far longer than rebuilding thousands of versions takes. */
const rebuildLockLeaseMs = 120_000;

export interface RebuildDependencies {
  redis: Redis;
  prefix: string;
  registry: ModelRegistry;
  records: RegistryRecords;
  store: { exists(sha256: string): Promise<boolean> };
  /** The deployment id the store holds: it becomes Redis's marker again. */
  deploymentId: string;
}

export interface RebuildOutcome {
  /**
   * 'rebuilt': versions were put back; 'intact': Redis held this deployment's marker when the lock was taken (another
   * process rebuilt it meanwhile) and `fillIn` was not asked; 'busy': another process is rebuilding it now.
   */
  status: 'rebuilt' | 'intact' | 'busy';
  restored: RestoredVersion[];
}

/**
 * Rebuilds the registry in Redis from the store's records, one process at a time (a Redis lock). With `fillIn`
 * (`gantry repair`), a registry whose marker is intact still gets back any version it lacks.
 */
export async function rebuildRegistry(dependencies: RebuildDependencies, options: { fillIn?: boolean } = {}): Promise<RebuildOutcome> {
  const { redis, prefix, registry, records, store, deploymentId } = dependencies;
  const lock = await RedisLock.tryAcquire(redis, registryRebuildLockKey(prefix), rebuildLockLeaseMs);
  if (lock === undefined) return { status: 'busy', restored: [] };
  try {
    if (options.fillIn !== true && (await redis.get(deploymentMarkerKey(prefix))) === deploymentId) return { status: 'intact', restored: [] };
    const models = await records.readAll();
    const missingBlobs = new Set<string>();
    for (const model of models) {
      for (const version of model.versions) if (!(await store.exists(version.sha256))) missingBlobs.add(version.sha256);
    }
    return { status: 'rebuilt', restored: await registry.restore(models, deploymentId, missingBlobs) };
  } finally {
    await lock.release();
  }
}

export interface LoadTarget {
  model: string;
  version: string;
  sha256: string;
  settings: ExecutionSettings;
}

export type LoadOutcome = { version: RestoredVersion; outcome: 'ready' } | { version: RestoredVersion; outcome: 'failed'; reason: string };

/**
 * Has the workers load each restored LOADING version (READY only once a worker loaded and warmed it up, as for an
 * upload), with its model's configuration. Resolves when every load answered or gave up (`requestLoad`'s timeout).
 */
export async function loadRestoredVersions(
  restored: RestoredVersion[],
  dependencies: { modelConfigs: ModelConfigStore; requestLoad: (target: LoadTarget) => Promise<unknown>; logger: Logger },
): Promise<LoadOutcome[]> {
  const loading = restored.filter((version) => version.state === 'LOADING');
  return Promise.all(
    loading.map(async (version): Promise<LoadOutcome> => {
      const context = { model: version.name, version: version.version };
      try {
        const settings = executionConfigOf(await dependencies.modelConfigs.get(version.name));
        await dependencies.requestLoad({ model: version.name, version: version.version, sha256: version.sha256, settings });
        dependencies.logger.info(context, 'restored model version loaded');
        return { version, outcome: 'ready' };
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        dependencies.logger.warn({ ...context, reason }, 'restored model version did not load');
        return { version, outcome: 'failed', reason };
      }
    }),
  );
}
