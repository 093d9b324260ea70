/**
 * The tests' one HTTP call and one error-body assertion. Every suite's helpers (test/e2e/support.ts `call`,
 * test/conformance/support.ts `http`, the reliability harness's `timedCall`) send through `httpCall` and check
 * errors with `assertErrorBody`, so a change to how replies are read or errors are shaped is made once.
 */
import assert from 'node:assert/strict';
import type { JsonBody } from '../../support/json-body.js';

/** A reply as read by httpCall: the status, the headers, the body parsed when it is JSON, and its text. */
export interface HttpReply {
  status: number;
  headers: Headers;
  /** The parsed JSON body; the text when it is not JSON; undefined when empty (204). */
  body: JsonBody;
  /** The body as sent (for messages, and answers that are not JSON: CSV, Prometheus text). */
  text: string;
  /** Milliseconds from sending to the whole body being read. */
  elapsedMs: number;
}

export interface HttpCallOptions {
  /** An object is sent as JSON (with content-type application/json unless `headers` names one); a string or bytes as they are. */
  body?: unknown;
  /** Sent exactly as given: add the test admin key with withAdminKey (test/helpers/gantry-process.ts). */
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** Reads a body's text as JSON when it is JSON, else returns the text; undefined for an empty body. */
export function parseBody(text: string): unknown {
  if (text.length === 0) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** One HTTP call to `baseUrl + path`; rejects only when no response came (connection error, abort). */
export async function httpCall(baseUrl: string, method: string, path: string, options: HttpCallOptions = {}): Promise<HttpReply> {
  const started = performance.now();
  const headers: Record<string, string> = { ...options.headers };
  const init: RequestInit = { method, headers };
  if (options.body !== undefined) {
    const raw = typeof options.body === 'string' || options.body instanceof Uint8Array;
    const named = Object.keys(headers).some((name) => name.toLowerCase() === 'content-type');
    if (!raw && !named) headers['content-type'] = 'application/json';
    init.body = (raw ? options.body : JSON.stringify(options.body)) as BodyInit;
  }
  if (options.signal !== undefined) init.signal = options.signal;
  const response = await fetch(`${baseUrl}${path}`, init);
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: parseBody(text), text, elapsedMs: performance.now() - started };
}

/**
 * Asserts an error reply: the status, a JSON body with a non-empty `error` message (the protocol's error object)
 * and a `requestId` (Gantry's addition), and when given the `code` and a message matching `message`.
 */
export function assertErrorBody(reply: { status: number; body: JsonBody }, status: number, code?: string, message?: RegExp): void {
  assert.equal(reply.status, status, `expected ${status}${code === undefined ? '' : ` ${code}`}, got ${reply.status}: ${JSON.stringify(reply.body)}`);
  assert.equal(typeof reply.body, 'object', `error body is not JSON: ${String(reply.body)}`);
  assert.equal(typeof reply.body.error, 'string', JSON.stringify(reply.body));
  assert.ok(reply.body.error.length > 0, 'error message is empty');
  assert.equal(typeof reply.body.requestId, 'string', JSON.stringify(reply.body));
  if (code !== undefined) assert.equal(reply.body.code, code, JSON.stringify(reply.body));
  if (message !== undefined) assert.match(reply.body.error, message);
}
