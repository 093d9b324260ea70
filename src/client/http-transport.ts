import { Readable } from 'node:stream';
import { GantryError, errorFromResponse, parseRetryAfter } from './gantry-error.js';
import { retryDelayMs, shouldRetry, type AttemptFailure } from './retry-policy.js';
import { sendStreamed } from './streamed-request.js';

/** How the client reaches Gantry. */
export interface ClientOptions {
  /** Base URL of the API, such as `http://127.0.0.1:8080`. */
  url: string;
  /** API key, sent as `Authorization: Bearer <key>`; none for a server without auth. */
  key?: string | undefined;
  /** Budget of a whole call in milliseconds, retries and their waits included; default 60000. 0: none. */
  timeoutMs?: number | undefined;
  /** Most retries after the first attempt, on 429/503 (and connection failures of idempotent calls); default 2. */
  retries?: number | undefined;
  /** The User-Agent header; default `gantry-client`. */
  userAgent?: string | undefined;
}

export const defaultTimeoutMs = 60_000;
export const defaultRetries = 2;

/** A body the transport can send again on a retry: made anew for each attempt. */
export interface RequestBody {
  /** Makes the body for one attempt (a string, bytes, or a stream read once, sent by streamed-request.ts). */
  make: () => { body: string | Uint8Array | Readable; headers?: Record<string, string> };
  /** Whether make() may be called again (false for a caller's own stream). */
  replayable: boolean;
}

export interface CallOptions {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Path with its query, already encoded: `/v1/models/m?wait=true`. */
  path: string;
  headers?: Record<string, string> | undefined;
  body?: RequestBody | undefined;
  /** Sending the call twice does no harm (decides retries after a connection failure). */
  idempotent: boolean;
  signal?: AbortSignal | undefined;
  /** Overrides the client's timeoutMs for this call; 0: none. */
  timeoutMs?: number | undefined;
  /** Overrides the client's retries for this call (0 for a probe that must answer now). */
  retries?: number | undefined;
}

/** A JSON body, replayable. */
export function jsonBody(value: unknown): RequestBody {
  const text = JSON.stringify(value);
  return { make: () => ({ body: text, headers: { 'content-type': 'application/json' } }), replayable: true };
}

/** Query text (`?a=1&b=2`) from the defined entries of `values`; empty when none. */
export function queryString(values: object): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(values)) {
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') search.set(name, String(value));
  }
  const text = search.toString();
  return text === '' ? '' : `?${text}`;
}

/** Waits `milliseconds`, or rejects with the signal's reason when it aborts first. */
function sleep(milliseconds: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, milliseconds);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * One HTTP exchange with Gantry, with the client's policy applied once for every call: the key, the timeout
 * composed with the caller's AbortSignal, retries on 429/503 honouring Retry-After (retry-policy.ts), and
 * every non-2xx answer turned into a GantryError carrying the code and requestId.
 */
export class HttpTransport {
  readonly baseUrl: string;
  private readonly key: string | undefined;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly userAgent: string;

  constructor(options: ClientOptions) {
    let parsed: URL;
    try {
      parsed = new URL(options.url);
    } catch {
      throw new GantryError(`The Gantry URL '${String(options.url).slice(0, 200)}' is not an absolute URL (such as http://127.0.0.1:8080).`, {
        status: 0,
        code: 'INVALID_ARGUMENT',
      });
    }
    this.baseUrl = parsed.href.replace(/\/+$/, '');
    this.key = options.key === '' ? undefined : options.key;
    this.timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
    this.retries = options.retries ?? defaultRetries;
    this.userAgent = options.userAgent ?? 'gantry-client';
  }

  /**
   * Sends the call and answers its 2xx Response (the body unread).
   * @throws GantryError for a non-2xx answer (after the retries), a timeout (DEADLINE_EXCEEDED), an abort
   * (CANCELLED) or a connection failure (UNAVAILABLE, status 0).
   */
  async call(options: CallOptions): Promise<Response> {
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const timeout = timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined;
    const signals = [timeout, options.signal].filter((signal): signal is AbortSignal => signal !== undefined);
    const signal = signals.length === 0 ? new AbortController().signal : signals.length === 1 ? signals[0]! : AbortSignal.any(signals);
    const stopped = (cause: unknown) =>
      timeout?.aborted === true
        ? new GantryError(`${options.method} ${options.path.split('?')[0]} did not finish within ${timeoutMs} ms.`, {
            status: 0,
            code: 'DEADLINE_EXCEEDED',
            cause,
          })
        : new GantryError(`${options.method} ${options.path.split('?')[0]} was aborted by the caller.`, { status: 0, code: 'CANCELLED', cause });
    const replayable = options.body?.replayable ?? true;
    const retries = options.retries ?? this.retries;
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await this.send(options, signal);
      } catch (error) {
        if (signal.aborted) throw stopped(error);
        const failure: AttemptFailure = { kind: 'connection' };
        if (!shouldRetry(failure, attempt, retries, options.idempotent, replayable)) throw this.connectionError(options, error);
        await sleep(retryDelayMs(failure, attempt), signal).catch((reason: unknown) => {
          throw stopped(reason);
        });
        continue;
      }
      if (response.ok) return response;
      let text: string;
      try {
        text = await response.text();
      } catch (error) {
        if (signal.aborted) throw stopped(error);
        throw this.connectionError(options, error);
      }
      const failure: AttemptFailure = { kind: 'status', status: response.status, retryAfterSeconds: parseRetryAfter(response.headers.get('retry-after')) };
      if (!shouldRetry(failure, attempt, retries, options.idempotent, replayable)) throw errorFromResponse(response.status, response.headers, text);
      await sleep(retryDelayMs(failure, attempt), signal).catch((reason: unknown) => {
        throw stopped(reason);
      });
    }
  }

  /** Sends the call and reads its JSON answer. */
  async json<T>(options: CallOptions): Promise<T> {
    const response = await this.call(options);
    return (await response.json()) as T;
  }

  /** Sends a call whose answer has no body worth reading (204). */
  async empty(options: CallOptions): Promise<void> {
    const response = await this.call(options);
    await response.body?.cancel();
  }

  private async send(options: CallOptions, signal: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = { 'user-agent': this.userAgent, accept: 'application/json', ...options.headers };
    if (this.key !== undefined) headers.authorization = `Bearer ${this.key}`;
    const init: RequestInit = { method: options.method, headers, signal };
    if (options.body !== undefined) {
      const made = options.body.make();
      Object.assign(headers, made.headers);
      // A stream (an upload) is piped with backpressure: fetch would read it ahead of the socket.
      if (made.body instanceof Readable) return sendStreamed(`${this.baseUrl}${options.path}`, options.method, headers, made.body, signal);
      init.body = made.body as BodyInit;
    }
    return fetch(`${this.baseUrl}${options.path}`, init);
  }

  private connectionError(options: CallOptions, error: unknown): GantryError {
    const cause = (error as { cause?: { code?: unknown; message?: unknown } } | undefined)?.cause;
    const detail = typeof cause?.code === 'string' ? cause.code : typeof cause?.message === 'string' ? cause.message : String(error);
    return new GantryError(`Could not reach Gantry at ${this.baseUrl} (${detail.slice(0, 200)}) for ${options.method} ${options.path.split('?')[0]}.`, {
      status: 0,
      code: 'UNAVAILABLE',
      cause: error,
    });
  }
}
