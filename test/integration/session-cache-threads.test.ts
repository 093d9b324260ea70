/**
 * The worker's SessionCache keeps the onnxruntime threads of its loaded models within GANTRY_MAX_THREADS_PER_WORKER
 * (real onnxruntime, real model files): idle models are unloaded least recently used first to make room, a load
 * that does not fit beside busy models is refused with 503 naming the budget, and a configuration that alone is
 * over the budget with 400.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ErrorCode, GantryError } from '../../src/errors.js';
import { createLogger } from '../../src/logger.js';
import { localBlobs } from '../helpers/local-blobs.js';
import { defaultExecutionSettings, type ExecutionSettings } from '../../src/queue/job-contracts.js';
import { FileModelStore } from '../../src/registry/file-model-store.js';
import { SessionCache } from '../../src/worker/session-cache.js';
import { fixturePath } from '../helpers/gantry-process.js';

let directory: string;
let store: FileModelStore;
let cache: SessionCache;
let refusals = 0;
const blobs: Record<string, string> = {};

const threads = (intraOpThreads: number): ExecutionSettings => ({ ...defaultExecutionSettings, instances: 1, intraOpThreads, optimizedModelCache: false });

before(async () => {
  directory = await mkdtemp(path.join(os.tmpdir(), 'gantry-session-threads-'));
  store = new FileModelStore(directory);
  await store.init();
  for (const name of ['tiny-mlp', 'multi-io', 'scalar', 'slow']) {
    blobs[name] = (await store.put(Readable.from([await readFile(fixturePath(`${name}.onnx`))]), 1024 ** 3)).sha256;
  }
  cache = new SessionCache(
    localBlobs(store, directory),
    { maxLoadedModels: 32, executionProviders: ['cpu'], cacheDirectory: path.join(directory, 'cache'), maxThreads: 6, onThreadBudgetRefused: () => refusals++ },
    createLogger({ LOG_LEVEL: 'silent' }, 'test'),
  );
});
after(async () => {
  await cache.close();
  await rm(directory, { recursive: true, force: true });
});

test('idle models are unloaded least recently used first to make room', async () => {
  const tiny = await cache.get(blobs['tiny-mlp']!, threads(3));
  const multi = await cache.get(blobs['multi-io']!, threads(3));
  assert.ok(tiny.instances.healthy && multi.instances.healthy);
  await cache.get(blobs['tiny-mlp']!, threads(3)); // now multi-io is the least recently used
  const scalar = await cache.get(blobs.scalar!, threads(3));
  assert.ok(scalar.instances.healthy);
  assert.equal(multi.instances.healthy, false, 'multi-io (least recently used) was unloaded');
  assert.equal(tiny.instances.healthy, true, 'tiny-mlp (used more recently) stays');
  assert.equal(refusals, 0);
});

test('a configuration alone over the budget is refused with 400 naming GANTRY_MAX_THREADS_PER_WORKER', async () => {
  await assert.rejects(cache.get(blobs['multi-io']!, threads(7)), (error: unknown) => {
    assert.ok(error instanceof GantryError);
    assert.equal(error.code, ErrorCode.InvalidArgument);
    assert.match(error.message, /needs 7 onnxruntime threads.*GANTRY_MAX_THREADS_PER_WORKER \(6\)/);
    return true;
  });
  assert.equal(refusals, 1);
});

test('a load that does not fit beside a busy model is refused with 503 (retry later), and fits once it is idle', async () => {
  const slow = await cache.get(blobs.slow!, threads(3));
  const iterations = new Uint8Array(new BigInt64Array([400_000n]).buffer);
  const x = new Uint8Array(new Float32Array(256).fill(0.5).buffer);
  const running = slow.batcher.submit(
    [
      { name: 'iterations', datatype: 'INT64', shape: [], data: iterations },
      { name: 'x', datatype: 'FP32', shape: [1, 256], data: x },
    ],
    ['y'],
  );
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(slow.instances.idle, false, 'slow is inside its run');
  await assert.rejects(cache.get(blobs['multi-io']!, threads(4)), (error: unknown) => {
    assert.ok(error instanceof GantryError);
    assert.equal(error.code, ErrorCode.Unavailable);
    assert.equal(error.retryAfterSeconds, 1);
    assert.match(error.message, /needs 4 onnxruntime threads.*GANTRY_MAX_THREADS_PER_WORKER/);
    return true;
  });
  assert.equal(slow.instances.healthy, true, 'the busy model was not unloaded');
  assert.equal(refusals, 2);
  await running;
  const multi = await cache.get(blobs['multi-io']!, threads(4));
  assert.ok(multi.instances.healthy);
  assert.equal(slow.instances.healthy, false, 'slow, idle again, made room');
});
