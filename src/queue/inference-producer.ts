import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { GantryError, errors } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ModelSignature } from '../protocol/signature.js';
import type { Tensor } from '../protocol/tensor.js';
import { jobSchemaVersion, type ExecutionSettings, type InferenceJob, type LoadJob, type QueuedRequest } from './job-contracts.js';
import { writeLargeValue } from './large-values.js';
import { controlQueueName, inferenceQueueName, payloadKey } from './names.js';
import type { InferenceOutcome, ReplyListener } from './reply-listener.js';

/** Payloads up to this size ride inside the job (base64); larger ones get their own Redis key. */
const inlinePayloadLimitBytes = 64 * 1024;

export interface ModelTarget {
  model: string;
  version: string;
  sha256: string;
  settings: ExecutionSettings;
}

export interface InferenceSubmission {
  inputs: Tensor[];
  outputs: string[];
  /** Absolute deadline, ms since the epoch. */
  deadline: number;
  /** The timeout the deadline came from, for the message a caller sees when it passes. */
  timeoutMs: number;
  /** BullMQ priority: 1 is the highest; lower-numbered jobs overtake queued higher-numbered ones. */
  priority: number;
  /** Aborted when the HTTP client goes away: a request not yet running is then dropped. */
  signal?: AbortSignal;
  /** Most requests of this model this API process keeps waiting or running; 0 is unbounded. */
  maxQueueSize?: number;
}

export interface ProducerOptions {
  prefix: string;
  /** Most requests one job may carry. */
  maxRequestsPerJob: number;
  /** Jobs one API process keeps in flight per model version before it starts packing requests together. */
  maxJobsInFlight: number;
}

interface PendingRequest {
  model: string;
  submission: InferenceSubmission;
  resolve: (outcome: InferenceOutcome) => void;
  reject: (error: GantryError) => void;
  settled: boolean;
  correlationId?: string;
  timer?: NodeJS.Timeout;
  /** The job carrying this request, once queued, so a cancellation can remove it. */
  sentIn?: SentJob;
}

interface SentJob {
  queue: Queue;
  jobId?: string;
  requests: PendingRequest[];
}

/** Requests for one model version and priority waiting to be packed into a job. */
interface Lane {
  target: ModelTarget;
  priority: number;
  inFlight: number;
  waiting: PendingRequest[];
}

/**
 * Turns inference requests into BullMQ jobs. When no job of a model version (and priority) is out, a request is
 * sent at once, alone, so a lone request is never delayed. While one is out, requests wait and leave together:
 * in a second job once a quarter of a job's worth is waiting (at most `maxJobsInFlight` jobs out), else in the
 * next job when one comes back. So the Redis cost per request falls as load rises; the price is that a request
 * arriving while a slow job is out waits for it, even when another worker is idle.
 */
