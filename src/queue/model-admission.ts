import { ErrorCode, errors, type GantryError } from '../errors.js';

/**
 * What one queued request costs beyond its input bytes, in the queued-bytes count: the job's JSON, BullMQ's hash
 * and list entries and the reply waiter come to roughly this. It makes the bytes cap bound tiny requests too.
 */
export const queuedRequestOverheadBytes = 1024;

/** The limits a request is admitted under, and who hears of refusals. */
export interface AdmissionOptions {
  /** Input bytes (plus queuedRequestOverheadBytes a request) kept waiting or running per model; default unbounded. */
  maxQueuedBytesPerModel?: number;
  /** Told each time a request is refused at a limit, with the limit's label ('queue_size', 'queued_bytes', …). */
  onLimitRejection?: (limit: string) => void;
}

/** What an admitted request holds against its model until it is released (once). */
export interface Admission {
  readonly model: string;
  /** What the request counts against its model's queued-bytes cap. */
  readonly queuedBytes: number;
}

/**
 * Per-model admission of inference requests in one API process: how many requests and queued bytes each model
 * has accepted and not yet answered (waiting, queued or running), and the refusals past its caps (429 at once,
 * so what was accepted stays fast and the client retries after Retry-After). Bounded by what is outstanding: a
 * model's entry goes when its count is back to 0.
 */
export class ModelAdmission {
  private readonly outstanding = new Map<string, { requests: number; bytes: number }>();
  private readonly idleListeners = new Map<string, () => void>();

  constructor(private readonly options: AdmissionOptions) {}

  /**
   * Counts one request of `payloadBytes` input bytes against its model, or throws the 429 of the cap it is past:
   * `maxQueueSize` requests (the model's setting; 0 or undefined is unbounded) or GANTRY_MAX_QUEUED_BYTES_PER_MODEL.
   */
  admit(model: string, payloadBytes: number, maxQueueSize: number | undefined): Admission {
    const outstanding = this.outstanding.get(model) ?? { requests: 0, bytes: 0 };
    if (maxQueueSize !== undefined && maxQueueSize > 0 && outstanding.requests >= maxQueueSize) {
      this.options.onLimitRejection?.('queue_size');
      throw errors.queueFull(model, maxQueueSize);
    }
    const queuedBytes = payloadBytes + queuedRequestOverheadBytes;
    const maxQueuedBytes = this.options.maxQueuedBytesPerModel;
    // A model with nothing outstanding takes any one request (the request limit already bounds it), so a cap
    // below one large request never makes a model unusable.
    if (maxQueuedBytes !== undefined && outstanding.requests > 0 && outstanding.bytes + queuedBytes > maxQueuedBytes) {
      this.options.onLimitRejection?.('queued_bytes');
      throw errors.queuedBytesFull(model, maxQueuedBytes);
    }
    // Counted in place: one object per model, not one per request.
    if (outstanding.requests === 0) this.outstanding.set(model, outstanding);
    outstanding.requests++;
    outstanding.bytes += queuedBytes;
    return { model, queuedBytes };
  }

  /** Gives back what a settled request counted against its model (call once per admission). */
  release(admission: Admission): void {
    const outstanding = this.outstanding.get(admission.model);
    if (outstanding === undefined) return;
    outstanding.requests--;
    outstanding.bytes -= admission.queuedBytes;
    if (outstanding.requests > 0) return;
    this.outstanding.delete(admission.model);
    const listener = this.idleListeners.get(admission.model);
    this.idleListeners.delete(admission.model);
    listener?.();
  }

  /** Whether the model has requests outstanding in this process. */
  isBusy(model: string): boolean {
    return this.outstanding.has(model);
  }

  /** Runs `listener` once when the model's last outstanding request is released (at once when it has none). */
  whenIdle(model: string, listener: () => void): void {
    if (!this.outstanding.has(model)) listener();
    else this.idleListeners.set(model, listener);
  }

  /** Models with requests outstanding (for the bounded-state checks). */
  get size(): number {
    return this.outstanding.size;
  }

  /**
   * Counts a request the worker (or the reply listener) refused for its output size, under the limit's label
   * (the message names the limit). Other errors are not limit rejections.
   */
  noteOutcome(error: GantryError): void {
    if (error.code !== ErrorCode.OutputTooLarge) return;
    this.options.onLimitRejection?.(error.message.includes('GANTRY_MAX_JSON_OUTPUT_ELEMENTS') ? 'json_output' : 'output_bytes');
  }
}
