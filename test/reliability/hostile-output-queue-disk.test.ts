/**
 * Hostile callers against real processes (issue 10): output amplification, unbounded queues and the disk. Each
 * case shows the bounded outcome: a clear 4xx/429/507 for the offender, no process dies, peak RSS under a stated
 * bound (VmHWM through /proc), nothing large through Redis, and a well-behaved caller answered meanwhile.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Redis } from 'ioredis';
import type { JsonBody } from '../../support/json-body.js';
import { fixturePath, startGantry, uploadModel, withAdminKey, type GantryProcess } from '../helpers/gantry-process.js';
import {
  Cleanup,
  activeJobs,
  countStatuses,
  describeReply,
  infer,
  isAlive,
  mlpRequest,
  peakRssBytes,
  putConfig,
  resetPeakRss,
  rssBytes,
  slowRequest,
  sumMetric,
  timedCall,
  waitUntil,
  workerChildOf,
  type TimedReply,
} from '../helpers/reliability-harness.js';

const mebibyte = 1024 ** 2;

/** A well-behaved caller: tiny-mlp requests one after another until `stop` resolves; returns every reply. */
async function wellBehavedCaller(baseUrl: string, stop: Promise<unknown>): Promise<TimedReply[]> {
  let stopped = false;
  void stop.finally(() => (stopped = true));
  const replies: TimedReply[] = [];
  while (!stopped || replies.length === 0) replies.push(await infer(baseUrl, 'tiny-mlp', mlpRequest(replies.length), 30_000));
  return replies;
}

function assertAllAnswered(replies: readonly TimedReply[], what: string): void {
  const failed = replies.filter((reply) => reply.status !== 200);
  assert.equal(
    failed.length,
    0,
    `${what}: the well-behaved caller got ${JSON.stringify(countStatuses(replies))}; first: ${failed[0] === undefined ? '' : describeReply(failed[0])}`,
  );
}

async function metricsText(url: string): Promise<string> {
  const response = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) });
  return response.text();
}

function limitCount(text: string, metric: string, limit: string): number {
  return sumMetric(
    text
      .split('\n')
      .filter((line) => line.startsWith('#') || line.includes(`limit="${limit}"`))
      .join('\n'),
    metric,
  );
}

function amplifierRequest(rows: number, columns: number, binary: boolean): unknown {
  return {
    ...(binary ? { parameters: { binary_data_output: true } } : {}),
    inputs: [{ name: 'shape', datatype: 'INT64', shape: [2], data: [rows, columns] }],
  };
}

