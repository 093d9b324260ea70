/**
 * Helpers for the protocol conformance tests (not a test file: node --test runs it as an empty file).
 * Everything is built from the protocol documents in shared/reference, not from Gantry's own encoders, so the
 * tests check the wire format independently of src/protocol.
 */
import assert from 'node:assert/strict';
import { withAdminKey } from '../helpers/gantry-process.js';
import { assertErrorBody, httpCall } from '../helpers/http.js';
import type { JsonBody } from '../../support/json-body.js';

/** A reply: status, headers, the body parsed when it is JSON, and how long it took (test/helpers/http.ts reads them). */
export interface Reply {
  status: number;
  headers: Headers;
  body: JsonBody;
  elapsedMs: number;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Any HTTP call with an optional JSON body (a string is sent as it is), with the test admin key unless `init` names another. */
export function http(
  baseUrl: string,
  method: string,
  path: string,
  body?: unknown,
  init: { headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<Reply> {
  const headers = body === undefined ? withAdminKey(init.headers) : withAdminKey({ 'content-type': 'application/json', ...init.headers });
  return httpCall(baseUrl, method, path, { headers, ...(body === undefined ? {} : { body }), ...(init.signal === undefined ? {} : { signal: init.signal }) });
}

/**
 * The protocol's error object (inference_rest.md, "... Response JSON Error Object"; the extension documents
 * repeat it): an HTTP error status and a body holding an `error` string. Gantry adds `code` and `requestId`.
 */
export { assertErrorBody };

export function inferPath(model: string, version?: string): string {
  return version === undefined ? `/v2/models/${model}/infer` : `/v2/models/${model}/versions/${version}/infer`;
}

export async function inferJson(baseUrl: string, model: string, request: unknown, version?: string, signal?: AbortSignal): Promise<Reply> {
  return http(baseUrl, 'POST', inferPath(model, version), request, signal === undefined ? {} : { signal });
}

export interface BinaryReply extends Reply {
  /** The JSON part of the response (the whole body when there is no Inference-Header-Content-Length). */
  header: JsonBody;
  /** The bytes after the JSON part. */
  binary: Buffer;
  raw: Buffer;
}

/**
 * extension_binary_data.md, "Binary Tensor Request": the body is the JSON object followed by the raw tensors,
 * in the order the tensors appear in the JSON; Inference-Header-Content-Length gives the JSON's byte length.
 */
export async function inferBinary(baseUrl: string, model: string, header: unknown, parts: readonly Uint8Array[], version?: string): Promise<BinaryReply> {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const body = Buffer.concat([json, ...parts.map((part) => Buffer.from(part.buffer, part.byteOffset, part.byteLength))]);
  const started = Date.now();
  const response = await fetch(`${baseUrl}${inferPath(model, version)}`, {
    method: 'POST',
    headers: withAdminKey({ 'content-type': 'application/octet-stream', 'inference-header-content-length': String(json.byteLength) }),
    body,
  });
  return readBinaryReply(response, started);
}

export async function readBinaryReply(response: Response, started = Date.now()): Promise<BinaryReply> {
  const raw = Buffer.from(await response.arrayBuffer());
  const elapsedMs = Date.now() - started;
  const lengthHeader = response.headers.get('inference-header-content-length');
  const headerLength = lengthHeader === null ? raw.byteLength : Number(lengthHeader);
  assert.ok(Number.isSafeInteger(headerLength) && headerLength <= raw.byteLength, `bad Inference-Header-Content-Length ${lengthHeader}`);
  const header = JSON.parse(raw.subarray(0, headerLength).toString('utf8'));
  return { status: response.status, headers: response.headers, body: header, header, binary: raw.subarray(headerLength), raw, elapsedMs };
}

/**
 * Splits a response's binary part by the outputs' `binary_data_size` parameters, in output order
 * (extension_binary_data.md, "Binary Tensor Request").
 */
export function binaryOutputs(reply: BinaryReply): Map<string, Buffer> {
  const parts = new Map<string, Buffer>();
  let offset = 0;
  for (const output of reply.header.outputs as Array<{ name: string; parameters?: Record<string, unknown> }>) {
    const size = output.parameters?.binary_data_size;
    if (size === undefined) continue;
    assert.equal(typeof size, 'number', `output ${output.name}: binary_data_size is not a number`);
    parts.set(output.name, reply.binary.subarray(offset, offset + (size as number)));
    offset += size as number;
  }
  assert.equal(offset, reply.binary.byteLength, 'binary_data_size values do not add up to the binary part of the body');
  return parts;
}

/** BYTES binary layout (extension_binary_data.md): each element a 4-byte little-endian length, then its bytes. */
export function packStrings(values: readonly string[]): Buffer {
  return Buffer.concat(
    values.flatMap((value) => {
      const bytes = Buffer.from(value, 'utf8');
      const length = Buffer.alloc(4);
      length.writeUInt32LE(bytes.byteLength);
      return [length, bytes];
    }),
  );
}

export function unpackStrings(bytes: Buffer): string[] {
  const out: string[] = [];
  let offset = 0;
  while (offset < bytes.byteLength) {
    const length = bytes.readUInt32LE(offset);
    out.push(bytes.subarray(offset + 4, offset + 4 + length).toString('utf8'));
    offset += 4 + length;
  }
  assert.equal(offset, bytes.byteLength, 'BYTES data does not end on an element boundary');
  return out;
}

export function bytesOf(view: ArrayBufferView): Buffer {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength);
}

/** IEEE 754 binary16 bits of an exactly representable number (test values are chosen to be exact). */
export function float16Bits(value: number): number {
  if (Object.is(value, -0)) return 0x8000;
  if (value === 0) return 0;
  const sign = value < 0 ? 0x8000 : 0;
  const magnitude = Math.abs(value);
  const exponent = Math.floor(Math.log2(magnitude));
  if (exponent < -14) return sign | Math.round(magnitude / 2 ** -24);
  const mantissa = Math.round((magnitude / 2 ** exponent - 1) * 1024);
  return sign | ((exponent + 15) << 10) | mantissa;
}

/** Statistics of one model version (extension_statistics.md, "Statistics Response JSON Object"). */
export async function modelStats(baseUrl: string, model: string, version = '1'): Promise<JsonBody> {
  const reply = await http(baseUrl, 'GET', `/v2/models/${model}/versions/${version}/stats`);
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
  return reply.body.model_stats[0];
}

/** Polls until `check` holds or `timeoutMs` passes; returns the last value either way. */
export async function pollFor<T>(read: () => Promise<T>, check: (value: T) => boolean, timeoutMs = 2_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await read();
  while (!check(value) && Date.now() < deadline) {
    await sleep(25);
    value = await read();
  }
  return value;
}
