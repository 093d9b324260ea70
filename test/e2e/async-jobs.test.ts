/**
 * Asynchronous jobs through a real gantry process (API + worker, BullMQ on Redis): created with one call (or
 * `Prefer: respond-async` on infer), answered by the worker into Redis, read back exactly as the synchronous call
 * answers; cancelled, expired, retained, idempotent, and another tenant's job is not found.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifyWebhookSignature, signatureHeader } from '../../src/webhooks/webhook-signature.js';
import { fixturePath, inferJson, startGantry, uploadModel, withAdminKey, type GantryProcess } from '../helpers/gantry-process.js';
import { slowRequest } from '../helpers/reliability-harness.js';
import { sampleValue } from '../helpers/metrics-text.js';
import { randomFloats } from './support.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe('asynchronous jobs', () => {
  let gantry: GantryProcess;

  async function request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}, key?: string) {
    const response = await fetch(`${gantry.baseUrl}${path}`, {
      method,
      headers: {
        ...(key === undefined ? withAdminKey() : { authorization: `Bearer ${key}` }),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(20_000),
    });
    const text = await response.text();
    let json: Json = {};
    try {
      json = JSON.parse(text) as Json;
    } catch {
      // Not JSON: the text says why.
    }
    return { status: response.status, headers: response.headers, body: json, text };
  }

  async function settled(id: string, key?: string): Promise<Json> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const reply = await request('GET', `/v1/jobs/${id}`, undefined, {}, key);
      assert.equal(reply.status, 200, reply.text);
      if (!['queued', 'running'].includes(reply.body.state as string)) return reply.body;
      if (Date.now() > deadline) assert.fail(`job ${id} still ${reply.body.state}`);
      await sleep(50);
    }
  }

  const mlpRequest = (seed: number, extra: Json = {}) => ({
    inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 256], data: randomFloats(seed, 512) }],
    ...extra,
  });

  before(async () => {
    // The test's webhook receiver listens on loopback, which only an operator's allow-list opens.
    gantry = await startGantry({ env: { GANTRY_WORKER_CONCURRENCY: '1', GANTRY_WEBHOOK_ALLOW: '127.0.0.1', GANTRY_WEBHOOK_BASE_DELAY_MS: '100' } });
    for (const [name, file] of [
      ['mlp', 'tiny-mlp.onnx'],
      ['slow', 'slow.onnx'],
    ] as const) {
      const upload = await uploadModel(gantry.baseUrl, name, fixturePath(file), '?wait=true');
      assert.equal(upload.status, 201, JSON.stringify(upload.body));
    }
  });
  after(async () => {
    await gantry?.cleanup();
  });

  test('a job answers 202 with its Location, runs, and its result is exactly what infer answers', async () => {
    const body = mlpRequest(1, { id: 'job-request-1' });
    const created = await request('POST', '/v1/models/mlp/jobs', body);
    assert.equal(created.status, 202, created.text);
    assert.equal(created.headers.get('location'), `/v1/jobs/${created.body.id}`);
    assert.ok(['queued', 'running', 'succeeded'].includes(created.body.state as string), created.text);
    assert.equal(created.body.model, 'mlp');
    assert.equal(created.body.version, '1');

    const job = await settled(created.body.id as string);
    assert.equal(job.state, 'succeeded', JSON.stringify(job));
    assert.equal(job.attempts, 1);
    for (const field of ['createdAt', 'startedAt', 'finishedAt', 'expiresAt'])
      assert.ok(!Number.isNaN(Date.parse(job[field] as string)), `${field}: ${job[field]}`);

    const result = await request('GET', `/v1/jobs/${created.body.id}/result`);
    const synchronous = await inferJson(gantry.baseUrl, 'mlp', body);
    assert.equal(result.status, 200, result.text);
    assert.equal(synchronous.status, 200);
    assert.deepEqual(result.body, synchronous.body, 'the same answer as the synchronous call');
  });

  test('binary outputs: the result comes in the binary extension, byte for byte as infer sends it', async () => {
    const body = mlpRequest(2, { parameters: { binary_data_output: true } });
    const created = await request('POST', '/v1/models/mlp/jobs', body);
    assert.equal(created.status, 202, created.text);
    await settled(created.body.id as string);
    const fetchBytes = async (path: string, method: string, payload?: unknown) => {
      const response = await fetch(`${gantry.baseUrl}${path}`, {
        method,
        headers: withAdminKey(payload === undefined ? {} : { 'content-type': 'application/json' }),
        ...(payload === undefined ? {} : { body: JSON.stringify(payload) }),
      });
      return { status: response.status, header: response.headers.get('inference-header-content-length'), bytes: Buffer.from(await response.arrayBuffer()) };
    };
    const result = await fetchBytes(`/v1/jobs/${created.body.id}/result`, 'GET');
    const synchronous = await fetchBytes('/v2/models/mlp/infer', 'POST', body);
    assert.equal(result.status, 200);
    assert.ok(result.header !== null, 'a binary-extension answer');
    assert.equal(result.header, synchronous.header);
    assert.ok(result.bytes.equals(synchronous.bytes), 'identical bytes');
  });

  test('Prefer: respond-async on infer makes a job instead of waiting', async () => {
    const created = await request('POST', '/v2/models/mlp/infer', mlpRequest(3), { prefer: 'respond-async, wait=0' });
    assert.equal(created.status, 202, created.text);
    assert.match(created.headers.get('location') ?? '', /^\/v1\/jobs\/[A-Za-z0-9_-]+$/);
    assert.equal((await settled(created.body.id as string)).state, 'succeeded');
  });

  test('the result is 409 until the job has finished; a bad request is refused at once, as infer refuses it', async () => {
    const created = await request('POST', '/v1/models/slow/jobs', slowRequest(100_000));
    assert.equal(created.status, 202, created.text);
    const early = await request('GET', `/v1/jobs/${created.body.id}/result`);
    assert.equal(early.status, 409, early.text);
    assert.match(early.body.error as string, /result is available once it has finished/);
    assert.equal((await settled(created.body.id as string)).state, 'succeeded');

    const bad = await request('POST', '/v1/models/mlp/jobs', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] });
    const synchronous = await inferJson(gantry.baseUrl, 'mlp', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] });
    assert.equal(bad.status, 400, bad.text);
    assert.equal(bad.body.error, synchronous.body.error);
    const unknown = await request('POST', '/v1/models/nope/jobs', mlpRequest(4));
    assert.equal(unknown.status, 404, unknown.text);
  });

  test('cancelling a queued job: it never runs; cancelling a finished one is refused', async () => {
    // One slow job holds the only worker slot (concurrency 1), so the next one waits in the queue.
    const blocker = await request('POST', '/v1/models/slow/jobs', slowRequest(300_000));
    assert.equal(blocker.status, 202, blocker.text);
    const queued = await request('POST', '/v1/models/slow/jobs', slowRequest(1000));
    assert.equal(queued.status, 202, queued.text);
    await until(async () => (await request('GET', `/v1/jobs/${blocker.body.id}`)).body.state === 'running', 'the blocker to run');
    const metrics = (await request('GET', '/metrics')).text;
    assert.ok(sampleValue(metrics, 'gantry_async_unfinished', { kind: 'job', state: 'running' }) >= 1, 'a running job in the gauge');
    assert.ok(sampleValue(metrics, 'gantry_async_unfinished', { kind: 'job', state: 'queued' }) >= 1, 'a queued job in the gauge');
    const cancelled = await request('DELETE', `/v1/jobs/${queued.body.id}`);
    assert.equal(cancelled.status, 200, cancelled.text);
    assert.equal(cancelled.body.state, 'cancelled');
    assert.ok(['queued', 'running'].includes(cancelled.body.cancelledWhile as string), cancelled.text);

    assert.equal((await settled(blocker.body.id as string)).state, 'succeeded');
    await sleep(300);
    const after = await request('GET', `/v1/jobs/${queued.body.id}`);
    assert.equal(after.body.state, 'cancelled');
    if (cancelled.body.cancelledWhile === 'queued') assert.equal(after.body.attempts, 0, 'a job cancelled while queued never ran');
    const result = await request('GET', `/v1/jobs/${queued.body.id}/result`);
    assert.equal(result.status, 409, result.text);
    assert.match(result.body.error as string, /cancelled/);
    const again = await request('DELETE', `/v1/jobs/${blocker.body.id}`);
    assert.equal(again.status, 409, again.text);
  });

  test("a job whose deadline passes before it runs ends expired; its result is infer's timeout error", async () => {
    const blocker = await request('POST', '/v1/models/slow/jobs', slowRequest(300_000));
    // timeout (µs) bounds a job's deadline as it bounds a synchronous call's.
    const hurried = await request('POST', '/v1/models/slow/jobs', slowRequest(10, { timeout: 50_000 }));
    assert.equal(hurried.status, 202, hurried.text);
    const job = await settled(hurried.body.id as string);
    assert.equal(job.state, 'expired', JSON.stringify(job));
    const result = await request('GET', `/v1/jobs/${hurried.body.id}/result`);
    assert.equal(result.status, 504, result.text);
    assert.equal(result.body.code, 'DEADLINE_EXCEEDED');
    await settled(blocker.body.id as string);
  });

  test('Idempotency-Key: the same key and body answer the same job (200); another body is 409', async () => {
    const body = mlpRequest(5);
    const key = { 'idempotency-key': `key-${Date.now()}` };
    const first = await request('POST', '/v1/models/mlp/jobs', body, key);
    assert.equal(first.status, 202, first.text);
    const again = await request('POST', '/v1/models/mlp/jobs', body, key);
    assert.equal(again.status, 200, again.text);
    assert.equal(again.body.id, first.body.id);
    const other = await request('POST', '/v1/models/mlp/jobs', mlpRequest(6), key);
    assert.equal(other.status, 409, other.text);
    assert.match(other.body.error as string, /Idempotency-Key was already used/);
    const listed = await request('GET', '/v1/jobs?limit=1000');
    assert.equal((listed.body.jobs as Json[]).filter((job) => job.id === first.body.id).length, 1, 'one job for the key');
  });

  test('retention: a result is kept for the asked seconds, then the job is gone', async () => {
    const created = await request('POST', '/v1/models/mlp/jobs', { ...mlpRequest(7), retention: 1 });
    assert.equal(created.status, 202, created.text);
    assert.equal((await settled(created.body.id as string)).state, 'succeeded');
    await sleep(1500);
    const gone = await request('GET', `/v1/jobs/${created.body.id}`);
    assert.equal(gone.status, 404, gone.text);
    const tooLong = await request('POST', '/v1/models/mlp/jobs', { ...mlpRequest(8), retention: 10 ** 9 });
    assert.equal(tooLong.status, 400, tooLong.text);
    assert.match(tooLong.body.error as string, /GANTRY_JOB_MAX_RETENTION_S/);
  });

  test("listing pages through the caller's jobs with a cursor, filtered by state; another tenant sees none of them", async () => {
    const ids: string[] = [];
    for (let index = 0; index < 5; index += 1) ids.push((await request('POST', '/v1/models/mlp/jobs', mlpRequest(20 + index))).body.id as string);
    for (const id of ids) await settled(id);
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 50; page += 1) {
      const reply = await request('GET', `/v1/jobs?state=succeeded&limit=2${cursor === undefined ? '' : `&cursor=${cursor}`}`);
      assert.equal(reply.status, 200, reply.text);
      for (const job of reply.body.jobs as Json[]) {
        assert.equal(job.state, 'succeeded');
        seen.push(job.id as string);
      }
      cursor = reply.body.nextCursor as string | undefined;
      if (cursor === undefined) break;
    }
    assert.equal(new Set(seen).size, seen.length, 'no job listed twice');
    for (const id of ids) assert.ok(seen.includes(id), `job ${id} listed`);

    assert.equal((await request('POST', '/v1/tenants', { id: 'jobs-other' })).status, 201);
    const keyReply = await request('POST', '/v1/keys', { tenant: 'jobs-other', name: 'other', scopes: ['infer'] });
    assert.equal(keyReply.status, 201, keyReply.text);
    const otherKey = keyReply.body.key as string;
    const stranger = await request('GET', `/v1/jobs/${ids[0]}`, undefined, {}, otherKey);
    assert.equal(stranger.status, 404, stranger.text);
    assert.equal((await request('GET', `/v1/jobs/${ids[0]}/result`, undefined, {}, otherKey)).status, 404);
    assert.equal((await request('DELETE', `/v1/jobs/${ids[0]}`, undefined, {}, otherKey)).status, 404);
    const theirs = await request('GET', '/v1/jobs', undefined, {}, otherKey);
    assert.deepEqual(theirs.body.jobs, []);
  });

  /** A webhook receiver on loopback answering `statuses` in turn (then 200), keeping what it was sent. */
  async function receiver(statuses: number[]): Promise<{ url: string; received: Array<{ body: string; signature: string }>; server: Server }> {
    const received: Array<{ body: string; signature: string }> = [];
    const server = createServer((incoming: IncomingMessage, response) => {
      const chunks: Buffer[] = [];
      incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
      incoming.on('end', () => {
        received.push({ body: Buffer.concat(chunks).toString('utf8'), signature: String(incoming.headers[signatureHeader] ?? '') });
        response.statusCode = statuses.shift() ?? 200;
        response.end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, received, server };
  }

  async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
      await sleep(50);
    }
  }

  test('webhook: the finished job is POSTed signed, with its result when asked; the signature verifies', async () => {
    const hook = await receiver([]);
    const secret = 'whsec-test-0123456789abcdef';
    const body = mlpRequest(30);
    const created = await request('POST', '/v1/models/mlp/jobs', { ...body, callback: { url: hook.url, secret, includeResult: true } });
    assert.equal(created.status, 202, created.text);
    await until(() => hook.received.length >= 1, 'the webhook');
    const [delivery] = hook.received;
    assert.ok(verifyWebhookSignature(delivery!.signature, secret, delivery!.body, Math.floor(Date.now() / 1000)), `signature ${delivery!.signature}`);
    assert.ok(!verifyWebhookSignature(delivery!.signature, 'another-secret-0123456789', delivery!.body, Math.floor(Date.now() / 1000)));
    const payload = JSON.parse(delivery!.body) as Json;
    assert.equal(payload.type, 'job.finished');
    assert.equal(payload.job.id, created.body.id);
    assert.equal(payload.job.state, 'succeeded');
    assert.equal(JSON.stringify(payload).includes(secret), false, 'the secret is never sent');
    const synchronous = await inferJson(gantry.baseUrl, 'mlp', body);
    assert.deepEqual(payload.result, synchronous.body, 'includeResult: the response infer gives');
    await sleep(300);
    assert.equal(hook.received.length, 1, 'delivered once');
  });

  test('webhook: a receiver failing twice then answering gets three attempts, each shown on the job', async () => {
    const hook = await receiver([500, 503]);
    const created = await request('POST', '/v1/models/mlp/jobs', { ...mlpRequest(31), callback: { url: hook.url } });
    assert.equal(created.status, 202, created.text);
    await until(() => hook.received.length >= 3, 'three attempts');
    let deliveries: Json[] = [];
    await until(async () => {
      deliveries = (await request('GET', `/v1/jobs/${created.body.id}`)).body.deliveries as Json[];
      return deliveries?.length === 3;
    }, 'three recorded deliveries');
    assert.deepEqual(
      deliveries.map((delivery) => delivery.status),
      [500, 503, 200],
    );
    for (const delivery of deliveries) assert.ok(!Number.isNaN(Date.parse(delivery.at as string)));
    await sleep(500);
    assert.equal(hook.received.length, 3, 'no attempt after the success');
  });

  test('webhook: a callback to a private or metadata address is refused when the job is made', async () => {
    for (const url of ['http://169.254.169.254/latest/meta-data', 'http://10.1.2.3/hook', 'http://[::1]:9/hook', 'ftp://example.com/']) {
      const refused = await request('POST', '/v1/models/mlp/jobs', { ...mlpRequest(32), callback: { url } });
      assert.equal(refused.status, 400, `${url}: ${refused.text}`);
      assert.match(refused.body.error as string, /not a public address|http or https/, url);
    }
    const viaHeaders = await request('POST', '/v2/models/mlp/infer', mlpRequest(33), { prefer: 'respond-async', 'gantry-callback-url': 'http://192.168.1.1/' });
    assert.equal(viaHeaders.status, 400, viaHeaders.text);
  });

  test('ten concurrent creations with one Idempotency-Key make one job; the others answer it or say to retry', async () => {
    const body = mlpRequest(50);
    const headers = { 'idempotency-key': `concurrent-${Date.now()}` };
    const replies = await Promise.all(Array.from({ length: 10 }, () => request('POST', '/v1/models/mlp/jobs', body, headers)));
    const statuses = replies.map((reply) => reply.status);
    assert.equal(statuses.filter((status) => status === 202).length, 1, `one creation: ${statuses.join(',')}`);
    assert.ok(
      statuses.every((status) => [200, 202, 503].includes(status)),
      statuses.join(','),
    );
    const id = replies.find((reply) => reply.status === 202)!.body.id as string;
    for (const reply of replies.filter((candidate) => candidate.status === 200)) assert.equal(reply.body.id, id);
    const again = await request('POST', '/v1/models/mlp/jobs', body, headers);
    assert.equal(again.status, 200, again.text);
    assert.equal(again.body.id, id);
    const listed = await request('GET', '/v1/jobs?limit=1000');
    assert.equal((listed.body.jobs as Json[]).filter((job) => job.id === id).length, 1);
    assert.equal((await settled(id)).state, 'succeeded');
  });

  test("usage: a job's request counts when it is made, its rows and compute once the worker has run it", async () => {
    assert.equal((await request('POST', '/v1/tenants', { id: 'jobs-usage' })).status, 201);
    const keyReply = await request('POST', '/v1/keys', { tenant: 'jobs-usage', name: 'metered', scopes: ['infer'] });
    assert.equal(keyReply.status, 201, keyReply.text);
    const key = keyReply.body.key as string;
    const upload = await fetch(`${gantry.baseUrl}/v1/models/jobs-usage~mlp/versions?wait=true`, {
      method: 'POST',
      headers: withAdminKey({ 'content-type': 'application/octet-stream' }),
      body: (await import('node:fs')).readFileSync(fixturePath('tiny-mlp.onnx')),
    });
    assert.equal(upload.status, 201, await upload.text());
    const ids: string[] = [];
    for (let index = 0; index < 3; index += 1) {
      const created = await request('POST', '/v1/models/mlp/jobs', mlpRequest(40 + index), {}, key);
      assert.equal(created.status, 202, created.text);
      ids.push(created.body.id as string);
    }
    for (const id of ids) assert.equal((await settled(id, key)).state, 'succeeded');
    let row: Json | undefined;
    await until(async () => {
      const report = await request('GET', '/v1/usage?groupBy=tenant');
      row = (report.body.usage as Json[] | undefined)?.find((candidate) => candidate.tenant === 'jobs-usage');
      // The API (requests) and the worker (rows, compute) flush on their own clocks.
      return row !== undefined && row.rows === 6 && row.requests === 3;
    }, 'the usage of three jobs of two rows');
    assert.equal(row!.requests, 3, JSON.stringify(row));
    assert.ok((row!.computeSeconds as number) > 0, JSON.stringify(row));
  });
});

