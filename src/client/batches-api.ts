import { GantryError } from './gantry-error.js';
import { queryString, type HttpTransport, type RequestBody } from './http-transport.js';
import { decodeWireResponse, parseExactJson, type InferResult, type WireResponse } from './infer-codec.js';
import { finalBatchStates, type Batch, type BatchState } from './job-types.js';
import { modelPath, segment } from './models-api.js';
import { uploadBody } from './upload-body.js';

/** A batch file: a JSONL file's path (streamed), its bytes, or the requests themselves (one OIP request each). */
export type BatchSource = string | Uint8Array | ReadonlyArray<object>;

export interface BatchSubmitOptions {
  /** Seconds the results are kept once the batch finished (default GANTRY_JOB_RETENTION_S). */
  retention?: number | undefined;
  /** A webhook once the batch has finished (signed with the secret when one is given). */
  callback?: { url: string; secret?: string } | undefined;
  /** Called as the file's bytes are sent. */
  onProgress?: ((sentBytes: number, totalBytes?: number) => void) | undefined;
  signal?: AbortSignal | undefined;
  /** Budget for the upload in ms; default none. */
  timeoutMs?: number | undefined;
}

/** One line of a batch's results: the response /infer would have answered, or the line's error. */
export interface BatchResultLine {
  id: string;
  response?: InferResult;
  error?: { error: string; code: string };
}

interface Signal {
  signal?: AbortSignal | undefined;
}

interface WireLine {
  id?: unknown;
  response?: WireResponse;
  error?: { error: string; code: string };
}

/** The lines of a response body, as they arrive (a batch's results stream while it runs). */
async function* textLines(body: ReadableStream<Uint8Array>): AsyncIterable<string> {
  const decoder = new TextDecoder();
  let pending = '';
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    pending += decoder.decode(chunk, { stream: true });
    let newline = pending.indexOf('\n');
    while (newline !== -1) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      if (line.trim() !== '') yield line;
      newline = pending.indexOf('\n');
    }
  }
  pending += decoder.decode();
  if (pending.trim() !== '') yield pending;
}

/** `client.batches`: batch files of inference requests (docs/jobs.md). */
export class BatchesApi {
  constructor(private readonly http: HttpTransport) {}

  /** Submits a batch file (JSONL: one OIP JSON inference request per line); answers once it is queued. */
  async submit(model: string, source: BatchSource, options: BatchSubmitOptions = {}): Promise<Batch> {
    const lines = Array.isArray(source) ? Buffer.from(source.map((request) => `${JSON.stringify(request)}\n`).join(''), 'utf8') : source;
    const raw = await uploadBody(lines as string | Uint8Array, undefined, options.onProgress);
    const body: RequestBody = {
      make: () => {
        const made = raw.make();
        return { ...made, headers: { ...made.headers, 'content-type': 'application/x-ndjson' } };
      },
      replayable: raw.replayable,
    };
    const headers: Record<string, string> = {};
    if (options.callback !== undefined) {
      headers['gantry-callback-url'] = options.callback.url;
      if (options.callback.secret !== undefined) headers['gantry-callback-secret'] = options.callback.secret;
    }
    return this.http.json({
      method: 'POST',
      path: `${modelPath('/v1/models', model)}/batches${queryString({ retention: options.retention })}`,
      headers,
      body,
      // Each submission is a batch of its own: sent again only when Gantry said (429/503) it made none.
      idempotent: false,
      signal: options.signal,
      timeoutMs: options.timeoutMs ?? 0,
    });
  }

  get(batchId: string, options: Signal = {}): Promise<Batch> {
    return this.http.json({ method: 'GET', path: `/v1/batches/${segment(batchId)}`, idempotent: true, signal: options.signal });
  }

  list(
    query: { state?: BatchState; model?: string; tenant?: string; limit?: number; cursor?: string } & Signal = {},
  ): Promise<{ batches: Batch[]; nextCursor?: string }> {
    const { signal, ...filters } = query;
    return this.http.json({ method: 'GET', path: `/v1/batches${queryString(filters)}`, idempotent: true, signal });
  }

  /** Cancels a batch: lines not started never run; chunks running finish. */
  cancel(batchId: string, options: Signal = {}): Promise<Batch> {
    return this.http.json({ method: 'DELETE', path: `/v1/batches/${segment(batchId)}`, idempotent: true, signal: options.signal });
  }

  /**
   * The batch's results in input order, decoded line by line as they stream (while it runs: the finished
   * prefix). INT64 outputs are exact, as with infer().
   */
  async *results(batchId: string, options: Signal = {}): AsyncIterable<BatchResultLine> {
    const response = await this.http.call({
      method: 'GET',
      path: `/v1/batches/${segment(batchId)}/results`,
      headers: { accept: 'application/x-ndjson' },
      idempotent: true,
      signal: options.signal,
      timeoutMs: 0,
    });
    if (response.body === null) return;
    for await (const text of textLines(response.body)) {
      let line: WireLine;
      try {
        line = parseExactJson<WireLine>(text, (parsed) => parsed.response);
      } catch {
        throw new GantryError(`A result line of batch ${batchId} is not JSON.`, { status: response.status, code: 'INTERNAL' });
      }
      const id = String(line.id);
      if (line.response !== undefined) yield { id, response: decodeWireResponse(line.response) };
      else yield { id, ...(line.error === undefined ? {} : { error: line.error }) };
    }
  }

  /**
   * Polls a batch until it is finished (succeeded, cancelled or expired), calling onProgress with each look.
   * @throws GantryError(DEADLINE_EXCEEDED, status 0) when timeoutMs passes first.
   */
  async wait(batchId: string, options: Signal & { pollMs?: number; timeoutMs?: number; onProgress?: (batch: Batch) => void } = {}): Promise<Batch> {
    const deadline = options.timeoutMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + options.timeoutMs;
    for (;;) {
      const batch = await this.get(batchId, options);
      options.onProgress?.(batch);
      if (finalBatchStates.has(batch.state)) return batch;
      if (Date.now() >= deadline) {
        throw new GantryError(`Batch ${batchId} is still ${batch.state} after ${options.timeoutMs} ms.`, { status: 0, code: 'DEADLINE_EXCEEDED' });
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(options.pollMs ?? 250, Math.max(1, deadline - Date.now()))));
      if (options.signal?.aborted === true) {
        throw new GantryError(`Waiting for batch ${batchId} was aborted by the caller.`, { status: 0, code: 'CANCELLED', cause: options.signal.reason });
      }
    }
  }
}