/** POSTs JSON and reads a binary-extension reply: its status, JSON header and the byte length after it. */
async function binaryInfer(baseUrl: string, model: string, request: unknown): Promise<{ status: number; header: JsonBody; tensorBytes: number }> {
  const response = await fetch(`${baseUrl}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: withAdminKey({ 'content-type': 'application/json' }),
    body: JSON.stringify(request),
    signal: AbortSignal.timeout(30_000),
  });
  const body = Buffer.from(await response.arrayBuffer());
  const headerLength = Number(response.headers.get('inference-header-content-length') ?? body.byteLength);
  return { status: response.status, header: JSON.parse(body.subarray(0, headerLength).toString('utf8')), tensorBytes: body.byteLength - headerLength };
}

/** Records the size of every reply message published under a prefix (the pub/sub body and a body key's announced length). */
async function tapReplies(redisUrl: string, prefix: string, cleanup: Cleanup): Promise<{ largest: () => number; reset: () => void }> {
  const tap = new Redis(redisUrl);
  cleanup.add(() => tap.disconnect());
  let largest = 0;
  tap.on('pmessageBuffer', (_pattern: Buffer, _channel: Buffer, message: Buffer) => {
    const headerLength = message.readUInt32LE(0);
    const header = JSON.parse(message.toString('utf8', 4, 4 + headerLength)) as { bodyLength?: number };
    largest = Math.max(largest, message.byteLength, header.bodyLength ?? 0);
  });
  await tap.psubscribe(`${prefix}:reply:*`);
  return { largest: () => largest, reset: () => (largest = 0) };
}

/** Bytes Redis uses for every key under a prefix (MEMORY USAGE, summed): what this test's deployment costs it. */
async function prefixMemoryBytes(redisUrl: string, prefix: string): Promise<number> {
  const redis = new Redis(redisUrl);
  try {
    let total = 0;
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      for (const key of keys) total += Number((await redis.call('MEMORY', 'USAGE', key)) ?? 0);
    } while (cursor !== '0');
    return total;
  } finally {
    redis.disconnect();
  }
}

describe('output amplification: a 241-byte model asked for [10000, 10000] FP32 (400 MB)', { timeout: 180_000 }, () => {
  const cleanup = new Cleanup();
  let gantry: GantryProcess;
  let workerPid: number;
  const maxResponseBytes = 8 * mebibyte;
  const maxJsonElements = 100_000;

  before(async () => {
    gantry = await startGantry({ env: { GANTRY_MAX_RESPONSE_BYTES: String(maxResponseBytes), GANTRY_MAX_JSON_OUTPUT_ELEMENTS: String(maxJsonElements) } });
    cleanup.add(() => gantry.cleanup());
    workerPid = workerChildOf(gantry, cleanup);
    for (const [name, file] of [
      ['amplifier', 'amplifier.onnx'],
      ['tiny-mlp', 'tiny-mlp.onnx'],
    ] as const) {
      const upload = await uploadModel(gantry.baseUrl, name, fixturePath(file));
      assert.equal(upload.status, 201, JSON.stringify(upload.body));
    }
  });
  after(() => cleanup.run());

  test('refused with 400 naming size and limit, in JSON and binary; nothing large crosses Redis; bounded RSS; others answered', async () => {
    const tap = await tapReplies(gantry.redisUrl, gantry.prefix, cleanup);
    const apiPid = gantry.child.pid!;
    const workerIdle = await rssBytes(workerPid);
    await resetPeakRss(apiPid);
    await resetPeakRss(workerPid);

    let finish!: () => void;
    const done = new Promise<void>((resolve) => (finish = resolve));
    const caller = wellBehavedCaller(gantry.baseUrl, done);
    const hostile = await Promise.all([
      infer(gantry.baseUrl, 'amplifier', amplifierRequest(10_000, 10_000, false), 60_000),
      infer(gantry.baseUrl, 'amplifier', amplifierRequest(10_000, 10_000, true), 60_000),
      infer(gantry.baseUrl, 'amplifier', amplifierRequest(10_000, 10_000, true), 60_000),
    ]);
    finish();
    const wellBehaved = await caller;

    for (const reply of hostile) {
      assert.equal(reply.status, 400, describeReply(reply));
      assert.equal(reply.body.code, 'OUTPUT_TOO_LARGE', describeReply(reply));
      assert.match(reply.body.error, /400000000 bytes/, 'names the size');
      assert.match(reply.body.error, new RegExp(`GANTRY_MAX_RESPONSE_BYTES \\(${maxResponseBytes}\\)`), 'names the limit');
    }
    assertAllAnswered(wellBehaved, 'during the amplification');
    // Only the well-behaved caller's 64-byte outputs were published: no 400 MB reply, no body key.
    assert.ok(tap.largest() < 64 * 1024, `largest reply message ${tap.largest()} bytes`);

    const apiPeak = await peakRssBytes(apiPid);
    const workerPeak = await peakRssBytes(workerPid);
    console.log(
      `# amplifier: API peak RSS ${(apiPeak / mebibyte).toFixed(0)} MiB, worker ${(workerPeak / mebibyte).toFixed(0)} MiB (idle ${(workerIdle / mebibyte).toFixed(0)} MiB); well-behaved ${wellBehaved.length} × 200`,
    );
    // The API never holds the output: its peak is its idle size plus small requests (idle ~110 MiB here).
    assert.ok(apiPeak < 300 * mebibyte, `API peak RSS ${apiPeak}`);
    // The worker pays for what onnxruntime made before it can be measured (400 MB natively, then its copy as a JS
    // buffer, freed at the next GC): measured +1.1-1.2 GiB over idle for three such requests in a row; the bound
    // is what a container limit would need, and nothing of it is sent on.
    assert.ok(workerPeak - workerIdle < 1600 * mebibyte, `worker peak RSS ${workerPeak}, idle ${workerIdle}`);
    assert.ok(isAlive(apiPid) && isAlive(workerPid), 'API and worker alive');

    const workerMetrics = await metricsText(gantry.workerUrl);
    assert.ok(limitCount(workerMetrics, 'gantry_worker_limit_trips_total', 'output_bytes') >= 3, 'worker counts output_bytes trips');
    const apiMetrics = await metricsText(gantry.baseUrl);
    assert.ok(limitCount(apiMetrics, 'gantry_limit_rejections_total', 'output_bytes') >= 3, 'API counts output_bytes rejections');
  });

  test('binary output just under GANTRY_MAX_RESPONSE_BYTES works; just over is refused', async () => {
    const under = await binaryInfer(gantry.baseUrl, 'amplifier', amplifierRequest(2048, 1023, true));
    assert.equal(under.status, 200, JSON.stringify(under.header));
    assert.equal(under.tensorBytes, 2048 * 1023 * 4);
    assert.deepEqual(under.header.outputs[0].shape, [2048, 1023]);
    const over = await infer(gantry.baseUrl, 'amplifier', amplifierRequest(2048, 1025, true));
    assert.equal(over.status, 400, describeReply(over));
    assert.match(over.body.error, new RegExp(`${2048 * 1025 * 4} bytes`));
  });

  test('JSON output over GANTRY_MAX_JSON_OUTPUT_ELEMENTS gets the binary_data_output hint; the same as binary works', async () => {
    const json = await infer(gantry.baseUrl, 'amplifier', amplifierRequest(400, 400, false));
    assert.equal(json.status, 400, describeReply(json));
    assert.equal(json.body.code, 'OUTPUT_TOO_LARGE');
    assert.match(json.body.error, /160000 elements/);
    assert.match(json.body.error, new RegExp(`GANTRY_MAX_JSON_OUTPUT_ELEMENTS \\(${maxJsonElements}\\)`));
    assert.match(json.body.error, /binary_data_output/);
    const binary = await binaryInfer(gantry.baseUrl, 'amplifier', amplifierRequest(400, 400, true));
    assert.equal(binary.status, 200, JSON.stringify(binary.header));
    const small = await infer(gantry.baseUrl, 'amplifier', amplifierRequest(300, 300, false));
    assert.equal(small.status, 200, describeReply(small));
    assert.equal(small.body.outputs[0].data.length, 90_000);
    assert.ok(limitCount(await metricsText(gantry.baseUrl), 'gantry_limit_rejections_total', 'json_output') >= 1, 'API counts json_output');
  });
});

