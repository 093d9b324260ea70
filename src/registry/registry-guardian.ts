import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import { type ModelRegistry, type RestoredVersion } from './model-registry.js';
import { rebuildRegistry, type RebuildDependencies } from './registry-rebuild.js';
import type { RegistryRecords } from './registry-records.js';
import { RoutingRecorder } from './routing-records.js';
import { deploymentMarkerKey } from '../redis-keys.js';

/**
 * Where the registry in Redis stands, as this API process last saw it:
 * - `unchecked`: not compared with the store yet (start-up, or Redis unreachable since);
 * - `intact`: Redis holds the store's deployment id;
 * - `lost`: the store has an id and Redis none: Redis lost its data; the registry is being rebuilt;
 * - `restoring`: rebuilt; the restored versions are loading;
 * - `foreign`: Redis holds another deployment's id (another store, or another Gantry on this Redis and prefix);
 * - `rebuild-failed`: the automatic rebuild threw; it is tried again at each check.
 */
export type RegistryCondition =
  | { kind: 'unchecked' }
  | { kind: 'intact' }
  | { kind: 'lost' }
  | { kind: 'restoring'; loading: number }
  | { kind: 'foreign'; redisDeploymentId: string }
  | { kind: 'rebuild-failed' };

export interface RegistryGuardianOptions {
  redis: Redis;
  prefix: string;
  registry: ModelRegistry;
  records: RegistryRecords;
  store: RebuildDependencies['store'] & { describeLocation(): string };
  logger: Logger;
  /** GANTRY_REGISTRY_CHECK_INTERVAL_MS. */
  checkIntervalMs: number;
  /** Loads the restored versions; resolves when all have answered or given up. */
  loadRestored: (restored: RestoredVersion[]) => Promise<unknown>;
  /** Metrics: an incident began (once per incident); versions were restored; whether the registry is unusable. */
  onLoss?: () => void;
  onRestored?: (count: number) => void;
  onUnusableChange?: (unusable: boolean) => void;
}

/** After a rebuild another process holds, how soon to look again (it usually takes milliseconds). */
const busyRetryMs = 500;

/**
 * Tells a Redis that lost its data from a new deployment, and repairs the first (issue 11). The deployment id is
 * kept twice: under a Redis key and in the model store. Both absent: a new deployment, given an id. The store
 * without one: this store is new beside an existing Redis registry, which it adopts (and records). Redis without
 * one: Redis lost its data: an error is logged once, readiness says why, and the registry is rebuilt from the
 * store (one API at a time) with the same version numbers, then loaded. Checked at start-up, every
 * `checkIntervalMs`, and each time the Redis connection becomes ready again.
 */
export class RegistryGuardian {
  private condition: RegistryCondition = { kind: 'unchecked' };
  private storeDeploymentId: string | undefined;
  private checking: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly onReady = () => void this.check();

  constructor(private readonly options: RegistryGuardianOptions) {}

