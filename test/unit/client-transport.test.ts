/**
 * The client's HTTP policy against a real HTTP server on a free port (node:http, in this process): retries,
 * Retry-After, connection failures, timeouts, aborts, and how uploads are streamed. The server side is scripted
 * so each rule is seen to hold and to fail the other way; the e2e test (test/e2e/client.test.ts) does the same
 * against Gantry itself.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { GantryClient, GantryError } from '../../src/client/index.js';

type Handler = (request: IncomingMessage, body: Buffer, response: ServerResponse) => void;

let server: Server;
let baseUrl: string;
let handler: Handler;
let seen: Array<{ method: string; url: string; headers: IncomingMessage['headers']; body: Buffer; at: number }>;

before(async () => {
  server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers, body, at: Date.now() });
      handler(request, body, response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

function reset(next: Handler): void {
  seen = [];
  handler = next;
}

function json(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'content-type': 'application/json', 'x-request-id': `rid-${seen.length}`, ...headers });
  response.end(JSON.stringify(body));
}

async function rejection(promise: Promise<unknown>): Promise<GantryError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof GantryError, `expected a GantryError, got ${String(error)}`);
    return error;
  }
  assert.fail('the call succeeded');
}

const models = { models: [{ name: 'm', tenant: 'default', versions: [] }] };

describe('client transport', () => {
  test('503 with Retry-After is retried after that long, then answers; the key and user agent go with every attempt', async () => {
    reset((_request, _body, response) => {
      if (seen.length === 1) json(response, 503, { error: 'busy', code: 'UNAVAILABLE', requestId: 'r1' }, { 'retry-after': '1' });
      else json(response, 200, models);
    });
    const client = new GantryClient({ url: baseUrl, key: 'k-123', userAgent: 'test-agent' });
    assert.deepEqual(await client.models.list(), models.models);
    assert.equal(seen.length, 2);
    assert.ok(seen[1]!.at - seen[0]!.at >= 950, `retried after ${seen[1]!.at - seen[0]!.at} ms, Retry-After said 1 s`);
    for (const attempt of seen) {
      assert.equal(attempt.headers.authorization, 'Bearer k-123');
      assert.equal(attempt.headers['user-agent'], 'test-agent');
    }
  });

  test('429 is retried up to `retries`, then thrown with its code, requestId and Retry-After', async () => {
    reset((_request, _body, response) =>
      json(response, 429, { error: 'Rate limit reached', code: 'RESOURCE_EXHAUSTED', requestId: `r${seen.length}` }, { 'retry-after': '0' }),
    );
    const error = await rejection(new GantryClient({ url: baseUrl, retries: 3 }).models.list());
    assert.equal(seen.length, 4, 'one attempt and three retries');
    assert.deepEqual([error.status, error.code, error.requestId, error.retryAfterSeconds], [429, 'RESOURCE_EXHAUSTED', 'r4', 0]);
  });

  test('a POST that creates something is retried on 503 (Gantry ran nothing), a 4xx or 500 never', async () => {
    reset((_request, _body, response) => {
      if (seen.length === 1) json(response, 503, { error: 'busy', code: 'UNAVAILABLE', requestId: 'a' }, { 'retry-after': '0' });
      else json(response, 201, { id: 'k', key: 'secret' });
    });
    const client = new GantryClient({ url: baseUrl });
    await client.keys.create({ name: 'n', scopes: ['infer'] });
    assert.equal(seen.length, 2);
    assert.deepEqual(JSON.parse(seen[1]!.body.toString()), { name: 'n', scopes: ['infer'] });
    for (const status of [400, 500]) {
      reset((_request, _body, response) => json(response, status, { error: 'no', code: status === 400 ? 'INVALID_ARGUMENT' : 'INTERNAL', requestId: 'x' }));
      const error = await rejection(client.keys.create({ name: 'n', scopes: ['infer'] }));
      assert.equal(error.status, status);
      assert.equal(seen.length, 1, `${status} was not retried`);
    }
  });

  test('a connection reset before any answer is retried for an idempotent call only', async () => {
    reset((request, _body, response) => {
      if (seen.length === 1) request.socket.destroy();
      else json(response, 200, models);
    });
    const client = new GantryClient({ url: baseUrl });
    await client.models.list();
    assert.equal(seen.length, 2, 'GET was sent again');
    reset((request) => request.socket.destroy());
    const error = await rejection(client.keys.create({ name: 'n', scopes: ['infer'] }));
    assert.equal(seen.length, 1, 'a key creation that may have run is not sent again');
    assert.deepEqual([error.status, error.code], [0, 'UNAVAILABLE']);
    assert.match(error.message, /Could not reach Gantry at http:\/\/127\.0\.0\.1:\d+ .*POST \/v1\/keys/);
  });

  test('a server that is not there: UNAVAILABLE with status 0, and live() is false', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise((resolve) => closed.close(resolve));
    const client = new GantryClient({ url, retries: 0 });
    assert.equal(await client.live(), false);
    const error = await rejection(client.serverMetadata());
    assert.deepEqual([error.status, error.code], [0, 'UNAVAILABLE']);
  });

  test('the timeout covers the whole call (DEADLINE_EXCEEDED); the caller’s signal aborts it (CANCELLED)', async () => {
    reset(() => undefined); // never answers
    const slow = new GantryClient({ url: baseUrl, timeoutMs: 300 });
    const started = Date.now();
    const timedOut = await rejection(slow.models.list());
    assert.deepEqual([timedOut.status, timedOut.code], [0, 'DEADLINE_EXCEEDED']);
    assert.ok(Date.now() - started < 2000, `timed out after ${Date.now() - started} ms`);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const aborted = await rejection(new GantryClient({ url: baseUrl, timeoutMs: 0 }).models.list({ signal: controller.signal }));
    assert.deepEqual([aborted.status, aborted.code], [0, 'CANCELLED']);
    // An abort during a retry's wait stops the wait too.
    reset((_request, _body, response) => json(response, 503, { error: 'busy', code: 'UNAVAILABLE', requestId: 'w' }, { 'retry-after': '20' }));
    const waiting = new AbortController();
    setTimeout(() => waiting.abort(), 200);
    const waited = Date.now();
    assert.equal((await rejection(new GantryClient({ url: baseUrl }).models.list({ signal: waiting.signal }))).code, 'CANCELLED');
    assert.ok(Date.now() - waited < 5000, 'the 20 s Retry-After wait was cut by the abort');
  });

  test('infer sends its timeout to the server as the timeout parameter (µs) and its priority', async () => {
    reset((_request, _body, response) => json(response, 200, { model_name: 'm', outputs: [{ name: 'y', datatype: 'FP32', shape: [1], data: [2] }] }));
    const result = await new GantryClient({ url: baseUrl }).infer('m', { x: new Float32Array([1]) }, { timeoutMs: 1500, priority: 2, version: 3 });
    assert.deepEqual(result.output('y').data, new Float32Array([2]));
    assert.equal(seen[0]!.url, '/v2/models/m/versions/3/infer');
    assert.deepEqual(JSON.parse(seen[0]!.body.toString()).parameters, { priority: 2, timeout: 1_500_000 });
  });
});

describe('client uploads', () => {
  let directory: string;
  before(async () => {
    directory = await mkdtemp(path.join(os.tmpdir(), 'gantry-client-upload-'));
  });
  after(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  test('a file is streamed raw with its Content-Length, progress counts every byte, and the answer keeps its status', async () => {
    const file = path.join(directory, 'model.onnx');
    const bytes = Buffer.alloc(1024 * 1024 + 17, 7);
    await writeFile(file, bytes);
    reset((_request, _body, response) => json(response, 201, { name: 'm', version: '1', state: 'READY', size: bytes.length }));
    const progress: Array<[number, number | undefined]> = [];
    const pushed = await new GantryClient({ url: baseUrl }).models.push(file, {
      name: 'm',
      wait: true,
      onProgress: (sent, total) => progress.push([sent, total]),
    });
    assert.equal(pushed.status, 201);
    assert.equal(pushed.version, '1');
    const request = seen[0]!;
    assert.equal(request.url, '/v1/models/m/versions?wait=true');
    assert.equal(request.headers['content-type'], 'application/octet-stream');
    assert.equal(request.headers['content-length'], String(bytes.length));
    assert.ok(request.body.equals(bytes), 'the server got the file exactly');
    assert.ok(progress.length > 2, `progress was reported ${progress.length} times`);
    assert.deepEqual(progress.at(-1), [bytes.length, bytes.length]);
    assert.ok(
      progress.every(([sent], index) => index === 0 || sent > progress[index - 1]![0]),
      'progress only grows',
    );
  });

  test('with a warm-up sample the upload is multipart: the sample first, then the file', async () => {
    reset((_request, _body, response) => json(response, 200, { name: 'm', version: '4', state: 'READY', existing: true }));
    const warmup = { inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: [1] }] };
    const pushed = await new GantryClient({ url: baseUrl }).models.push(new Uint8Array([1, 2, 3]), { name: 'm', version: 4, warmup, duplicate: false });
    assert.deepEqual([pushed.status, pushed.existing], [200, true]);
    const request = seen[0]!;
    assert.equal(request.method, 'PUT');
    assert.equal(request.url, '/v1/models/m/versions/4?duplicate=false');
    const boundary = /boundary=(.+)$/.exec(request.headers['content-type'] ?? '')?.[1];
    assert.ok(boundary !== undefined, request.headers['content-type']);
    assert.equal(request.headers['content-length'], String(request.body.length));
    const text = request.body.toString('latin1');
    const warmupAt = text.indexOf('name="warmup"');
    const fileAt = text.indexOf('name="file"');
    assert.ok(warmupAt > 0 && fileAt > warmupAt, 'warmup comes before file');
    assert.ok(text.includes(JSON.stringify(warmup)));
    assert.ok(text.includes('\r\n\r\n\u0001\u0002\u0003\r\n--' + boundary + '--'), 'the file bytes sit in their part');
  });

  test('a caller’s stream is sent once: a 503 is not retried (the stream cannot be read again)', async () => {
    reset((_request, _body, response) => json(response, 503, { error: 'busy', code: 'UNAVAILABLE', requestId: 's' }, { 'retry-after': '0' }));
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new Uint8Array([9, 9]));
        controller.close();
      },
    });
    const error = await rejection(new GantryClient({ url: baseUrl }).models.push(stream, { name: 'm' }));
    assert.equal(error.status, 503);
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.headers['transfer-encoding'], 'chunked', 'a stream of unknown length goes chunked');
  });

  test('a refusal answered before the body was read (413) reaches the caller with its message, not a reset', async () => {
    const file = path.join(directory, 'large.onnx');
    await writeFile(file, Buffer.alloc(32 * 1024 * 1024, 1));
    reset(() => undefined); // the scripted handler stays out of it: `refuse` answers
    // Answers as soon as the request's headers arrive, before reading the body (as Gantry does past its limits), then
    // drops what still comes. (A server that closes at once with body bytes unread makes the kernel reset the
    // connection, which can reach the client before the answer does: then no client can read the answer, and this
    // one reports UNAVAILABLE. Gantry reads a short rest for that reason.)
    const refuse = (request: IncomingMessage, response: ServerResponse) => {
      if (request.url?.startsWith('/v1/models/big/') !== true) return;
      response.writeHead(413, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ error: 'The upload exceeds GANTRY_MAX_UPLOAD_BYTES (1024 bytes).', code: 'PAYLOAD_TOO_LARGE', requestId: 'big-1' }));
      request.resume();
    };
    server.on('request', refuse);
    try {
      const error = await rejection(new GantryClient({ url: baseUrl }).models.push(file, { name: 'big' }));
      assert.deepEqual([error.status, error.code, error.requestId], [413, 'PAYLOAD_TOO_LARGE', 'big-1']);
      assert.match(error.message, /GANTRY_MAX_UPLOAD_BYTES/);
    } finally {
      server.off('request', refuse);
    }
  });

  test('a missing file is refused before anything is sent', async () => {
    reset(() => assert.fail('nothing should be sent'));
    const error = await rejection(new GantryClient({ url: baseUrl }).models.push(path.join(directory, 'absent.onnx'), { name: 'm' }));
    assert.deepEqual([error.status, error.code], [0, 'INVALID_ARGUMENT']);
    assert.match(error.message, /Cannot read the model file .*absent\.onnx.*ENOENT/);
  });
});
