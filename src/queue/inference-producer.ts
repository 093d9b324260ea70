import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { GantryError, errors } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ModelSignature } from '../protocol/signature.js';
import { CoalescingLanes, type LaneRequest } from './coalescing-lanes.js';
import type { InferenceSubmission, ModelTarget } from './inference-submission.js';
import { maxPayloadBytesPerJob } from './job-contracts.js';
import { encodeInferenceJob, jobRetention } from './job-encoding.js';
import { jobOrdering } from './job-ordering.js';
import { standardDefaultPriority } from '../protocol/schedule-parameters.js';
import { placeValue } from './large-values.js';
import { ModelAdmission, type Admission } from './model-admission.js';
import { ModelLoader, type LoadRouting } from './model-loader.js';
import { LiveWorkers } from '../workers-view/live-workers.js';
import { inferenceQueueName, payloadKey } from '../redis-keys.js';
import type { InferenceOutcome, ReplyListener } from './reply-listener.js';
import { WorkDoorbell } from './work-doorbell.js';

/**
 * How long background work (shadow copies) gathers before it leaves in one job: nobody waits on it, and a job per
 * copy would double the queue's work per request (measured with bench/shadow-overhead.ts).
 */
const backgroundGatherMs = 50;

export type { InferenceSubmission, ModelTarget, OutputLimits } from './inference-submission.js';
export type { InferenceOutcome } from './reply-listener.js';
export { queuedRequestOverheadBytes } from './model-admission.js';

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
  /**
   * The live workers and the models they serve: loads go where a worker serving the model takes them
   * (model-loader.ts). The API passes the view its other parts share; without one (`gantry repair`, tests) the
   * producer reads its own.
   */
  liveWorkers?: LoadRouting['liveWorkers'];
}

/** One accepted request, from submit until it settles (answered, failed, timed out or cancelled). */
interface PendingRequest extends LaneRequest {
  readonly submission: InferenceSubmission;
  readonly admission: Admission;
  readonly payloadBytes: number;
  settled: boolean;
  /** What the caller awaits. */
  readonly outcome: Promise<InferenceOutcome>;
  readonly resolve: (outcome: InferenceOutcome) => void;
  readonly reject: (error: GantryError) => void;
  timer?: NodeJS.Timeout;
  /** Stops waiting for the reply (set once the request is in a job). */
  cancelReply?: (reason: GantryError) => void;
  /** The job carrying this request, once queued, so a cancellation can remove it. */
  sentIn?: SentJob;
}

interface SentJob {
  queue: Queue;
  jobId?: string;
  requests: PendingRequest[];
}

/**
 * Turns inference requests into BullMQ jobs on their model's queue. Each concern has its own owner:
 * admission and its caps (model-admission.ts), packing requests into jobs (coalescing-lanes.ts), the job
 * contract (job-encoding.ts), inline-or-key payloads (large-values.ts), correlation with replies
 * (reply-listener.ts) and loads (model-loader.ts). What stays here is a request's life: its deadline, its
 * cancellation, and sending its job.
 */
export class InferenceProducer {
  // Bounded by what is in flight: a model's Queue goes when the model is deleted (dropModel); lanes and
  // admission counts go by themselves when empty. Nothing grows with names or priorities merely seen.
  private readonly queues = new Map<string, Queue>();
  private readonly admission: ModelAdmission;
  private readonly lanes: CoalescingLanes<ModelTarget, PendingRequest>;
  private readonly loader: ModelLoader;
  /** Tells workers which model queues have work: they consume only those (queue/work-doorbell.ts). */
  private readonly doorbell: WorkDoorbell;

  constructor(
    private readonly redis: Redis,
    private readonly replies: ReplyListener,
    private readonly options: ProducerOptions,
    private readonly logger: Logger,
  ) {
    this.doorbell = new WorkDoorbell(redis, options.prefix, logger);
    this.admission = new ModelAdmission({
      ...(options.maxQueuedBytesPerModel === undefined ? {} : { maxQueuedBytesPerModel: options.maxQueuedBytesPerModel }),
      ...(options.onLimitRejection === undefined ? {} : { onLimitRejection: options.onLimitRejection }),
    });
    this.lanes = new CoalescingLanes(
      {
        maxRequestsPerJob: options.maxRequestsPerJob,
        maxJobsInFlight: options.maxJobsInFlight,
        maxPayloadBytesPerJob: options.maxPayloadBytesPerJob ?? maxPayloadBytesPerJob,
      },
      (target, priority, batch) => this.sendJob(target, priority, batch),
    );
    const routing: LoadRouting = {
      liveWorkers: options.liveWorkers ?? new LiveWorkers(redis, options.prefix, logger),
      modelQueue: (model) => this.queueFor(model),
      doorbell: this.doorbell,
    };
    this.loader = new ModelLoader(redis, replies, options.prefix, logger, routing);
  }

  private queueFor(model: string): Queue {
    const name = inferenceQueueName(model);
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
    return { lanes: this.lanes.size, outstanding: this.admission.size, queues: this.queues.size };
  }

