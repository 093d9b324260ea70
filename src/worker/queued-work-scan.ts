import type { Redis } from 'ioredis';
import { inferenceQueueKey } from '../redis-keys.js';
import type { ModelRegistry } from '../registry/model-registry.js';
import { patternsMatch } from '../workers-view/model-patterns.js';

/** Models asked about per pipelined round trip. */
const modelsPerRoundTrip = 500;

/**
 * The models this worker serves that have jobs waiting in their queues now, read once when it starts. The work
 * doorbell only tells of work announced in the last GANTRY_MODEL_QUEUE_IDLE_MS; a job older than that can still be
 * waiting when no running worker served its model (a worker pool that was not started yet: a load stays queued
 * until one comes). Two commands per matching model (BullMQ's wait list and prioritized set), pipelined.
 */
export async function modelsWithQueuedWork(redis: Redis, prefix: string, registry: ModelRegistry, patterns: readonly string[]): Promise<Set<string>> {
  const served = (await registry.listModelNames()).filter((model) => patternsMatch(patterns, model));
  const withWork = new Set<string>();
  for (let start = 0; start < served.length; start += modelsPerRoundTrip) {
    const models = served.slice(start, start + modelsPerRoundTrip);
    const pipeline = redis.pipeline();
    for (const model of models) {
      pipeline.llen(inferenceQueueKey(prefix, model, 'wait'));
      pipeline.zcard(inferenceQueueKey(prefix, model, 'prioritized'));
    }
    const replies = (await pipeline.exec()) ?? [];
    models.forEach((model, index) => {
      const waiting = Number(replies[2 * index]?.[1] ?? 0) + Number(replies[2 * index + 1]?.[1] ?? 0);
      if (waiting > 0) withWork.add(model);
    });
  }
  return withWork;
}
