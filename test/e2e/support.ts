/**
 * Shared helpers for the end-to-end tests (not a test file itself: node --test runs it as an empty file).
 * Everything here talks to a real gantry child process over HTTP, or runs onnxruntime-node in-process as the
 * reference the gateway's answers are compared with.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { GantryClient } from '../../src/client/index.js';
import { testAdminKey, withAdminKey } from '../helpers/gantry-process.js';
import { assertErrorBody, httpCall, type HttpReply } from '../helpers/http.js';
import type { JsonBody } from '../../support/json-body.js';

export interface JsonReply {
  status: number;
  body: JsonBody;
  headers: Headers;
}

/** What `call` gives back: the reply and its body as sent (for messages, and answers that are not JSON: CSV). */
export type { HttpReply } from '../helpers/http.js';

/**
 * Any HTTP call, with the test admin key unless `headers` carries another `authorization` (or `{}` via
 * `anonymous`). An object body is sent as JSON, a string as it is (both as application/json unless `headers`
 * says otherwise); the answer is parsed as JSON when it is JSON (204 gives `undefined`, anything else its text).
 */
export function call(baseUrl: string, method: string, urlPath: string, body?: unknown, headers: Record<string, string> = withAdminKey()): Promise<HttpReply> {
  if (body === undefined) return httpCall(baseUrl, method, urlPath, { headers });
  return httpCall(baseUrl, method, urlPath, { body, headers: { 'content-type': 'application/json', ...headers } });
}

/**
 * The typed client (src/client/) for a gantry under test, with the test admin key unless `key` says otherwise: for
 * tests that want typed tensors and GantryError rather than raw replies (`call` stays for status-level checks).
 */
export function clientFor(baseUrl: string, key: string = testAdminKey, options: { retries?: number; timeoutMs?: number } = {}): GantryClient {
  return new GantryClient({ url: baseUrl, key, ...options });
}

export async function sha256OfFile(filePath: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(filePath))
    .digest('hex');
}

/** Asserts an error reply: status, code, a non-empty message matching `message`, and a requestId (test/helpers/http.ts). */
export const assertError: (reply: JsonReply, status: number, code: string, message?: RegExp) => void = assertErrorBody;

/** The one seeded PRNG (support/prng.ts): deterministic pseudo-random inputs, float32-exact where they are floats. */
export { mulberry32, randomFloats } from '../../support/prng.js';

export function maxAbsDiff(actual: readonly number[], expected: ArrayLike<number>): number {
  assert.equal(actual.length, expected.length, 'element count differs');
  let max = 0;
  for (let index = 0; index < actual.length; index++) {
    const a = actual[index]!;
    const e = expected[index]!;
    assert.equal(typeof a, 'number', `element ${index} is not a number`);
    const diff = Math.abs(a - e);
    if (!(diff <= max)) max = Number.isNaN(diff) ? Infinity : diff;
  }
  return max;
}

const ortTypeToDatatype: Record<string, string> = {
  bool: 'BOOL',
  uint8: 'UINT8',
  uint16: 'UINT16',
  uint32: 'UINT32',
  uint64: 'UINT64',
  int8: 'INT8',
  int16: 'INT16',
  int32: 'INT32',
  int64: 'INT64',
  float16: 'FP16',
  float32: 'FP32',
  float64: 'FP64',
  string: 'BYTES',
};

export interface TensorMeta {
  name: string;
  datatype: string;
  shape: number[];
}

/** An in-process session's inputs/outputs in Gantry's signature form (dynamic dimensions as -1). */
export function signatureOf(session: ort.InferenceSession): { inputs: TensorMeta[]; outputs: TensorMeta[] } {
  const convert = (metadata: readonly ort.InferenceSession.ValueMetadata[]): TensorMeta[] =>
    metadata.map((entry) => {
      assert.ok(entry.isTensor, `${entry.name} is not a tensor`);
      return {
        name: entry.name,
        datatype: ortTypeToDatatype[entry.type]!,
        shape: entry.shape.map((dimension) => (typeof dimension === 'number' && dimension >= 0 ? dimension : -1)),
      };
    });
  return { inputs: convert(session.inputMetadata), outputs: convert(session.outputMetadata) };
}

export async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

export async function listDirectory(directory: string): Promise<string[]> {
  try {
    return (await readdir(directory)).sort();
  } catch {
    return [];
  }
}

export function blobDirectory(dataDirectory: string): string {
  return path.join(dataDirectory, 'blobs', 'sha256');
}

export function temporaryBlobDirectory(dataDirectory: string): string {
  return path.join(dataDirectory, 'blobs', 'tmp');
}

export { ort };