  /** Checks once (start-up), then keeps checking. */
  async start(): Promise<void> {
    this.options.redis.on('ready', this.onReady);
    await this.check();
    this.timer = setInterval(() => void this.check(), this.options.checkIntervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.options.redis.off('ready', this.onReady);
    await this.checking;
  }

  get current(): RegistryCondition {
    return this.condition;
  }

  /** The id under which versions may be created now; undefined while the registry in Redis is not this store's. */
  deploymentId(): string | undefined {
    return this.condition.kind === 'intact' || this.condition.kind === 'restoring' ? this.storeDeploymentId : undefined;
  }

  /** True while references in Redis can be trusted (the garbage collection runs only then). */
  isTrusted(): boolean {
    return this.condition.kind === 'intact';
  }

  /** Why the registry keeps this process from being ready, or undefined when it does not. */
  unreadyReason(): string | undefined {
    const location = this.options.store.describeLocation();
    switch (this.condition.kind) {
      case 'intact':
        return undefined;
      case 'unchecked':
        return 'The model registry has not been checked against the model store yet.';
      case 'lost':
        return `The model registry in Redis is lost (Redis has no deployment marker: it restarted without persistence or was wiped) and is being rebuilt from the model store at ${location}; if this lasts, run \`gantry repair\`.`;
      case 'restoring':
        return `The model registry was rebuilt from the model store after Redis lost its data; ${this.condition.loading} restored version(s) are still loading.`;
      case 'foreign':
        return `Redis holds another deployment's registry (deployment ${this.condition.redisDeploymentId}; the model store at ${location} belongs to ${this.storeDeploymentId}). Point REDIS_URL and GANTRY_QUEUE_PREFIX at this deployment's Redis, or run \`gantry repair\` to rebuild this Redis's registry from the store.`;
      case 'rebuild-failed':
        return `The model registry in Redis is lost and rebuilding it from the model store at ${location} failed (see the log); it is retried every few seconds, or run \`gantry repair\`.`;
    }
  }

  /** Compares Redis with the store once (joins a check in progress). */
  check(): Promise<void> {
    this.checking ??= this.compare()
      .catch((error: unknown) => {
        // Redis went away mid-check: the next check (on reconnect) decides.
        this.options.logger.debug({ err: error }, 'registry check did not finish');
      })
      .finally(() => {
        this.checking = undefined;
      });
    return this.checking;
  }

  private setCondition(next: RegistryCondition): void {
    const wasUnusable = this.condition.kind !== 'intact' && this.condition.kind !== 'unchecked';
    this.condition = next;
    const unusable = next.kind !== 'intact' && next.kind !== 'unchecked';
    if (wasUnusable !== unusable) this.options.onUnusableChange?.(unusable);
  }

  private async compare(): Promise<void> {
    const { redis, prefix, records, logger } = this.options;
    if (redis.status !== 'ready') return;
    this.storeDeploymentId ??= await records.readDeploymentId();
    const redisDeploymentId = await redis.get(deploymentMarkerKey(prefix));
    if (this.storeDeploymentId === undefined) {
      await this.createOrAdopt(redisDeploymentId);
      return;
    }
    if (redisDeploymentId === this.storeDeploymentId) {
      if (this.condition.kind === 'restoring') return;
      if (this.condition.kind !== 'intact' && this.condition.kind !== 'unchecked')
        logger.warn({ deployment: this.storeDeploymentId }, "the model registry in Redis is this deployment's again");
      this.setCondition({ kind: 'intact' });
      return;
    }
    if (redisDeploymentId !== null) {
      if (this.condition.kind !== 'foreign') {
        this.options.onLoss?.();
        logger.error(
          { deployment: this.storeDeploymentId, redisDeployment: redisDeploymentId, prefix },
          "Redis holds another deployment's model registry under this prefix; not ready until REDIS_URL/GANTRY_QUEUE_PREFIX point at this deployment's Redis, or `gantry repair` rebuilds it from this store",
        );
      }
      this.setCondition({ kind: 'foreign', redisDeploymentId });
      return;
    }
    await this.repairLoss();
  }

  /** Redis has no marker beside a store that has one: Redis lost its data. */
  private async repairLoss(): Promise<void> {
    const { logger } = this.options;
    const deploymentId = this.storeDeploymentId!;
    if (this.condition.kind !== 'lost' && this.condition.kind !== 'rebuild-failed') {
      this.options.onLoss?.();
      logger.error(
        { deployment: deploymentId, store: this.options.store.describeLocation() },
        'the model registry in Redis is lost (no deployment marker: Redis restarted without persistence or was wiped); rebuilding it from the model store. Give Redis persistence (appendonly yes) so this does not recur',
      );
    }
    this.setCondition({ kind: 'lost' });
    let outcome;
    try {
      outcome = await rebuildRegistry({ ...this.options, deploymentId });
    } catch (error) {
      logger.error(
        { err: error, deployment: deploymentId },
        'rebuilding the model registry from the model store failed; retrying at the next check (or run `gantry repair`)',
      );
      this.setCondition({ kind: 'rebuild-failed' });
      return;
    }
    if (outcome.status === 'busy') {
      // Another API process is rebuilding: look again soon, and stay unready meanwhile.
      setTimeout(() => void this.check(), busyRetryMs).unref();
      return;
    }
    if (outcome.status === 'intact') {
      this.setCondition({ kind: 'intact' });
      return;
    }
    this.options.onRestored?.(outcome.restored.length);
    logger.error(
      {
        deployment: deploymentId,
        restored: outcome.restored.length,
        versions: outcome.restored.map((version) => `${version.name}/${version.version}`).slice(0, 50),
      },
      'model registry rebuilt from the model store after Redis lost its data; loading the restored versions',
    );
    const loading = outcome.restored.filter((version) => version.state === 'LOADING').length;
    this.setCondition({ kind: 'restoring', loading });
    // Loads are bounded by the load timeout; the check timer keeps running meanwhile (a second loss is seen).
    void Promise.resolve(this.options.loadRestored(outcome.restored))
      .catch(() => undefined)
      .finally(() => {
        if (this.condition.kind === 'restoring') this.setCondition({ kind: 'intact' });
        logger.info({ deployment: deploymentId }, 'restored model versions have loaded (or given up); ready');
        void this.check();
      });
  }

  /**
   * The store has no deployment id. Redis has one (an existing registry this store is new to: an upgrade, or a
   * new data volume), or none either (a new deployment). Redis's marker is set first: a crash before the store's
   * is written leaves the harmless case (adoption), never a false alarm of a lost registry.
   */
  private async createOrAdopt(redisDeploymentId: string | null): Promise<void> {
    const { redis, prefix, records, registry, logger } = this.options;
    let deploymentId = redisDeploymentId;
    if (deploymentId === null) {
      await redis.set(deploymentMarkerKey(prefix), randomUUID(), 'NX');
      deploymentId = await redis.get(deploymentMarkerKey(prefix));
      if (deploymentId === null) return;
    }
    // Versions created before this store kept records (or in another store) get records now.
    let recorded = 0;
    const routing = new RoutingRecorder(redis, prefix, records);
    for (const name of await registry.listModelNames()) {
      const highest = await records.highestVersion(name);
      for (const version of await registry.listVersions(name)) {
        if (Number(version.version) <= highest) continue;
        await records.writeVersion({ name, version: version.version, sha256: version.sha256, size: version.size, createdAt: version.createdAt });
        if (version.signature !== undefined) await records.writeSignature(name, version.version, version.signature);
        if (version.warmupSample !== undefined) await records.writeWarmupSample(name, version.version, version.warmupSample);
        recorded++;
      }
      // Its aliases and traffic policy too (the recorder reads them from Redis; none leaves no record).
      await routing.record(name);
    }
    this.storeDeploymentId = await records.claimDeploymentId(deploymentId);
    logger.info(
      { deployment: this.storeDeploymentId, adopted: redisDeploymentId !== null, recorded },
      redisDeploymentId === null ? 'new deployment: marker recorded in Redis and the model store' : 'existing registry in Redis adopted by this model store',
    );
    await this.compare();
  }
}