export class InferenceProducer {
  private readonly queues = new Map<string, Queue>();
  private readonly lanes = new Map<string, Lane>();
  /** Requests per model accepted by this process and not yet answered (waiting, queued or running). */
  private readonly outstanding = new Map<string, number>();
  private controlQueue: Queue | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly replies: ReplyListener,
    private readonly options: ProducerOptions,
    private readonly logger: Logger,
  ) {}

  private queueFor(name: string): Queue {
    let queue = this.queues.get(name);
    if (queue === undefined) {
      queue = new Queue(name, { connection: this.redis, prefix: this.options.prefix });
      queue.on('error', (error) => this.logger.warn({ queue: name, err: error.message }, 'queue error'));
      this.queues.set(name, queue);
    }
    return queue;
  }

  /** Queues one inference and resolves with its outputs, or rejects with a GantryError. */
  submit(target: ModelTarget, submission: InferenceSubmission): Promise<InferenceOutcome> {
    // Without Redis nothing can be queued, and a request held back behind a job in flight (whose reply cannot
    // come either) would wait for its deadline: refuse at once, so the client retries after Retry-After.
    if (this.redis.status !== 'ready') return Promise.reject(errors.queueUnavailable('Redis is not connected'));
    // Requests of different versions, priorities or (after a config change) settings never share a job.
    const laneKey = `${target.model}\u0000${target.version}\u0000${submission.priority}`;
    let lane = this.lanes.get(laneKey);
    if (lane === undefined) {
      lane = { target, priority: submission.priority, inFlight: 0, waiting: [] };
      this.lanes.set(laneKey, lane);
    }
    lane.target = target;
    const chosenLane = lane;
    const outstanding = this.outstanding.get(target.model) ?? 0;
    if (submission.maxQueueSize !== undefined && submission.maxQueueSize > 0 && outstanding >= submission.maxQueueSize) {
      // Shedding at once keeps what was accepted fast; the client retries after Retry-After.
      return Promise.reject(errors.queueFull(target.model, submission.maxQueueSize));
    }
    this.outstanding.set(target.model, outstanding + 1);
    return new Promise<InferenceOutcome>((resolve, reject) => {
      const pending: PendingRequest = { submission, resolve, reject, settled: false, model: target.model };
      const timeoutMs = Math.max(0, submission.deadline - Date.now());
      pending.timer = setTimeout(() => this.settle(pending, errors.deadlineExceeded(submission.timeoutMs)), timeoutMs);
      submission.signal?.addEventListener('abort', () => this.cancel(pending), { once: true });
      chosenLane.waiting.push(pending);
      this.pump(chosenLane);
    });
  }

  /**
   * The client went away. A request still waiting in its lane is dropped; a queued job whose every request was
   * cancelled is removed from the queue before a worker takes it (a running one finishes; its reply is ignored).
   */
  private cancel(pending: PendingRequest): void {
    if (pending.settled) return;
    this.settle(pending, errors.cancelled());
    const job = pending.sentIn;
    if (job?.jobId === undefined || !job.requests.every((request) => request.settled)) return;
    job.queue.remove(job.jobId).catch(() => undefined);
  }

  private settle(pending: PendingRequest, outcome: InferenceOutcome | GantryError): void {
    if (pending.settled) return;
    pending.settled = true;
    clearTimeout(pending.timer);
    this.outstanding.set(pending.model, (this.outstanding.get(pending.model) ?? 1) - 1);
    if (pending.correlationId !== undefined) this.replies.forget(pending.correlationId);
    if (outcome instanceof GantryError) pending.reject(outcome);
    else pending.resolve(outcome);
  }

  /**
   * Sends waiting requests when it pays: at once when nothing of this lane is in flight (a lone request is never
   * delayed), otherwise only once a quarter of a job's worth is waiting, so busy lanes send few, full jobs
   * instead of alternating full jobs with lone requests.
   */
  private pump(lane: Lane): void {
    const enough = Math.max(1, Math.ceil(this.options.maxRequestsPerJob / 4));
    while (
      lane.waiting.length > 0 &&
      (lane.inFlight === 0 || (lane.inFlight < this.options.maxJobsInFlight && lane.waiting.length >= enough))
    ) {
      const batch = lane.waiting.splice(0, this.options.maxRequestsPerJob).filter((pending) => !pending.settled);
      if (batch.length === 0) continue;
      lane.inFlight++;
      void this.sendJob(lane.target, lane.priority, batch).finally(() => {
        lane.inFlight--;
        this.pump(lane);
      });
    }
  }

  /** Sends one job and resolves when every request in it has settled (answered, failed or timed out). */
  private async sendJob(target: ModelTarget, priority: number, batch: PendingRequest[]): Promise<void> {
    const settledAll = batch.map(
      (pending) =>
        new Promise<void>((done) => {
          const { resolve, reject } = pending;
          pending.resolve = (outcome) => {
            resolve(outcome);
            done();
          };
          pending.reject = (error) => {
            reject(error);
            done();
          };
        }),
    );
    const requests: QueuedRequest[] = [];
    const chunks: Uint8Array[] = [];
    let payloadBytes = 0;
    let deadline = 0;
    for (const pending of batch) {
      const correlationId = this.replies.newCorrelationId();
      pending.correlationId = correlationId;
      this.replies.waitForInference(correlationId, {
        resolve: (outcome) => this.settle(pending, outcome),
        reject: (error) => this.settle(pending, error),
      });
      requests.push({
        correlationId,
        inputs: pending.submission.inputs.map((input) => ({ name: input.name, datatype: input.datatype, shape: input.shape, byteLength: input.data.byteLength })),
        outputs: pending.submission.outputs,
      });
      for (const input of pending.submission.inputs) {
        chunks.push(input.data);
        payloadBytes += input.data.byteLength;
      }
      deadline = Math.max(deadline, pending.submission.deadline);
    }
    try {
      const job: InferenceJob = {
        schemaVersion: jobSchemaVersion,
        model: target.model,
        version: target.version,
        sha256: target.sha256,
        replyTo: this.replies.channel,
        deadline,
        enqueuedAt: Date.now(),
        requests,
        priority,
        settings: target.settings,
      };
      const queue = this.queueFor(inferenceQueueName(target.model));
      const sent: SentJob = { queue, requests: batch };
      for (const pending of batch) pending.sentIn = sent;
      const options = { priority, removeOnComplete: true, removeOnFail: { age: 3600, count: 1000 } };
      if (payloadBytes <= inlinePayloadLimitBytes) {
        job.payload = Buffer.concat(chunks, payloadBytes).toString('base64');
        sent.jobId = (await queue.add('infer', job, options)).id;
      } else {
        // The bytes go first, under a key that expires with the deadline, so a lost job leaves nothing behind.
        const jobId = `${this.replies.channel.slice(-36)}-${requests[0]!.correlationId}`;
        job.payloadKey = payloadKey(this.options.prefix, target.model, jobId);
        await writeLargeValue(this.redis, job.payloadKey, chunks, Math.max(1000, deadline - Date.now() + 5000));
        sent.jobId = (await queue.add('infer', job, { ...options, jobId })).id;
      }
      // Cancelled while the job was being sent: take it back now that its id is known.
      if (batch.every((pending) => pending.settled)) await queue.remove(sent.jobId!).catch(() => undefined);
    } catch (error) {
      this.logger.warn({ model: target.model, err: (error as Error).message }, 'could not queue inference');
      const failure = error instanceof GantryError ? error : errors.queueUnavailable('Redis did not accept the job');
      for (const pending of batch) this.settle(pending, failure);
    }
    await Promise.all(settledAll);
  }

  /** Asks any worker to load a version; resolves with the signature the worker read from the model. */
  async requestLoad(target: ModelTarget, timeoutMs: number): Promise<ModelSignature> {
    const correlationId = this.replies.newCorrelationId();
    const job: LoadJob = { schemaVersion: jobSchemaVersion, ...target, replyTo: this.replies.channel, correlationId };
    this.controlQueue ??= this.queueFor(controlQueueName);
    let timer: NodeJS.Timeout | undefined;
    const signature = new Promise<ModelSignature>((resolve, reject) => {
      timer = setTimeout(() => {
        this.replies.forget(correlationId);
        reject(errors.deadlineExceeded(timeoutMs));
      }, timeoutMs);
      this.replies.waitForLoad(correlationId, { resolve, reject });
    }).finally(() => clearTimeout(timer));
    try {
      await this.controlQueue.add('load', job, { removeOnComplete: true, removeOnFail: { age: 3600, count: 1000 } });
    } catch {
      clearTimeout(timer);
      this.replies.forget(correlationId);
      throw errors.queueUnavailable('Redis did not accept the load request');
    }
    return signature;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.queues.values()].map((queue) => queue.close()));
  }
}