describe('unbounded queues: the worker busy on slow.onnx while one caller keeps queueing', { timeout: 180_000 }, () => {
  const cleanup = new Cleanup();
  let gantry: GantryProcess;
  let workerPid: number;
  /** Room for ~15 slow.onnx requests (1,032 input bytes + 1,024 counted per request). */
  const maxQueuedBytes = 32 * 1024;

  before(async () => {
    gantry = await startGantry({ env: { GANTRY_MAX_QUEUED_BYTES_PER_MODEL: String(maxQueuedBytes) } });
    cleanup.add(() => gantry.cleanup());
    workerPid = workerChildOf(gantry, cleanup);
    for (const [name, file] of [
      ['slow', 'slow.onnx'],
      ['tiny-mlp', 'tiny-mlp.onnx'],
    ] as const) {
      const upload = await uploadModel(gantry.baseUrl, name, fixturePath(file));
      assert.equal(upload.status, 201, JSON.stringify(upload.body));
    }
    const config = await putConfig(gantry.baseUrl, 'slow', { instances: 1, maxBatchSize: 0 });
    assert.equal(config.status, 200, describeReply(config));
  });
  after(() => cleanup.run());

  /** Starts a slow.onnx run of ~5 s and waits until the worker has taken it (the reply comes in `busy`). */
  async function occupyWorker(): Promise<{ busy: Promise<TimedReply> }> {
    const busy = infer(gantry.baseUrl, 'slow', slowRequest(1_500_000), 60_000);
    const waited = await waitUntil(async () => (await activeJobs(gantry.redisUrl, gantry.prefix, 'slow')) >= 1, 10_000, 'the worker to take the slow job');
    console.log(`# occupy: active after ${waited} ms`);
    // Wrapped: an async function returning the promise itself would wait for it.
    return { busy };
  }

  test('past GANTRY_MAX_QUEUED_BYTES_PER_MODEL: 429 + Retry-After at once, Redis bounded, other models answered', async () => {
    const { busy } = await occupyWorker();
    let finish!: () => void;
    const done = new Promise<void>((resolve) => (finish = resolve));
    const caller = wellBehavedCaller(gantry.baseUrl, done);
    // Every request with its own priority: each would otherwise be its own lane with its own job in Redis.
    const flood = Array.from({ length: 60 }, (_, index) => infer(gantry.baseUrl, 'slow', slowRequest(1, { priority: index + 1 }), 60_000));
    await Promise.race([Promise.all(flood.slice(0, 1)), new Promise((resolve) => setTimeout(resolve, 500))]);
    const redisBytes = await prefixMemoryBytes(gantry.redisUrl, gantry.prefix);
    const replies = await Promise.all(flood);
    finish();
    const wellBehaved = await caller;
    const busyReply = await busy;

    const counts = countStatuses(replies);
    const refused = replies.filter((reply) => reply.status === 429);
    console.log(`# queued bytes: ${JSON.stringify(counts)}; Redis under the prefix ${(redisBytes / 1024).toFixed(0)} KiB while flooded`);
    assert.equal(busyReply.status, 200, describeReply(busyReply));
    assert.equal(refused.length + replies.filter((reply) => reply.status === 200).length, 60, JSON.stringify(counts));
    // ~15 fit under the cap with the busy one; the rest are refused.
    assert.ok(refused.length >= 40, `past the queued-bytes cap most are refused: ${JSON.stringify(counts)}`);
    for (const reply of refused) {
      assert.equal(reply.body.code, 'RESOURCE_EXHAUSTED', describeReply(reply));
      assert.match(reply.body.error, /GANTRY_MAX_QUEUED_BYTES_PER_MODEL/);
      assert.match(reply.headers.get('retry-after') ?? '', /^\d+$/);
    }
    // Registry, config, statistics and at most ~16 queued jobs: well under a megabyte.
    assert.ok(redisBytes < mebibyte, `Redis holds ${redisBytes} bytes for this deployment`);
    assertAllAnswered(wellBehaved, 'while slow.onnx was flooded');
    assert.ok(limitCount(await metricsText(gantry.baseUrl), 'gantry_limit_rejections_total', 'queued_bytes') >= 40, 'API counts queued_bytes');
  });

  test('past maxQueueSize (the default is finite): 429 + Retry-After; the default is 1000', async () => {
    const config = await timedCall(`${gantry.baseUrl}/v2/models/tiny-mlp/config`);
    assert.equal(config.body.dynamic_batching?.default_queue_policy?.max_queue_size, 1000, describeReply(config));
    const set = await putConfig(gantry.baseUrl, 'slow', { maxQueueSize: 3 });
    assert.equal(set.status, 200, describeReply(set));
    const { busy } = await occupyWorker();
    const replies = await Promise.all(Array.from({ length: 10 }, () => infer(gantry.baseUrl, 'slow', slowRequest(1), 60_000)));
    const busyReply = await busy;
    // The run that held the worker is answered like any other: the cap refuses only what would queue past it.
    assert.equal(busyReply.status, 200, describeReply(busyReply));
    const refused = replies.filter((reply) => reply.status === 429);
    assert.equal(refused.length, 8, JSON.stringify(countStatuses(replies)));
    for (const reply of refused) {
      assert.match(reply.body.error, /maxQueueSize/);
      assert.match(reply.headers.get('retry-after') ?? '', /^\d+$/);
    }
    assert.ok(limitCount(await metricsText(gantry.baseUrl), 'gantry_limit_rejections_total', 'queue_size') >= 8, 'API counts queue_size');
    assert.ok(isAlive(gantry.child.pid!) && isAlive(workerPid));
  });
});

