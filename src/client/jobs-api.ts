import { randomUUID } from 'node:crypto';
import { GantryError } from './gantry-error.js';
import type { HttpTransport } from './http-transport.js';
import { queryString } from './http-transport.js';
import { decodeInferResponse, type InferResult } from './infer-codec.js';
import { buildInferRequest, type InferOptions } from './infer-request.js';
import { finalJobStates, type Callback, type Job, type JobState } from './job-types.js';
import { modelPath, segment } from './models-api.js';
import type { TensorInput } from './tensor-types.js';

export interface JobCreateOptions extends Omit<InferOptions, 'timeoutMs'> {
  callback?: Callback | undefined;
  /** Seconds the result is kept once finished (default GANTRY_JOB_RETENTION_S). */
  retention?: number | undefined;
  /**
   * The Idempotency-Key of the creation. The client makes one when none is given, so a creation retried after a
   * lost connection makes one job, not two.
   */
  idempotencyKey?: string | undefined;
}

interface Signal {
  signal?: AbortSignal | undefined;
}

/** Sleeps `milliseconds` unless the signal aborts first (then rejects with its reason). */
function pause(milliseconds: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) return reject(signal.reason as Error);
    const timer = setTimeout(resolve, milliseconds);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason as Error);
      },
      { once: true },
    );
  });
}

/** `client.jobs`: asynchronous inference (docs/jobs.md). */
export class JobsApi {
  constructor(private readonly http: HttpTransport) {}

  /**
   * Queues an asynchronous inference with the same inputs as infer(); answers at once with the job (queued).
   * Retried on 429/503 and lost connections: the Idempotency-Key makes every attempt the same job.
   */
  async create(model: string, inputs: Record<string, TensorInput>, options: JobCreateOptions = {}): Promise<Job> {
    const fields: Record<string, unknown> = {};
    if (options.callback !== undefined) fields.callback = options.callback;
    if (options.retention !== undefined) fields.retention = options.retention;
    const request = buildInferRequest(inputs, options, fields);
    return this.http.json({
      method: 'POST',
      path: `${modelPath('/v1/models', model, options.version)}/jobs`,
      headers: { ...options.headers, ...request.headers, 'idempotency-key': options.idempotencyKey ?? randomUUID() },
      body: { make: () => ({ body: request.body }), replayable: true },
      idempotent: true,
      signal: options.signal,
    });
  }

  get(jobId: string, options: Signal = {}): Promise<Job> {
    return this.http.json({ method: 'GET', path: `/v1/jobs/${segment(jobId)}`, idempotent: true, signal: options.signal });
  }

  /**
   * A finished job's answer, decoded as infer() decodes it.
   * @throws GantryError 409 while the job is queued or running (and for a cancelled one); a failed job's own error.
   */
  async result(jobId: string, options: Signal = {}): Promise<InferResult> {
    const response = await this.http.call({ method: 'GET', path: `/v1/jobs/${segment(jobId)}/result`, idempotent: true, signal: options.signal });
    const body = new Uint8Array(await response.arrayBuffer());
    return decodeInferResponse(body, response.headers.get('inference-header-content-length'), response.headers.get('x-request-id') ?? undefined);
  }

  /** Cancels a job: a queued one never runs; a running one finishes, its answer discarded. */
  cancel(jobId: string, options: Signal = {}): Promise<Job> {
    return this.http.json({ method: 'DELETE', path: `/v1/jobs/${segment(jobId)}`, idempotent: true, signal: options.signal });
  }

  /** The caller's jobs, newest first; `nextCursor` fetches the next page. */
  list(query: { state?: JobState; model?: string; limit?: number; cursor?: string } & Signal = {}): Promise<{ jobs: Job[]; nextCursor?: string }> {
    const { signal, ...filters } = query;
    return this.http.json({ method: 'GET', path: `/v1/jobs${queryString(filters)}`, idempotent: true, signal });
  }

  /**
   * Polls a job until it is finished (succeeded, failed, cancelled or expired).
   * @param options.pollMs between looks, default 200; options.timeoutMs most to wait, default none.
   * @throws GantryError(DEADLINE_EXCEEDED, status 0) when timeoutMs passes first.
   */
  async wait(jobId: string, options: Signal & { pollMs?: number; timeoutMs?: number; onState?: (job: Job) => void } = {}): Promise<Job> {
    const deadline = options.timeoutMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + options.timeoutMs;
    for (;;) {
      const job = await this.get(jobId, options);
      options.onState?.(job);
      if (finalJobStates.has(job.state)) return job;
      if (Date.now() >= deadline) {
        throw new GantryError(`Job ${jobId} is still ${job.state} after ${options.timeoutMs} ms.`, { status: 0, code: 'DEADLINE_EXCEEDED' });
      }
      await pause(Math.min(options.pollMs ?? 200, Math.max(1, deadline - Date.now())), options.signal).catch((reason: unknown) => {
        throw new GantryError(`Waiting for job ${jobId} was aborted by the caller.`, { status: 0, code: 'CANCELLED', cause: reason });
      });
    }
  }
}
