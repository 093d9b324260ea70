import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { errors } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ModelSignature } from '../protocol/signature.js';
import { ModelLifecycle } from '../registry/model-lifecycle.js';
import type { ModelTarget } from './inference-submission.js';
import { encodeLoadJob, jobRetention } from './job-encoding.js';
import { controlQueueName } from '../redis-keys.js';
import type { ReplyListener } from './reply-listener.js';

/** Asks workers to load model versions, over the control queue every worker consumes. */
export class ModelLoader {
  private controlQueue: Queue | undefined;
  private readonly lifecycle: ModelLifecycle;

  constructor(
    private readonly redis: Redis,
    private readonly replies: ReplyListener,
    private readonly prefix: string,
    private readonly logger: Logger,
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
      await this.queue().add('load', { ...encodeLoadJob(target, wait.correlationId, this.replies.channel), loadGeneration }, jobRetention);
    } catch {
      wait.cancel(errors.queueUnavailable('Redis did not accept the load request'));
    }
    return signature;
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
