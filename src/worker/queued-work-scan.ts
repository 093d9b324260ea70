import type { Redis } from 'ioredis';
import { inferenceQueueKey, type WorkKind } from '../redis-keys.js';
import type { ModelRegistry } from '../registry/model-registry.js';
import { patternsMatch } from '../workers-view/model-patterns.js';

/** Models asked about per pipelined round trip. */
const modelsPerRoundTrip = 500;

/**
 * The models this worker serves that have jobs waiting in their queues now, read once when it starts. The work
 * doorbell only tells of work announced in the last GANTRY_MODEL_QUEUE_IDLE_MS; a job older than that can still be
 * waiting when no running worker served its model (a worker pool that was not started yet: a load stays queued
 * until one comes), or asynchronous work queued while no worker ran. Three commands per matching model and queue
 * kind (BullMQ's wait list, prioritized set and active list: a job a dead worker left active), pipelined.
 */
export async function modelsWithQueuedWork(
  redis: Redis,
  prefix: string,
  registry: ModelRegistry,
  patterns: readonly string[],
  kind: WorkKind = 'sync',
): Promise<Set<string>> {
  const served = (await registry.listModelNames()).filter((model) => patternsMatch(patterns, model));
  const withWork = new Set<string>();
  for (let start = 0; start < served.length; start += modelsPerRoundTrip) {
    const models = served.slice(start, start + modelsPerRoundTrip);
    const pipeline = redis.pipeline();
    for (const model of models) {
      pipeline.llen(inferenceQueueKey(prefix, model, 'wait', kind));
      pipeline.zcard(inferenceQueueKey(prefix, model, 'prioritized', kind));
      // A job left active by a worker that died is taken back only by a consumer of its queue (stalled check).
      pipeline.llen(inferenceQueueKey(prefix, model, 'active', kind));
    }
    const replies = (await pipeline.exec()) ?? [];
    models.forEach((model, index) => {
      const waiting = [0, 1, 2].reduce((sum, offset) => sum + Number(replies[3 * index + offset]?.[1] ?? 0), 0);
      if (waiting > 0) withWork.add(model);
    });
  }
  return withWork;
}
