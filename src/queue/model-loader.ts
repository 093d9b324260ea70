import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { ErrorCode, GantryError, errors } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ModelSignature } from '../protocol/signature.js';
import { ModelLifecycle } from '../registry/model-lifecycle.js';
import type { ModelTarget } from './inference-submission.js';
import { encodeLoadJob, jobRetention } from './job-encoding.js';
import { controlQueueName } from '../redis-keys.js';
import type { ReplyListener } from './reply-listener.js';
import type { WorkDoorbell } from './work-doorbell.js';
import type { LiveWorkers } from '../workers-view/live-workers.js';

/** The BullMQ name of a load job, on the shared load queue or on a model's own queue. */
export const loadJobName = 'load';

/** What routes loads to worker pools: the live-worker view, the model's own queue and the doorbell that wakes its workers. */
export interface LoadRouting {
  liveWorkers: Pick<LiveWorkers, 'snapshot' | 'serving'>;
  modelQueue: (model: string) => Queue;
  doorbell: Pick<WorkDoorbell, 'ring'>;
}

/**
 * Asks workers to load model versions. While a live worker serves every model (the default deployment), a load
 * goes on the shared load queue, which only such workers consume. Otherwise (worker pools, GANTRY_WORKER_MODELS,
 * or no worker running yet) it goes on the model's own queue, with a ring of the work doorbell: only workers that
 * serve the model consume that queue, so no other pool can take the load and record the version READY or
 * UNAVAILABLE for a model it does not serve; and the load waits there until one comes.
 */
export class ModelLoader {
  private controlQueue: Queue | undefined;
  private readonly lifecycle: ModelLifecycle;

  constructor(
    private readonly redis: Redis,
    private readonly replies: ReplyListener,
    private readonly prefix: string,
    private readonly logger: Logger,
    /** Without it (tests, tools) every load goes on the shared load queue. */
    private readonly routing?: LoadRouting,
  ) {
    this.lifecycle = new ModelLifecycle(redis, prefix);
  }

  /**
   * Asks any worker to load a version; resolves with the signature the worker read from the model. The job carries
   * the version's load generation (model-lifecycle.ts): the one the caller started the load with
   * (`loadGeneration`, from ModelLifecycle.beginLoad), else the version's current one, read before the job is queued.
   * The current one is safe for a new upload (its first generation) and for any caller: the worker's outcome also
   * needs the version to be LOADING, so a generation read after an unload or a fault is refused anyway.
   * @throws NOT_FOUND (404) when the version no longer exists.
   */
  async requestLoad(target: ModelTarget & { loadGeneration?: number }, timeoutMs: number): Promise<ModelSignature> {
    const loadGeneration = target.loadGeneration ?? (await this.lifecycle.currentGeneration(target.model, target.version));
    if (loadGeneration === undefined) throw errors.modelNotFound(target.model, target.version);
    const wait = this.replies.expectLoad();
    const timer = setTimeout(() => wait.cancel(errors.deadlineExceeded(timeoutMs)), timeoutMs);
    const signature = wait.reply.finally(() => clearTimeout(timer));
    // The deadline may pass while the job is still being added: the rejection is the caller's, not unhandled.
    signature.catch(() => undefined);
    try {
      const job = { ...encodeLoadJob(target, wait.correlationId, this.replies.channel), loadGeneration };
      const route = await this.route(target.model);
      if (route.queue === 'shared') {
        await this.queue().add(loadJobName, job, jobRetention);
      } else {
        // At the front of the queue (job-ordering.ts): a load goes before the model's queued inference jobs.
        await this.routing!.modelQueue(target.model).add(loadJobName, job, { ...jobRetention, lifo: true });
        this.routing!.doorbell.ring(target.model);
        // Live workers, none serving the model: the load stays queued for a worker started later, and the caller
        // hears why now instead of after the whole load timeout (an upload answers 202 LOADING).
        if (route.unservedReason !== undefined) wait.cancel(unservedLoad(route.unservedReason));
      }
    } catch {
      wait.cancel(errors.queueUnavailable('Redis did not accept the load request'));
    }
    return signature;
  }

  /** Which queue a load of `model` goes on (see the class comment), and why no worker takes it when none serves it. */
  private async route(model: string): Promise<{ queue: 'shared' | 'model'; unservedReason?: string }> {
    if (this.routing === undefined) return { queue: 'shared' };
    const snapshot = await this.routing.liveWorkers.snapshot();
    if (snapshot?.anyServesAll === true) return { queue: 'shared' };
    const serving = await this.routing.liveWorkers.serving(model);
    return serving?.unservedReason === undefined ? { queue: 'model' } : { queue: 'model', unservedReason: serving.unservedReason };
  }

  private queue(): Queue {
    if (this.controlQueue === undefined) {
      this.controlQueue = new Queue(controlQueueName, { connection: this.redis, prefix: this.prefix });
      this.controlQueue.on('error', (error) => this.logger.warn({ queue: controlQueueName, err: error.message }, 'queue error'));
    }
    return this.controlQueue;
  }

  async close(): Promise<void> {
    await this.controlQueue?.close();
  }
}

/** A load no live worker can take: a deadline answer (an upload answers 202 LOADING), saying why and that it stays queued. */
function unservedLoad(reason: string): GantryError {
  return new GantryError(ErrorCode.DeadlineExceeded, `The load is queued but ${reason}.`);
}
