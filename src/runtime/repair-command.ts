import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { redisEndpointSettings } from '../queue/redis-connection.js';
import { describeRedisEndpoint } from '../queue/redis-endpoint.js';
import { commandRedisUrl, connectCommandRedis } from './command-redis.js';
import { ModelRegistry } from '../registry/model-registry.js';
import { createModelStore } from '../registry/model-store-factory.js';
import { rebuildRegistry } from '../registry/registry-rebuild.js';
import { busyWaitMs, describeRestoredVersion, loadRestoredAndReport, rebuildWhenFree } from './restored-loads.js';
import { deploymentMarkerKey } from '../redis-keys.js';

/**
 * `gantry repair`: rebuilds the model registry in Redis (REDIS_URL, GANTRY_QUEUE_PREFIX) from the records kept
 * beside the blobs in the model store (GANTRY_DATA_DIR), with the same version numbers, then has the workers
 * load the restored versions and waits (at most GANTRY_LOAD_TIMEOUT_MS) to say how each went. A registry whose
 * marker is intact still gets back any version it lacks; one holding another deployment's marker is taken over.
 * Prints what it did on stdout. Returns the process exit code: 0 restored (or nothing to restore), 1 otherwise.
 */
export async function runRepairCommand(
  config: Config,
  logger: Logger,
  print: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
): Promise<number> {
  const redisUrl = await commandRedisUrl(config);
  const where = describeRedisEndpoint(redisUrl);
  const prefix = config.GANTRY_QUEUE_PREFIX;
  const redis = await connectCommandRedis(redisUrl, 'repair', redisEndpointSettings(config));
  if (redis === undefined) {
    print(
      `No Redis answers at ${where}${config.REDIS_URL === undefined ? ' (REDIS_URL is not set)' : ''}. Start the Redis this deployment uses, or set REDIS_URL to it, and run \`gantry repair\` again. ` +
        'With `gantry start` and its private redis-server (no REDIS_URL), run it while Gantry runs, with the same GANTRY_DATA_DIR; or just start Gantry: the API finds a lost registry and rebuilds it by itself.',
    );
    return 1;
  }
  try {
    const store = await createModelStore(config);
    const records = store.registryRecords(prefix);
    const deploymentId = await records.readDeploymentId();
    if (deploymentId === undefined) {
      print(
        `The model store at ${store.describeLocation()} has no registry records for prefix '${prefix}': there is nothing to restore. Check GANTRY_DATA_DIR and GANTRY_QUEUE_PREFIX name this deployment's.`,
      );
      return 1;
    }
    const redisDeploymentId = await redis.get(deploymentMarkerKey(prefix));
    print(`Model store: ${store.describeLocation()} (deployment ${deploymentId}); Redis: ${where}, prefix '${prefix}'.`);
    if (redisDeploymentId === null) print('Redis has no deployment marker: its registry was lost. Rebuilding it from the model store.');
    else if (redisDeploymentId !== deploymentId)
      print(`Redis holds another deployment's marker (${redisDeploymentId}); replacing it with this store's and restoring this store's versions.`);
    else print('The registry in Redis is intact; restoring any version it lacks.');

    const registry = new ModelRegistry(redis, prefix);
    const outcome = await rebuildWhenFree(() => rebuildRegistry({ redis, prefix, registry, records, store, deploymentId }, { fillIn: true }));
    if (outcome.status === 'busy') {
      print(
        `Another process (an API) has been rebuilding the registry for ${busyWaitMs / 1000} s; check GET /v2/health/ready, or run \`gantry repair\` again.`,
      );
      return 1;
    }
    if (outcome.restored.length === 0) {
      print('Nothing to restore: Redis has every version the store records.');
      return 0;
    }
    print(`Restored ${outcome.restored.length} version(s):`);
    for (const version of outcome.restored)
      print(`  ${describeRestoredVersion(version)}  ${version.state}${version.state === 'UNAVAILABLE' ? ' (its model file is missing from the store)' : ''}`);
    logger.info({ restored: outcome.restored.length, deployment: deploymentId }, 'gantry repair restored the registry');
    await loadRestoredAndReport(outcome.restored, { redis, redisUrl }, config, logger, print, 'repair');
    return 0;
  } finally {
    redis.disconnect();
  }
}