describe('disk: the store budget, derived files and dead uploads', { timeout: 180_000 }, () => {
  const cleanup = new Cleanup();
  let gantry: GantryProcess;
  let dataDirectory: string;
  /** tiny-mlp (~70 KB) and identity-float fit; a 1 MB upload does not. */
  const maxStoreBytes = 400_000;

  const blobs = () => readdir(path.join(dataDirectory, 'blobs', 'sha256'));
  const temporaries = () => readdir(path.join(dataDirectory, 'blobs', 'tmp'));
  async function optimizedFiles(): Promise<string[]> {
    const root = path.join(dataDirectory, 'cache', 'optimized');
    const found: string[] = [];
    for (const host of await readdir(root).catch(() => [] as string[])) found.push(...(await readdir(path.join(root, host))));
    return found;
  }

  before(async () => {
    dataDirectory = await mkdtemp(path.join(os.tmpdir(), 'gantry-rel-disk-'));
    cleanup.add(() => rm(dataDirectory, { recursive: true, force: true }));
    // Left by uploads that died: one long ago (to be removed at start), one just now (maybe another process's).
    const temporaryDirectory = path.join(dataDirectory, 'blobs', 'tmp');
    await mkdir(temporaryDirectory, { recursive: true });
    await writeFile(path.join(temporaryDirectory, 'dead.partial'), randomBytes(1000));
    const anHourAgo = new Date(Date.now() - 3600_000);
    await utimes(path.join(temporaryDirectory, 'dead.partial'), anHourAgo, anHourAgo);
    await writeFile(path.join(temporaryDirectory, 'recent.partial'), randomBytes(1000));
    // Deleted models' files go at once (no grace period), so the loop below can see each one go.
    gantry = await startGantry({
      dataDirectory,
      env: { GANTRY_MAX_STORE_BYTES: String(maxStoreBytes), GANTRY_BLOB_GC_GRACE_MS: '0', GANTRY_BLOB_GC_INTERVAL_MS: '100' },
    });
    cleanup.add(() => gantry.cleanup());
  });
  after(() => cleanup.run());

  test("a dead upload's .partial is removed at start; a recent one is left alone", async () => {
    assert.deepEqual(await temporaries(), ['recent.partial']);
    await rm(path.join(dataDirectory, 'blobs', 'tmp', 'recent.partial'));
  });

  test('an upload over GANTRY_MAX_STORE_BYTES → 507 with the numbers (with and without Content-Length); nothing left on disk', async () => {
    const upload = await uploadModel(gantry.baseUrl, 'tiny-mlp', fixturePath('tiny-mlp.onnx'));
    assert.equal(upload.status, 201, JSON.stringify(upload.body));
    const before = (await blobs()).sort();

    let finish!: () => void;
    const done = new Promise<void>((resolve) => (finish = resolve));
    const caller = wellBehavedCaller(gantry.baseUrl, done);
    const sized = await timedCall(`${gantry.baseUrl}/v1/models/big/versions`, {
      body: randomBytes(mebibyte),
      headers: { 'content-type': 'application/octet-stream' },
    });
    // Without Content-Length (chunked): refused as the bytes arrive.
    const chunks = Array.from({ length: 16 }, () => randomBytes(64 * 1024));
    const uploading = new AbortController();
    const streamed = await fetch(`${gantry.baseUrl}/v1/models/big/versions`, {
      method: 'POST',
      headers: withAdminKey({ 'content-type': 'application/octet-stream' }),
      body: Readable.toWeb(Readable.from(chunks)) as unknown as BodyInit,
      duplex: 'half',
      signal: AbortSignal.any([uploading.signal, AbortSignal.timeout(30_000)]),
    } as RequestInit);
    const streamedBody = (await streamed.json()) as { code: string; error: string };
    // The server answered before taking the whole body: stop sending the rest (it would keep this process alive).
    uploading.abort();
    finish();
    assertAllAnswered(await caller, 'during refused uploads');

    assert.equal(sized.status, 507, describeReply(sized));
    assert.equal(sized.body.code, 'INSUFFICIENT_STORAGE');
    assert.match(sized.body.error, new RegExp(`GANTRY_MAX_STORE_BYTES \\(${maxStoreBytes}\\)`));
    assert.match(sized.body.error, new RegExp(`upload of ${mebibyte} bytes`));
    assert.equal(streamed.status, 507, JSON.stringify(streamedBody));
    assert.match(streamedBody.error, /GANTRY_MAX_STORE_BYTES/);
    assert.deepEqual((await blobs()).sort(), before, 'no blob of the refused uploads');
    assert.deepEqual(await temporaries(), [], 'no temporary file left');
    const missing = await timedCall(`${gantry.baseUrl}/v1/models/big`);
    assert.equal(missing.status, 404, 'no version was created');
    assert.ok(limitCount(await metricsText(gantry.baseUrl), 'gantry_limit_rejections_total', 'store_bytes') >= 2, 'API counts store_bytes');
  });

  test('upload/delete loop of one model leaves no blob, no optimized-model cache file and no temporary file', async () => {
    const before = (await blobs()).sort();
    const cachedBefore = (await optimizedFiles()).sort();
    for (let round = 0; round < 3; round++) {
      const upload = await uploadModel(gantry.baseUrl, 'looped', fixturePath('identity-float.onnx'));
      assert.equal(upload.status, 201, JSON.stringify(upload.body));
      const sha256 = upload.body.sha256 as string;
      // The worker wrote onnxruntime's optimized graph of it while loading.
      assert.ok(
        (await optimizedFiles()).some((name) => name.startsWith(`${sha256}-`)),
        `round ${round}: an optimized graph was cached`,
      );
      const deleted = await timedCall(`${gantry.baseUrl}/v1/models/looped`, { method: 'DELETE' });
      assert.equal(deleted.status, 204, describeReply(deleted));
      await waitUntil(
        async () => JSON.stringify((await blobs()).sort()) === JSON.stringify(before),
        5000,
        `round ${round}: the blob to go with its last version`,
      );
      assert.deepEqual((await optimizedFiles()).sort(), cachedBefore, `round ${round}: its optimized graph went too`);
      assert.deepEqual(await temporaries(), []);
    }
    assert.ok(isAlive(gantry.child.pid!));
  });
});
