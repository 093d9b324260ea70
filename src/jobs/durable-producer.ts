import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import type { InferenceSubmission, ModelTarget } from '../queue/inference-submission.js';
import type { DurableDestination } from '../queue/job-contracts.js';
import { encodeInferenceJob } from '../queue/job-encoding.js';
import { writeLargeValue, inlineValueLimitBytes } from '../queue/large-values.js';
import { WorkDoorbell } from '../queue/work-doorbell.js';
import { asyncInferenceQueueName, payloadKey } from '../redis-keys.js';

/** One request of a durable queue job: the id its answer is written under, and what runs. */
export interface DurableRequest {
  /** An asynchronous job's id, or a batch line's number (job-contracts.ts `durable`). */
  correlationId: string;
  submission: Omit<InferenceSubmission, 'signal'>;
}

/**
 * BullMQ keeps a finished durable queue job a little while only (its answers live in the job or batch store);
 * failed ones an hour, like synchronous jobs.
 */
const durableJobRetention = { removeOnComplete: { age: 3600, count: 10_000 }, removeOnFail: { age: 3600, count: 1000 } } as const;

/**
 * A durable queue job whose processor failed (Redis went away between two of its steps) is tried again after a
 * pause instead of failing for good: nobody waits on a connection to retry it. Its answers are written once
 * whatever the number of tries, and a job started more than GANTRY_MAX_JOB_ATTEMPTS times is answered with an
 * error (inference-processor.ts), so it ends `failed` rather than staying queued.
 */
const durableJobRetries = { attempts: 4, backoff: { type: 'exponential', delay: 1000 } } as const;

/**
 * Queues asynchronous work (jobs, batch chunks) on its model's asynchronous queue (asyncInferenceQueueName): the
 * same job contract as synchronous requests, with a durable destination instead of a reply channel, so the same
 * workers run it with the same batcher, in slots of its own (GANTRY_ASYNC_WORKER_CONCURRENCY). Nothing waits in this process: once `enqueue` resolves, the work survives the death of every process
 * (Redis persisting). The payload lives until the work's deadline; the job id is the caller's, so queueing the
 * same work twice (a retried submission) leaves one job.
 * A worker started long after the doorbell rang still finds the queue: it looks for queues holding jobs when
 * it starts (worker/queued-work-scan.ts).
 */
export class DurableProducer {
  private readonly queues = new Map<string, Queue>();
  private readonly doorbell: WorkDoorbell;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly logger: Logger,
  ) {
    this.doorbell = new WorkDoorbell(redis, prefix, logger, undefined, 'async');
  }

  private queueFor(model: string): Queue {
    const name = asyncInferenceQueueName(model);
    let queue = this.queues.get(name);
    if (queue === undefined) {
      queue = new Queue(name, { connection: this.redis, prefix: this.prefix });
      queue.on('error', (error) => this.logger.warn({ queue: name, err: error.message }, 'queue error'));
      this.queues.set(name, queue);
    }
    return queue;
  }

  /**
   * Queues one job carrying `requests` (all for `target`, at `priority`), under `jobId` (unique: a batch chunk's or
   * an asynchronous job's id). Resolves once the job is in Redis.
   */
  async enqueue(target: ModelTarget, priority: number, requests: readonly DurableRequest[], destination: DurableDestination, jobId: string): Promise<void> {
    const { job, parts, payloadBytes } = encodeInferenceJob(target, priority, requests, '');
    job.durable = destination;
    if (payloadBytes <= inlineValueLimitBytes) {
      job.payload = Buffer.concat(parts, payloadBytes).toString('base64');
    } else {
      const key = payloadKey(this.prefix, target.model, jobId);
      // Kept past the deadline by a margin: a worker that took the job just before it keeps its inputs.
      await writeLargeValue(this.redis, key, parts, Math.max(1000, job.deadline - Date.now() + 60_000));
      job.payloadKey = key;
    }
    await this.queueFor(target.model).add('infer', job, { ...durableJobRetention, ...durableJobRetries, priority, jobId });
    this.doorbell.ring(target.model);
  }

  /** Takes a job back before a worker does (a cancelled asynchronous job); false when it is running or gone. */
  async remove(model: string, jobId: string): Promise<boolean> {
    try {
      return (await this.queueFor(model).remove(jobId)) === 1;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.queues.values()].map((queue) => queue.close()));
    this.queues.clear();
  }
}
