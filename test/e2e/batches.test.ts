/**
 * Batch files (issue 16) against a real `gantry start` (API + worker, real Redis and onnxruntime): a JSONL body of
 * OIP requests is read as a stream, its lines run in chunks on the model's queue, and the results come back as
 * JSONL in input order, equal to what /infer answers for each line. Bad lines fail alone; the finished prefix can be
 * read while the batch runs; a cancel stops what has not started; another tenant sees nothing; limits refuse the
 * body before anything runs; a body cut off mid-upload leaves nothing behind.
 *
 * The worker takes one job at a time (GANTRY_WORKER_CONCURRENCY=1, GANTRY_ASYNC_WORKER_CONCURRENCY=1), so which
 * chunks a cancel finds running is known: the one running, no more.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { webhookQueueName } from '../../src/redis-keys.js';
import { verifyWebhookSignature } from '../../src/webhooks/webhook-signature.js';
import { fixturePath, inferJson, scanKeys, startGantry, uploadModel, withAdminKey, type GantryProcess } from '../helpers/gantry-process.js';
import { httpCall, type HttpReply } from '../helpers/http.js';
import { sampleValue } from '../helpers/metrics-text.js';
import { assertError, call, randomFloats, waitUntil } from './support.js';

const chunkLines = 16;
const maxLines = 300;
const maxLineBytes = 32 * 1024;
/** slow.onnx iterations per line: about 0.1 s a line (reliability-harness.ts: ~3.6 µs an iteration). */
const slowIterations = 30_000;

interface ResultLine {
  id: string;
  response?: Record<string, unknown>;
  error?: { error: string; code: string };
}

function jsonl(lines: readonly unknown[]): string {
  return lines.map((line) => (typeof line === 'string' ? line : JSON.stringify(line))).join('\n') + '\n';
}

function mlpRequest(seed: number, id?: string): Record<string, unknown> {
  return { ...(id === undefined ? {} : { id }), inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 256], data: randomFloats(seed, 256) }] };
}

function slowRequest(seed: number): Record<string, unknown> {
  return {
    inputs: [
      { name: 'iterations', datatype: 'INT64', shape: [], data: [slowIterations] },
      { name: 'x', datatype: 'FP32', shape: [1, 256], data: randomFloats(seed, 256) },
    ],
  };
}

function parseResults(text: string): ResultLine[] {
  return text
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as ResultLine);
}