describe('asynchronous jobs: the per-tenant cap', () => {
  let gantry: GantryProcess;
  before(async () => {
    gantry = await startGantry({ env: { GANTRY_MAX_JOBS_PER_TENANT: '2', GANTRY_WORKER_CONCURRENCY: '1', GANTRY_MAX_JSON_REQUEST_BYTES: '65536' } });
    const upload = await uploadModel(gantry.baseUrl, 'slow', fixturePath('slow.onnx'), '?wait=true');
    assert.equal(upload.status, 201, JSON.stringify(upload.body));
  });
  after(async () => {
    await gantry?.cleanup();
  });

  test('past GANTRY_MAX_JOBS_PER_TENANT unfinished jobs a creation gets 429 naming it; once they finish, jobs are taken again', async () => {
    const create = async (iterations: number) => {
      const response = await fetch(`${gantry.baseUrl}/v1/models/slow/jobs`, {
        method: 'POST',
        headers: withAdminKey({ 'content-type': 'application/json' }),
        body: JSON.stringify(slowRequest(iterations)),
      });
      return { status: response.status, retryAfter: response.headers.get('retry-after'), body: (await response.json()) as Json };
    };
    const first = await create(200_000);
    const second = await create(1000);
    assert.deepEqual([first.status, second.status], [202, 202]);
    const refused = await create(1000);
    assert.equal(refused.status, 429, JSON.stringify(refused.body));
    assert.match(refused.body.error as string, /GANTRY_MAX_JOBS_PER_TENANT/);
    assert.ok(refused.retryAfter !== null, 'Retry-After');
    const deadline = Date.now() + 30_000;
    for (;;) {
      const states = await Promise.all(
        [first, second].map(
          async (job) => ((await (await fetch(`${gantry.baseUrl}/v1/jobs/${job.body.id}`, { headers: withAdminKey() })).json()) as Json).state,
        ),
      );
      if (states.every((state) => state === 'succeeded')) break;
      assert.ok(Date.now() < deadline, `jobs still ${states.join(', ')}`);
      await sleep(100);
    }
    assert.equal((await create(1000)).status, 202, 'a finished job no longer counts');
  });

  test('a job body over GANTRY_MAX_JSON_REQUEST_BYTES is refused with 413 before it is read, and no job is made', async () => {
    const large = JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 40_000], data: new Array(40_000).fill(0.123456) }] });
    const response = await fetch(`${gantry.baseUrl}/v1/models/slow/jobs`, {
      method: 'POST',
      headers: withAdminKey({ 'content-type': 'application/json' }),
      body: large,
    });
    const body = (await response.json()) as Json;
    assert.equal(response.status, 413, JSON.stringify(body));
    assert.match(body.error as string, /GANTRY_MAX_JSON_REQUEST_BYTES/);
    const listed = (await (await fetch(`${gantry.baseUrl}/v1/jobs?limit=1000`, { headers: withAdminKey() })).json()) as Json;
    for (const job of listed.jobs as Json[]) assert.notEqual(job.state, 'queued', 'no job waits from the refused body');
  });
});
