import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { ErrorCode, GantryError, errors } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ModelSignature } from '../protocol/signature.js';
import type { Tensor } from '../protocol/tensor.js';
import { jobSchemaVersion, maxPayloadBytesPerJob, type ExecutionSettings, type InferenceJob, type LoadJob, type QueuedRequest } from './job-contracts.js';
import { writeLargeValue } from './large-values.js';
import { controlQueueName, inferenceQueueName, payloadKey } from './names.js';
import { WorkDoorbell } from './work-doorbell.js';
import type { InferenceOutcome, ReplyListener } from './reply-listener.js';

/** Payloads up to this size ride inside the job (base64); larger ones get their own Redis key. */
const inlinePayloadLimitBytes = 64 * 1024;

/**
 * What one queued request costs beyond its input bytes, in the queued-bytes count: the job's JSON, BullMQ's hash
 * and list entries and the reply waiter come to roughly this. It makes the bytes cap bound tiny requests too.
 */
export const queuedRequestOverheadBytes = 1024;

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
  /** What the worker may send back for this request; it answers OUTPUT_TOO_LARGE past these. */
  outputLimits?: OutputLimits;
}

/** A request's output limits, carried in its job (job-contracts.ts) and checked by the worker. */
export interface OutputLimits {
  /** Most output tensor bytes (GANTRY_MAX_RESPONSE_BYTES). */
  maxOutputBytes: number;
  /** Most elements over the outputs answered as JSON (GANTRY_MAX_JSON_OUTPUT_ELEMENTS). */
  maxJsonOutputElements: number;
  /** The outputs answered as JSON numbers: not binary_data, not classified. */
  jsonOutputs: string[];
}

export interface ProducerOptions {
  prefix: string;
  /** Most requests one job may carry. */
  maxRequestsPerJob: number;
  /** Jobs one API process keeps in flight per model version before it starts packing requests together. */
  maxJobsInFlight: number;
  /** Input bytes (plus queuedRequestOverheadBytes a request) kept waiting or running per model; default unbounded. */
  maxQueuedBytesPerModel?: number;
  /** Most input bytes packed into one job (a lone larger request still goes); default maxPayloadBytesPerJob. */
  maxPayloadBytesPerJob?: number;
  /** Told each time a request is refused at a limit, with the limit's label ('queue_size', 'queued_bytes', …). */
  onLimitRejection?: (limit: string) => void;
}

interface PendingRequest {
  model: string;
  /** What this request counts against its model's queued-bytes cap. */
  queuedBytes: number;
  /** Its input bytes, for packing jobs under the payload cap. */
  payloadBytes: number;
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
  key: string;
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
  // Every map here is bounded by what is in flight: lanes go when empty, a model's entry in `outstanding` when
  // its count is back to 0, its Queue when the model is deleted (dropModel). Nothing grows with names or
  // priorities merely seen.
  private readonly queues = new Map<string, Queue>();
  private readonly lanes = new Map<string, Lane>();
  /** Requests and queued bytes per model accepted by this process and not yet answered (waiting, queued or running). */
  private readonly outstanding = new Map<string, { requests: number; bytes: number }>();
  /** Deleted models whose Queue is closed once their last outstanding request settles. */
  private readonly closeWhenIdle = new Set<string>();
  private controlQueue: Queue | undefined;
  /** Tells workers which model queues have work: they consume only those (queue/work-doorbell.ts). */
  private readonly doorbell: WorkDoorbell;

  constructor(
    private readonly redis: Redis,
    private readonly replies: ReplyListener,
    private readonly options: ProducerOptions,
    private readonly logger: Logger,
  ) {
    this.doorbell = new WorkDoorbell(redis, options.prefix, logger);
  }

  private queueFor(name: string): Queue {
    let queue = this.queues.get(name);
    if (queue === undefined) {
      queue = new Queue(name, { connection: this.redis, prefix: this.options.prefix });
      queue.on('error', (error) => this.logger.warn({ queue: name, err: error.message }, 'queue error'));
      this.queues.set(name, queue);
    }
    return queue;
  }

  /** Sizes of the per-model and per-lane maps, for tests and debugging: each must stay bounded. */
  get trackedSizes(): { lanes: number; outstanding: number; queues: number } {
    return { lanes: this.lanes.size, outstanding: this.outstanding.size, queues: this.queues.size };
  }

  /**
   * Forgets a deleted model: its Queue is closed now, or once its last outstanding request settles (a job being
   * sent still needs it). Lanes and counts go by themselves when empty.
   */
  dropModel(model: string): void {
    this.doorbell.forget(model);
    if (this.outstanding.has(model)) this.closeWhenIdle.add(model);
    else this.closeQueue(model);
  }

  private closeQueue(model: string): void {
    this.closeWhenIdle.delete(model);
    const name = inferenceQueueName(model);
    const queue = this.queues.get(name);
    if (queue === undefined) return;
    this.queues.delete(name);
    queue.close().catch(() => undefined);
  }

