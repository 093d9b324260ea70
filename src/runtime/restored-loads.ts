import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { InferenceProducer } from '../queue/inference-producer.js';
import { createRedis, redisEndpointSettings, type Redis } from '../queue/redis-connection.js';
import { ReplyListener } from '../queue/reply-listener.js';
import { ModelConfigStore } from '../registry/model-config.js';
import type { RestoredVersion } from '../registry/model-registry.js';
import { loadRestoredVersions, type RebuildOutcome } from '../registry/registry-rebuild.js';

/** How long `gantry repair` and `gantry import` wait for an API process that is rebuilding the registry itself. */
export const busyWaitMs = 30_000;

/**
 * How `gantry repair` and `gantry import` end: rebuild while no other process holds the rebuild lock, then have the
 * workers load what came back and say how each load went.
 */
export async function rebuildWhenFree(rebuild: () => Promise<RebuildOutcome>): Promise<RebuildOutcome> {
  const deadline = Date.now() + busyWaitMs;
  for (;;) {
    const outcome = await rebuild();
    if (outcome.status !== 'busy' || Date.now() > deadline) return outcome;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

export function describeRestoredVersion(version: RestoredVersion): string {
  return `${version.name} v${version.version} (sha256 ${version.sha256.slice(0, 12)}…)`;
}

/**
 * Queues a load of each LOADING version and prints how each went (a version not loaded in time stays queued).
 * @param command names the reply subscriber's connection (`repair`, `import`).
 */
export async function loadRestoredAndReport(
  restored: RestoredVersion[],
  connection: { redis: Redis; redisUrl: string },
  config: Config,
  logger: Logger,
  print: (line: string) => void,
  command: string,
): Promise<void> {
  const loading = restored.filter((version) => version.state === 'LOADING');
  if (loading.length === 0) return;
  const subscriber = createRedis(connection.redisUrl, 'consumer', `${command}-subscriber`, redisEndpointSettings(config));
  subscriber.on('error', () => undefined);
  const replies = new ReplyListener(subscriber, connection.redis, config.GANTRY_QUEUE_PREFIX, logger);
  const producer = new InferenceProducer(connection.redis, replies, { prefix: config.GANTRY_QUEUE_PREFIX, maxRequestsPerJob: 1, maxJobsInFlight: 1 }, logger);
  try {
    await replies.start();
    print(
      `Asked the workers to load ${loading.length} version(s); waiting up to ${Math.round(config.GANTRY_LOAD_TIMEOUT_MS / 1000)} s (GANTRY_LOAD_TIMEOUT_MS)…`,
    );
    const outcomes = await loadRestoredVersions(loading, {
      modelConfigs: new ModelConfigStore(connection.redis, config.GANTRY_QUEUE_PREFIX),
      logger,
      requestLoad: (target) => producer.requestLoad(target, config.GANTRY_LOAD_TIMEOUT_MS),
    });
    for (const outcome of outcomes) {
      if (outcome.outcome === 'ready') print(`  ${describeRestoredVersion(outcome.version)}  READY`);
      else print(`  ${describeRestoredVersion(outcome.version)}  not loaded: ${outcome.reason} (a load request stays queued when no worker answered in time)`);
    }
  } finally {
    await producer.close();
    subscriber.disconnect();
  }
}