  /**
   * Forgets a deleted model: its Queue is closed now, or once its last outstanding request settles (a job being
   * sent still needs it). Lanes and counts go by themselves when empty.
   */
  dropModel(model: string): void {
    this.doorbell.forget(model);
    this.admission.whenIdle(model, () => this.closeQueue(model));
  }

  private closeQueue(model: string): void {
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
    let payloadBytes = 0;
    for (const input of submission.inputs) payloadBytes += input.data.byteLength;
    let admission: Admission;
    try {
      admission = this.admission.admit(target.model, payloadBytes, submission.maxQueueSize);
    } catch (error) {
      return Promise.reject(error as GantryError);
    }
    const pending = newPendingRequest(submission, admission, payloadBytes);
    pending.timer = setTimeout(() => this.settle(pending, errors.deadlineExceeded(submission.timeoutMs)), Math.max(0, submission.deadline - Date.now()));
    submission.signal?.addEventListener('abort', () => this.cancel(pending), { once: true });
    // Requests of different versions, priorities or (after a config change) settings never share a job, and
    // background work never shares one with requests someone waits on.
    const lane = `${target.model}\u0000${target.version}\u0000${submission.priority}${submission.background === true ? '\u0000background' : ''}`;
    this.lanes.add(lane, target, submission.priority, pending, submission.background === true ? backgroundGatherMs : 0);
    return pending.outcome;
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

  /** Ends a request once: its admission is released, its reply no longer awaited, its caller answered. */
  private settle(pending: PendingRequest, outcome: InferenceOutcome | GantryError): void {
    if (pending.settled) return;
    pending.settled = true;
    clearTimeout(pending.timer);
    this.admission.release(pending.admission);
    if (outcome instanceof GantryError) {
      pending.cancelReply?.(outcome);
      this.admission.noteOutcome(outcome);
      pending.reject(outcome);
    } else {
      pending.resolve(outcome);
    }
  }

  /** Sends one job and resolves when every request in it has settled (answered, failed or timed out). */
  private async sendJob(target: ModelTarget, priority: number, batch: PendingRequest[]): Promise<void> {
    const requests = batch.map((pending) => {
      const limits = pending.submission.outputLimits;
      const wait = this.replies.expectInference(limits === undefined ? {} : { maxOutputBytes: limits.maxOutputBytes });
      pending.cancelReply = wait.cancel;
      wait.reply.then(
        (outcome) => this.settle(pending, outcome),
        (error: GantryError) => this.settle(pending, error),
      );
      return { correlationId: wait.correlationId, submission: pending.submission };
    });
    const { job, parts, payloadBytes } = encodeInferenceJob(target, priority, requests, this.replies.channel);
    try {
      const queue = this.queueFor(target.model);
      const sent: SentJob = { queue, requests: batch };
      for (const pending of batch) pending.sentIn = sent;
      // A large payload's key is named after its job, so the job's id is chosen here; BullMQ numbers the others.
      const jobId = this.replies.ids.jobIdFor(requests[0]!.correlationId);
      // Requests of a job share their priority; a default changed meanwhile only moves this one job.
      const ordering = jobOrdering(priority, batch[0]!.submission.defaultPriority ?? standardDefaultPriority);
      const key = await placeValue(this.redis, parts, payloadBytes, () => payloadKey(this.options.prefix, target.model, jobId), job.deadline);
      if (key === undefined) {
        job.payload = Buffer.concat(parts, payloadBytes).toString('base64');
        sent.jobId = (await queue.add('infer', job, { ...jobRetention, ...ordering })).id;
      } else {
        job.payloadKey = key;
        sent.jobId = (await queue.add('infer', job, { ...jobRetention, ...ordering, jobId })).id;
      }
      this.doorbell.ring(target.model);
      // Cancelled while the job was being sent: take it back now that its id is known.
      if (batch.every((pending) => pending.settled)) await queue.remove(sent.jobId!).catch(() => undefined);
    } catch (error) {
      this.logger.warn({ model: target.model, err: (error as Error).message }, 'could not queue inference');
      const failure = error instanceof GantryError ? error : errors.queueUnavailable('Redis did not accept the job');
      for (const pending of batch) this.settle(pending, failure);
    }
    await Promise.allSettled(batch.map((pending) => pending.outcome));
  }

  /** Asks any worker to load a version; resolves with the signature the worker read from the model. */
  requestLoad(target: ModelTarget, timeoutMs: number): Promise<ModelSignature> {
    return this.loader.requestLoad(target, timeoutMs);
  }

  async close(): Promise<void> {
    await Promise.allSettled([...[...this.queues.values()].map((queue) => queue.close()), this.loader.close()]);
  }
}

function newPendingRequest(submission: InferenceSubmission, admission: Admission, payloadBytes: number): PendingRequest {
  let resolve!: (outcome: InferenceOutcome) => void;
  let reject!: (error: GantryError) => void;
  const outcome = new Promise<InferenceOutcome>((resolveOutcome, rejectOutcome) => {
    resolve = resolveOutcome;
    reject = rejectOutcome;
  });
  return { submission, admission, payloadBytes, settled: false, outcome, resolve, reject };
}
