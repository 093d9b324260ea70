import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { GantryError } from '../errors.js';
import type { Logger } from '../logger.js';
import { inferenceJobSchema } from '../queue/job-contracts.js';
import { inferenceQueueName, payloadKeyPrefix } from '../redis-keys.js';
import { encodeReply } from '../queue/reply-codec.js';

/** Queued jobs answered per call: a model's queue holds at most maxQueueSize requests per API anyway. */
const maxShedJobs = 1000;

/**
 * Answers the jobs waiting in a model's queue with `error` and removes them, for when this worker cannot consume
 * the queue (its consumer got no Redis connection): the callers hear 503 now instead of waiting for their timeout.
 * Uses an already open connection. Nothing is shed while another worker consumes the queue. A job is answered only once it is removed, so a job another worker took
 * meanwhile is left to that worker. Returns the number of requests answered.
 */
export async function shedQueuedJobs(redis: Redis, prefix: string, model: string, error: GantryError, logger: Logger): Promise<number> {
  const queue = new Queue(inferenceQueueName(model), { connection: redis, prefix });
  queue.on('error', () => undefined);
  const wire = error.toWire();
  let answered = 0;
  try {
    // Another worker consuming this queue can still serve these callers: leave the jobs to it.
    if ((await queue.getWorkersCount()) > 0) return 0;
    for (const job of await queue.getJobs(['waiting', 'prioritized'], 0, maxShedJobs - 1)) {
      const parsed = inferenceJobSchema.safeParse(job.data);
      if (!parsed.success || job.id === undefined) continue; // the consumer that reads it answers it
      const removed = await job.remove().then(
        () => true,
        () => false,
      );
      if (!removed) continue;
      const data = parsed.data;
      if (data.payloadKey !== undefined && data.payloadKey.startsWith(payloadKeyPrefix(prefix, model))) await redis.del(data.payloadKey).catch(() => undefined);
      await redis.publish(data.replyTo, encodeReply({ kind: 'infer', results: data.requests.map(({ correlationId }) => ({ correlationId, error: wire })) }));
      answered += data.requests.length;
    }
  } catch (shedError) {
    logger.warn({ model, err: (shedError as Error).message }, 'could not answer the queued requests of a model this worker cannot consume');
  } finally {
    await queue.close().catch(() => undefined);
  }
  return answered;
}
