import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { errors } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ModelSignature } from '../protocol/signature.js';
import type { ModelTarget } from './inference-submission.js';
import { encodeLoadJob, jobRetention } from './job-encoding.js';
import { controlQueueName } from '../redis-keys.js';
import type { ReplyListener } from './reply-listener.js';

/** Asks workers to load model versions, over the control queue every worker consumes. */
export class ModelLoader {
  private controlQueue: Queue | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly replies: ReplyListener,
    private readonly prefix: string,
    private readonly logger: Logger,
  ) {}

  /** Asks any worker to load a version; resolves with the signature the worker read from the model. */
  async requestLoad(target: ModelTarget, timeoutMs: number): Promise<ModelSignature> {
    const wait = this.replies.expectLoad();
    const timer = setTimeout(() => wait.cancel(errors.deadlineExceeded(timeoutMs)), timeoutMs);
    const signature = wait.reply.finally(() => clearTimeout(timer));
    // The deadline may pass while the job is still being added: the rejection is the caller's, not unhandled.
    signature.catch(() => undefined);
    try {
      await this.queue().add('load', encodeLoadJob(target, wait.correlationId, this.replies.channel), jobRetention);
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