  /**
   * Queues one inference and resolves with its outputs, or rejects with a GantryError: 429 at once past the
   * model's maxQueueSize or GANTRY_MAX_QUEUED_BYTES_PER_MODEL (both per API process).
   */
  submit(target: ModelTarget, submission: InferenceSubmission): Promise<InferenceOutcome> {
    // Without Redis nothing can be queued, and a request held back behind a job in flight (whose reply cannot
    // come either) would wait for its deadline: refuse at once, so the client retries after Retry-After.
    if (this.redis.status !== 'ready') return Promise.reject(errors.queueUnavailable('Redis is not connected'));
    const outstanding = this.outstanding.get(target.model) ?? { requests: 0, bytes: 0 };
    if (submission.maxQueueSize !== undefined && submission.maxQueueSize > 0 && outstanding.requests >= submission.maxQueueSize) {
      // Shedding at once keeps what was accepted fast; the client retries after Retry-After.
      this.options.onLimitRejection?.('queue_size');
      return Promise.reject(errors.queueFull(target.model, submission.maxQueueSize));
    }
    let payloadBytes = 0;
    for (const input of submission.inputs) payloadBytes += input.data.byteLength;
    const queuedBytes = payloadBytes + queuedRequestOverheadBytes;
    const maxQueuedBytes = this.options.maxQueuedBytesPerModel;
    // A model with nothing outstanding takes any one request (the request limit already bounds it), so a cap
    // below one large request never makes a model unusable.
    if (maxQueuedBytes !== undefined && outstanding.requests > 0 && outstanding.bytes + queuedBytes > maxQueuedBytes) {
      this.options.onLimitRejection?.('queued_bytes');
      return Promise.reject(errors.queuedBytesFull(target.model, maxQueuedBytes));
    }
    // Counted in place: one object per model, not one per request.
    if (outstanding.requests === 0) this.outstanding.set(target.model, outstanding);
    outstanding.requests++;
    outstanding.bytes += queuedBytes;
    // Requests of different versions, priorities or (after a config change) settings never share a job.
    const laneKey = `${target.model}\u0000${target.version}\u0000${submission.priority}`;
    let lane = this.lanes.get(laneKey);
    if (lane === undefined) {
      lane = { key: laneKey, target, priority: submission.priority, inFlight: 0, waiting: [] };
      this.lanes.set(laneKey, lane);
    }
    lane.target = target;
    const chosenLane = lane;
    return new Promise<InferenceOutcome>((resolve, reject) => {
      const pending: PendingRequest = { submission, resolve, reject, settled: false, model: target.model, queuedBytes, payloadBytes };
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
    this.release(pending);
    if (pending.correlationId !== undefined) this.replies.forget(pending.correlationId);
    if (outcome instanceof GantryError && outcome.code === ErrorCode.OutputTooLarge) {
      // The worker (or the reply listener) refused the output; the message says which limit.
      this.options.onLimitRejection?.(outcome.message.includes('GANTRY_MAX_JSON_OUTPUT_ELEMENTS') ? 'json_output' : 'output_bytes');
    }
    if (outcome instanceof GantryError) pending.reject(outcome);
    else pending.resolve(outcome);
  }

  /** Gives back what a settled request counted against its model; the entry goes at zero. */
  private release(pending: PendingRequest): void {
    const outstanding = this.outstanding.get(pending.model);
    if (outstanding === undefined) return;
    outstanding.requests--;
    outstanding.bytes -= pending.queuedBytes;
    if (outstanding.requests > 0) return;
    this.outstanding.delete(pending.model);
    if (this.closeWhenIdle.has(pending.model)) this.closeQueue(pending.model);
  }

  /**
   * Sends waiting requests when it pays: at once when nothing of this lane is in flight (a lone request is never
   * delayed), otherwise only once a quarter of a job's worth is waiting, so busy lanes send few, full jobs
   * instead of alternating full jobs with lone requests.
   */
  private pump(lane: Lane): void {
    const enough = Math.max(1, Math.ceil(this.options.maxRequestsPerJob / 4));
    const maxPayloadBytes = this.options.maxPayloadBytesPerJob ?? maxPayloadBytesPerJob;
    // Requests that settled while waiting (timed out, client gone) leave at once: they hold nothing any more.
    lane.waiting = lane.waiting.filter((pending) => !pending.settled);
    while (
      lane.waiting.length > 0 &&
      (lane.inFlight === 0 || (lane.inFlight < this.options.maxJobsInFlight && (lane.waiting.length >= enough || waitingBytes(lane) >= maxPayloadBytes / 4)))
    ) {
      const batch = takeJob(lane.waiting, this.options.maxRequestsPerJob, maxPayloadBytes);
      lane.inFlight++;
      void this.sendJob(lane.target, lane.priority, batch).finally(() => {
        lane.inFlight--;
        this.pump(lane);
      });
    }
    // An empty lane is forgotten, so a caller trying every priority leaves nothing behind.
    if (lane.waiting.length === 0 && lane.inFlight === 0 && this.lanes.get(lane.key) === lane) this.lanes.delete(lane.key);
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
        ...(pending.submission.outputLimits === undefined ? {} : { maxOutputBytes: pending.submission.outputLimits.maxOutputBytes }),
      });
      const limits = pending.submission.outputLimits;
      requests.push({
        correlationId,
        inputs: pending.submission.inputs.map((input) => ({ name: input.name, datatype: input.datatype, shape: input.shape, byteLength: input.data.byteLength })),
        outputs: pending.submission.outputs,
        ...(limits === undefined
          ? {}
          : { maxOutputBytes: limits.maxOutputBytes, maxJsonOutputElements: limits.maxJsonOutputElements, jsonOutputs: limits.jsonOutputs }),
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
      this.doorbell.ring(target.model);
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

function waitingBytes(lane: Lane): number {
  let bytes = 0;
  for (const pending of lane.waiting) bytes += pending.payloadBytes;
  return bytes;
}

/**
 * Takes the next job's requests from the front of `waiting`: at most `maxRequests`, and only while their input
 * bytes stay within `maxPayloadBytes` — but always at least one, so a large request still goes (alone).
 */
function takeJob(waiting: PendingRequest[], maxRequests: number, maxPayloadBytes: number): PendingRequest[] {
  let count = 0;
  let bytes = 0;
  while (count < waiting.length && count < maxRequests) {
    const next = waiting[count]!.payloadBytes;
    if (count > 0 && bytes + next > maxPayloadBytes) break;
    bytes += next;
    count++;
  }
  return waiting.splice(0, count);
}