describe('batch files (gantry start)', () => {
  let gantry: GantryProcess;
  let redis: Redis;
  let otherTenantKey = '';

  const submit = (model: string, body: string | Uint8Array, headers: Record<string, string> = withAdminKey(), query = ''): Promise<HttpReply> =>
    httpCall(gantry.baseUrl, 'POST', `/v1/models/${model}/batches${query}`, { headers: { ...headers, 'content-type': 'application/x-ndjson' }, body });
  const status = (id: string, headers: Record<string, string> = withAdminKey()) => httpCall(gantry.baseUrl, 'GET', `/v1/batches/${id}`, { headers });
  const results = (id: string, headers: Record<string, string> = withAdminKey()) => httpCall(gantry.baseUrl, 'GET', `/v1/batches/${id}/results`, { headers });

  async function waitForFinish(id: string): Promise<HttpReply> {
    let last: HttpReply | undefined;
    await waitUntil(
      async () => {
        last = await status(id);
        return last.status === 200 && last.body.finishedAt !== undefined;
      },
      60_000,
      `batch ${id} to finish`,
    );
    return last!;
  }

  before(async () => {
    gantry = await startGantry({
      env: {
        GANTRY_BATCH_CHUNK_LINES: String(chunkLines),
        GANTRY_MAX_BATCH_LINES: String(maxLines),
        GANTRY_MAX_BATCH_LINE_BYTES: String(maxLineBytes),
        GANTRY_MAX_BATCHES_PER_TENANT: '2',
        GANTRY_WORKER_CONCURRENCY: '1',
        GANTRY_ASYNC_WORKER_CONCURRENCY: '1',
        GANTRY_WEBHOOK_ALLOW: '127.0.0.1',
      },
    });
    redis = new Redis(gantry.redisUrl);
    for (const [name, fixture] of [
      ['mlp', 'tiny-mlp.onnx'],
      ['slow', 'slow.onnx'],
    ] as const) {
      const upload = await uploadModel(gantry.baseUrl, name, fixturePath(fixture));
      assert.equal(upload.status, 201, JSON.stringify(upload.body));
    }
    const tenant = await call(gantry.baseUrl, 'POST', '/v1/tenants', { id: 'acme' });
    assert.equal(tenant.status, 201, tenant.text);
    const key = await call(gantry.baseUrl, 'POST', '/v1/keys', { tenant: 'acme', name: 'acme batches', scopes: ['models:read', 'models:write', 'infer'] });
    assert.equal(key.status, 201, key.text);
    otherTenantKey = key.body.key as string;
  });
  after(async () => {
    redis?.disconnect();
    await gantry?.cleanup();
  });

  test('a 200-line batch completes and its results equal synchronous /infer answers line by line, in input order', async () => {
    const requests = Array.from({ length: 200 }, (_, line) => mlpRequest(1000 + line, line % 3 === 0 ? `request-${line}` : undefined));
    const created = await submit('mlp', jsonl(requests));
    assert.equal(created.status, 202, created.text);
    assert.equal(created.headers.get('location'), `/v1/batches/${created.body.id}`);
    assert.equal(created.body.total, 200);
    assert.equal(created.body.model, 'mlp');
    assert.equal(created.body.version, '1');
    assert.ok(['queued', 'running', 'succeeded'].includes(created.body.state), created.text);

    const finished = await waitForFinish(created.body.id);
    assert.equal(finished.body.state, 'succeeded', finished.text);
    assert.deepEqual(
      { total: finished.body.total, succeeded: finished.body.succeeded, failed: finished.body.failed, running: finished.body.running },
      { total: 200, succeeded: 200, failed: 0, running: 0 },
    );

    const reply = await results(created.body.id);
    assert.equal(reply.status, 200, reply.text);
    assert.match(reply.headers.get('content-type') ?? '', /^application\/x-ndjson/);
    assert.equal(reply.headers.get('gantry-batch-lines'), '200');
    assert.equal(reply.headers.get('gantry-batch-state'), 'succeeded');
    const lines = parseResults(reply.text);
    assert.equal(lines.length, 200);
    for (const [line, request] of requests.entries()) {
      const expected = await inferJson(gantry.baseUrl, 'mlp', request);
      assert.equal(expected.status, 200, JSON.stringify(expected.body));
      assert.equal(lines[line]!.id, (request.id as string | undefined) ?? String(line), `line ${line}'s id`);
      assert.deepEqual(lines[line]!.response, expected.body, `line ${line}'s response`);
    }
    // Not only the same values: the same text /infer sends.
    const firstSync = await httpCall(gantry.baseUrl, 'POST', '/v2/models/mlp/infer', {
      headers: withAdminKey({ 'content-type': 'application/json' }),
      body: JSON.stringify(requests[0]),
    });
    assert.equal(reply.text.split('\n')[0], `{"id":${JSON.stringify(lines[0]!.id)},"response":${firstSync.text}}`);

    const listed = await httpCall(gantry.baseUrl, 'GET', '/v1/batches', { headers: withAdminKey() });
    assert.equal(listed.status, 200, listed.text);
    assert.ok(
      listed.body.batches.some((batch: { id: string }) => batch.id === created.body.id),
      listed.text,
    );
    const filtered = await httpCall(gantry.baseUrl, 'GET', '/v1/batches?state=succeeded&model=mlp', { headers: withAdminKey() });
    assert.deepEqual(
      filtered.body.batches.map((batch: { id: string }) => batch.id),
      [created.body.id],
    );
    const none = await httpCall(gantry.baseUrl, 'GET', '/v1/batches?state=running', { headers: withAdminKey() });
    assert.deepEqual(none.body.batches, []);
  });

  test('a bad line fails alone with its reason; the others run', async () => {
    const good = [mlpRequest(1), mlpRequest(2, 'last')];
    const body = jsonl([
      good[0],
      '{"inputs": [ this is not JSON',
      { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] },
      { id: 'no-inputs' },
      { ...mlpRequest(3), outputs: [{ name: 'output', parameters: { binary_data: true } }] },
      good[1],
    ]);
    const created = await submit('mlp', body);
    assert.equal(created.status, 202, created.text);
    assert.equal(created.body.total, 6);
    const finished = await waitForFinish(created.body.id);
    assert.equal(finished.body.state, 'succeeded', finished.text);
    assert.equal(finished.body.succeeded, 2);
    assert.equal(finished.body.failed, 4);
    assert.equal(finished.body.invalid, 4);

    const lines = parseResults((await results(created.body.id)).text);
    assert.deepEqual(
      lines.map((line) => line.id),
      ['0', '1', '2', 'no-inputs', '4', 'last'],
    );
    assert.equal(lines[1]!.error?.code, 'INVALID_ARGUMENT');
    assert.match(lines[1]!.error!.error, /not valid JSON/);
    assert.equal(lines[2]!.error?.code, 'INVALID_ARGUMENT');
    assert.match(lines[2]!.error!.error, /shape/i);
    assert.equal(lines[3]!.error?.code, 'INVALID_ARGUMENT');
    assert.match(lines[3]!.error!.error, /inputs/);
    assert.equal(lines[4]!.error?.code, 'INVALID_ARGUMENT');
    assert.match(lines[4]!.error!.error, /binary_data/);
    for (const [index, line] of [
      [0, lines[0]!],
      [1, lines[5]!],
    ] as const) {
      const expected = await inferJson(gantry.baseUrl, 'mlp', good[index]);
      assert.deepEqual(line.response, expected.body);
      assert.equal(line.error, undefined);
    }
  });

  test('lines with their own output options, and exact 64-bit integers, are answered as /infer answers them', async () => {
    const upload = await uploadModel(gantry.baseUrl, 'int64', fixturePath('identity-int64.onnx'));
    assert.equal(upload.status, 201, JSON.stringify(upload.body));
    const exact = '{"id":"big","inputs":[{"name":"input","shape":[1,3],"datatype":"INT64","data":[9007199254740993,-9223372036854775808,42]}]}';
    const created = await submit('int64', `${exact}\n${exact.replace('"big"', '"again"')}\n`);
    assert.equal(created.status, 202, created.text);
    await waitForFinish(created.body.id);
    const text = (await results(created.body.id)).text;
    const sync = await httpCall(gantry.baseUrl, 'POST', '/v2/models/int64/infer', {
      headers: withAdminKey({ 'content-type': 'application/json' }),
      body: exact,
    });
    assert.equal(sync.status, 200, sync.text);
    // The response is /infer's text exactly: 2^53 + 1 and -2^63 survive (a JSON.parse round trip would round them).
    assert.equal(text.split('\n')[0], `{"id":"big","response":${sync.text}}`);
    assert.match(text, /9007199254740993,-9223372036854775808,42/);

    const plain = mlpRequest(21);
    const classified = { ...mlpRequest(22), outputs: [{ name: 'output', parameters: { classification: 3 } }] };
    const mixed = await submit('mlp', jsonl([plain, classified, plain]));
    assert.equal(mixed.status, 202, mixed.text);
    await waitForFinish(mixed.body.id);
    const lines = parseResults((await results(mixed.body.id)).text);
    for (const [index, request] of [plain, classified, plain].entries()) {
      const expected = await inferJson(gantry.baseUrl, 'mlp', request);
      assert.equal(expected.status, 200, JSON.stringify(expected.body));
      assert.deepEqual(lines[index]!.response, expected.body, `line ${index}`);
    }
    assert.equal((lines[1]!.response!.outputs as Array<{ datatype: string }>)[0]!.datatype, 'BYTES', 'classified');
  });

  test('while a batch runs its finished prefix can be read; a cancel stops the chunks not started', async () => {
    const total = 4 * chunkLines;
    const created = await submit('slow', jsonl(Array.from({ length: total }, (_, line) => slowRequest(line))));
    assert.equal(created.status, 202, created.text);
    const id = created.body.id as string;

    let running: HttpReply | undefined;
    await waitUntil(
      async () => {
        running = await status(id);
        return running.body.succeeded > 0;
      },
      30_000,
      'the first chunk to finish',
    );
    assert.equal(running!.body.state, 'running', running!.text);
    const prefix = await results(id);
    assert.equal(prefix.status, 200, prefix.text);
    const prefixLength = Number(prefix.headers.get('gantry-batch-lines'));
    const prefixLines = parseResults(prefix.text);
    assert.equal(prefixLines.length, prefixLength);
    assert.ok(prefixLength >= chunkLines && prefixLength < total, `prefix of ${prefixLength} lines`);
    assert.deepEqual(
      prefixLines.map((line) => line.id),
      Array.from({ length: prefixLength }, (_, line) => String(line)),
    );
    for (const line of prefixLines) assert.ok(line.response !== undefined, JSON.stringify(line));

    const cancelled = await httpCall(gantry.baseUrl, 'DELETE', `/v1/batches/${id}`, { headers: withAdminKey() });
    assert.equal(cancelled.status, 200, cancelled.text);
    assert.equal(cancelled.body.state, 'cancelled');
    const finished = await waitForFinish(id);
    assert.equal(finished.body.state, 'cancelled', finished.text);
    // One worker taking one job at a time: at most the chunk running then (and the one just finishing) ran.
    assert.ok(finished.body.cancelled >= chunkLines, finished.text);
    assert.equal(finished.body.succeeded + finished.body.failed + finished.body.cancelled, total, finished.text);
    assert.equal(finished.body.running, 0);

    const all = parseResults((await results(id)).text);
    assert.equal(all.length, total);
    const cancelledLines = all.filter((line) => line.error?.code === 'CANCELLED');
    assert.equal(cancelledLines.length, finished.body.cancelled);
    assert.equal(all.filter((line) => line.response !== undefined).length, finished.body.succeeded);
    // A cancelled chunk never ran: the worker's statistics (flushed about every second) count only the lines that did.
    const successes = async () => {
      const stats = await httpCall(gantry.baseUrl, 'GET', '/v2/models/slow/stats', { headers: withAdminKey() });
      assert.equal(stats.status, 200, stats.text);
      return stats.body.model_stats[0].inference_stats.success.count as number;
    };
    // The cancelled chunks' jobs are still taken by the worker (and end without running): wait for the model's
    // queues (whatever they are named: BullMQ keeps `<prefix>:<queue>:meta` for each) to drain.
    const queueNames = [
      ...new Set((await scanKeys(redis, `${gantry.prefix}:*{slow}:meta`)).map((key) => key.slice(gantry.prefix.length + 1, -':meta'.length))),
    ];
    assert.ok(queueNames.length > 0);
    const queues = queueNames.map((name) => new Queue(name, { connection: redis, prefix: gantry.prefix }));
    try {
      await waitUntil(
        async () => {
          for (const queue of queues) {
            const counts = await queue.getJobCounts('active', 'wait', 'prioritized', 'delayed');
            if (Object.values(counts).some((count) => count !== 0)) return false;
          }
          return true;
        },
        30_000,
        'the slow queues to drain',
      );
    } finally {
      await Promise.all(queues.map((queue) => queue.close()));
    }
    await waitUntil(async () => (await successes()) >= finished.body.succeeded, 10_000, 'the statistics to count the lines that ran');
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(await successes(), finished.body.succeeded);
    assert.equal((await status(id)).body.succeeded, finished.body.succeeded, 'no line ran after the batch finished');
  });

  test('a batch with a callback gets one signed batch.finished webhook, listed in its deliveries', async () => {
    const received: Array<{ signature: string; body: string }> = [];
    const receiver = http.createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      request.on('end', () => {
        received.push({ signature: String(request.headers['gantry-signature'] ?? ''), body });
        response.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    try {
      const port = (receiver.address() as { port: number }).port;
      const created = await submit(
        'mlp',
        jsonl([mlpRequest(31), '{not json']),
        withAdminKey({ 'gantry-callback-url': `http://127.0.0.1:${port}/hook`, 'gantry-callback-secret': 'batch-secret' }),
      );
      assert.equal(created.status, 202, created.text);
      await waitUntil(async () => received.length > 0, 30_000, 'the webhook');
      const [delivery] = received;
      assert.ok(verifyWebhookSignature(delivery!.signature, 'batch-secret', delivery!.body, Math.floor(Date.now() / 1000)), delivery!.signature);
      const body = JSON.parse(delivery!.body);
      assert.equal(body.type, 'batch.finished');
      assert.equal(body.batch.id, created.body.id);
      assert.equal(body.batch.state, 'succeeded');
      assert.deepEqual([body.batch.total, body.batch.succeeded, body.batch.failed], [2, 1, 1]);
      await waitUntil(async () => (await status(created.body.id)).body.deliveries?.length === 1, 10_000, 'the delivery to be listed');
      assert.equal((await status(created.body.id)).body.deliveries[0].status, 204);
      assert.equal(received.length, 1, 'delivered once');
    } finally {
      await new Promise((resolve) => receiver.close(resolve));
    }
  });

  test("another tenant's key gets 404 for a batch, its results and its cancel, and does not list it", async () => {
    const created = await submit('mlp', jsonl([mlpRequest(7)]));
    assert.equal(created.status, 202, created.text);
    const id = created.body.id as string;
    const other = { authorization: `Bearer ${otherTenantKey}` };
    assertError(await status(id, other), 404, 'NOT_FOUND', /Unknown batch/);
    assertError(await results(id, other), 404, 'NOT_FOUND', /Unknown batch/);
    assertError(await httpCall(gantry.baseUrl, 'DELETE', `/v1/batches/${id}`, { headers: other }), 404, 'NOT_FOUND');
    const listed = await httpCall(gantry.baseUrl, 'GET', '/v1/batches', { headers: other });
    assert.equal(listed.status, 200, listed.text);
    assert.ok(!listed.text.includes(id), listed.text);
    // The owner still sees it.
    assert.equal((await status(id)).status, 200);
    await waitForFinish(id);
  });

  test('limits refuse the body clearly and no batch is created: a line too long, too many lines, no lines', async () => {
    const before = await httpCall(gantry.baseUrl, 'GET', '/v1/batches?limit=100', { headers: withAdminKey() });
    const longLine = { ...mlpRequest(1), id: 'x'.repeat(maxLineBytes) };
    assertError(await submit('mlp', jsonl([mlpRequest(1), longLine])), 413, 'PAYLOAD_TOO_LARGE', /GANTRY_MAX_BATCH_LINE_BYTES/);
    assertError(await submit('mlp', jsonl(Array.from({ length: maxLines + 1 }, () => '{}'))), 413, 'PAYLOAD_TOO_LARGE', /GANTRY_MAX_BATCH_LINES/);
    assertError(await submit('mlp', '\n\n'), 400, 'INVALID_ARGUMENT', /no lines/);
    const asJson = await httpCall(gantry.baseUrl, 'POST', '/v1/models/mlp/batches', { headers: withAdminKey(), body: mlpRequest(1) });
    assert.equal(asJson.status, 415, asJson.text);
    assertError(await submit('mlp', jsonl([mlpRequest(1)]), withAdminKey(), '?retention=999999999'), 400, 'INVALID_ARGUMENT', /GANTRY_JOB_MAX_RETENTION_S/);
    assertError(await submit('no-such-model', jsonl([mlpRequest(1)])), 404, 'NOT_FOUND');
    const privateHook = withAdminKey({ 'gantry-callback-url': 'http://10.1.2.3/hook' });
    assertError(await submit('mlp', jsonl([mlpRequest(1)]), privateHook), 400, 'INVALID_ARGUMENT', /not a public address.*GANTRY_WEBHOOK_ALLOW/);
    const metrics = (await httpCall(gantry.baseUrl, 'GET', '/metrics', { headers: withAdminKey() })).text;
    for (const limit of ['batch_line_bytes', 'batch_lines']) assert.ok(sampleValue(metrics, 'gantry_limit_rejections_total', { limit }) >= 1, limit);
    const afterwards = await httpCall(gantry.baseUrl, 'GET', '/v1/batches?limit=100', { headers: withAdminKey() });
    assert.deepEqual(
      afterwards.body.batches.map((batch: { id: string }) => batch.id),
      before.body.batches.map((batch: { id: string }) => batch.id),
    );
  });

  test('a body cut off mid-upload leaves no batch and queues nothing', async () => {
    const request = http.request(`${gantry.baseUrl}/v1/models/mlp/batches`, {
      method: 'POST',
      headers: withAdminKey({ 'content-type': 'application/x-ndjson', 'content-length': String(50 * 1024 * 1024) }),
    });
    request.on('error', () => undefined);
    request.write(jsonl(Array.from({ length: 3 * chunkLines }, (_, line) => mlpRequest(line))));
    // The batch exists while its body is being received (so the check below can fail)...
    await waitUntil(async () => (await scanKeys(redis, `${gantry.prefix}:batch{*}:input:1`)).length > 0, 10_000, 'the upload to write two chunks');
    const [inputKey] = await scanKeys(redis, `${gantry.prefix}:batch{*}:input:1`);
    const id = /batch\{([^}]+)\}/.exec(inputKey!)![1]!;
    assert.equal(await redis.hget(`${gantry.prefix}:batch{${id}}`, 'state'), 'receiving');
    // ...and is gone once the connection drops, with nothing queued.
    request.destroy();
    await waitUntil(async () => (await scanKeys(redis, `${gantry.prefix}:batch{${id}}*`)).length === 0, 10_000, 'the cut-off batch to be removed');
    assert.deepEqual(await scanKeys(redis, `${gantry.prefix}:*{mlp}:batch-${id}-*`), [], 'no chunk job in any of the model queues');
    const listed = await httpCall(gantry.baseUrl, 'GET', '/v1/batches?limit=100', { headers: withAdminKey() });
    assert.ok(!listed.text.includes(id), listed.text);
  });

  test('a tenant past GANTRY_MAX_BATCHES_PER_TENANT unfinished batches is refused with 429 naming it', async () => {
    const acme = { authorization: `Bearer ${otherTenantKey}` };
    const upload = await httpCall(gantry.baseUrl, 'POST', '/v1/models/slow/versions', {
      headers: { ...acme, 'content-type': 'application/octet-stream' },
      body: await import('node:fs/promises').then((fs) => fs.readFile(fixturePath('slow.onnx'))),
    });
    assert.equal(upload.status, 201, upload.text);
    const body = jsonl(Array.from({ length: 2 * chunkLines }, (_, line) => slowRequest(line)));
    const first = await submit('slow', body, acme);
    assert.equal(first.body.model, 'slow', 'its tenant sees the bare name');
    assert.equal((await status(first.body.id)).body.model, 'acme~slow', 'an admin of another tenant sees the qualified name');
    const hook = { 'gantry-callback-url': 'http://127.0.0.1:9/batches', 'gantry-callback-secret': 's3cret' };
    const second = await submit('slow', body, { ...acme, ...hook });
    assert.equal(first.status, 202, first.text);
    assert.equal(second.status, 202, second.text);
    assert.deepEqual(second.body.callback, { url: 'http://127.0.0.1:9/batches' });
    assert.ok(!second.text.includes('s3cret'), 'the secret is never shown');
    assertError(await submit('slow', body, acme), 429, 'RESOURCE_EXHAUSTED', /GANTRY_MAX_BATCHES_PER_TENANT/);
    const metrics = (await httpCall(gantry.baseUrl, 'GET', '/metrics', { headers: withAdminKey() })).text;
    assert.ok(sampleValue(metrics, 'gantry_limit_rejections_total', { limit: 'batches_per_tenant' }) >= 1);
    assert.ok(sampleValue(metrics, 'gantry_async_created_total', { kind: 'batch', outcome: 'created' }) >= 2);
    // The worker takes one job at a time, oldest first, so no chunk of the second batch started (the first batch's
    // chunks take over a second each): its cancel answers every line, finishes it and queues its webhook.
    const cancelledIdle = await httpCall(gantry.baseUrl, 'DELETE', `/v1/batches/${second.body.id}`, { headers: acme });
    assert.equal(cancelledIdle.status, 200, cancelledIdle.text);
    assert.equal(cancelledIdle.body.state, 'cancelled');
    assert.equal(cancelledIdle.body.cancelled, 2 * chunkLines, cancelledIdle.text);
    assert.ok(cancelledIdle.body.finishedAt !== undefined, cancelledIdle.text);
    const webhooks = new Queue(webhookQueueName, { connection: redis, prefix: gantry.prefix });
    try {
      const queued = await webhooks.getJob(`batch-${second.body.id}`);
      assert.ok(queued !== undefined, 'the finished batch has a webhook queued');
      assert.deepEqual({ kind: queued.data.kind, id: queued.data.id }, { kind: 'batch', id: second.body.id });
    } finally {
      await webhooks.close();
    }
    // Another tenant is not held back by this one's batches.
    const mine = await submit('mlp', jsonl([mlpRequest(5)]));
    assert.equal(mine.status, 202, mine.text);
    const cancelled = await httpCall(gantry.baseUrl, 'DELETE', `/v1/batches/${first.body.id}`, { headers: acme });
    assert.equal(cancelled.status, 200, cancelled.text);
    await waitForFinish(first.body.id);
    await waitForFinish(second.body.id);
    await waitForFinish(mine.body.id);
    const third = await submit('slow', jsonl([slowRequest(1)]), acme);
    assert.equal(third.status, 202, third.text);
    await waitForFinish(third.body.id);
  });

  test('usage and quotas: each queued line is an inference request; a tenant past its quota is refused before its body is read', async () => {
    assert.equal((await call(gantry.baseUrl, 'POST', '/v1/tenants', { id: 'metered' })).status, 201);
    const limits = await call(gantry.baseUrl, 'PUT', '/v1/tenants/metered/limits', { requestsPerDay: 5 });
    assert.equal(limits.status, 200, limits.text);
    const key = await call(gantry.baseUrl, 'POST', '/v1/keys', { tenant: 'metered', name: 'metered', scopes: ['models:write', 'infer'] });
    assert.equal(key.status, 201, key.text);
    const metered = { authorization: `Bearer ${key.body.key as string}` };
    const upload = await httpCall(gantry.baseUrl, 'POST', '/v1/models/mlp/versions', {
      headers: { ...metered, 'content-type': 'application/octet-stream' },
      body: await import('node:fs/promises').then((fs) => fs.readFile(fixturePath('tiny-mlp.onnx'))),
    });
    assert.equal(upload.status, 201, upload.text);
    // Three good lines and one the model refuses: three requests.
    const first = await submit(
      'mlp',
      jsonl([mlpRequest(1), mlpRequest(2), { inputs: [{ name: 'nope', datatype: 'FP32', shape: [1], data: [1] }] }, mlpRequest(3)]),
      metered,
    );
    assert.equal(first.status, 202, first.text);
    await waitForFinish(first.body.id);
    await waitUntil(
      async () => {
        const report = await call(gantry.baseUrl, 'GET', '/v1/usage?groupBy=tenant');
        const row = (report.body.usage as Array<Record<string, number | string>>).find((candidate) => candidate.tenant === 'metered');
        return row?.requests === 3 && row?.rows === 3;
      },
      10_000,
      'the usage of three queued lines',
    );
    // Under the quota (3 of 5) when it is read: taken whole, although it goes past it.
    const second = await submit('mlp', jsonl([mlpRequest(4), mlpRequest(5), mlpRequest(6)]), metered);
    assert.equal(second.status, 202, second.text);
    await waitForFinish(second.body.id);
    assertError(await submit('mlp', jsonl([mlpRequest(7)]), metered), 429, 'RESOURCE_EXHAUSTED', /requestsPerDay|quota/);
  });

  test('every key the batches above left in Redis expires (records, lines, results, chunk sets)', async () => {
    const keys = await scanKeys(redis, `${gantry.prefix}:batch{*`);
    assert.ok(keys.length > 0);
    for (const key of keys) assert.ok((await redis.pttl(key)) > 0, `${key} has no TTL`);
  });
});
