/**
 * The worker's SessionCache keeps its loaded sessions within GANTRY_WORKER_SESSION_MEMORY_BYTES (real onnxruntime,
 * real model files), each estimated as its file's size x instances: past the budget idle models are released
 * least recently used first (counted with reason `memory`), a model alone over the budget is refused naming the
 * variable, and one that does not fit beside a busy model gets 503 until that model is idle.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ErrorCode, GantryError } from '../../src/errors.js';
import { createLogger } from '../../src/logger.js';
import { localBlobs } from '../helpers/local-blobs.js';
import { defaultExecutionSettings, type ExecutionSettings } from '../../src/queue/job-contracts.js';
import { FileModelStore } from '../../src/registry/file-model-store.js';
import { SessionCache, type EvictionReason } from '../../src/worker/session-cache.js';
import { sessionMemoryBudget } from '../../src/worker/session-memory-budget.js';
import { fixturePath } from '../helpers/gantry-process.js';

/** Fits tiny-mlp (~70 KB), slow (~263 KB) and the two tiny models together only without tiny-mlp. */
const budget = 300_000;

let directory: string;
let store: FileModelStore;
let cache: SessionCache;
const evictions: EvictionReason[] = [];
let heldBytes = 0;
let refusals = 0;
const blobs: Record<string, string> = {};
const sizes: Record<string, number> = {};

const instances = (count: number): ExecutionSettings => ({ ...defaultExecutionSettings, instances: count, intraOpThreads: 1, optimizedModelCache: false });

before(async () => {
  directory = await mkdtemp(path.join(os.tmpdir(), 'gantry-session-memory-'));
  store = new FileModelStore(directory);
  await store.init();
  for (const name of ['tiny-mlp', 'multi-io', 'scalar', 'slow']) {
    blobs[name] = (await store.put(Readable.from([await readFile(fixturePath(`${name}.onnx`))]), 1024 ** 3)).sha256;
    sizes[name] = (await stat(fixturePath(`${name}.onnx`))).size;
  }
  assert.ok(sizes['tiny-mlp']! + sizes.slow! + sizes['multi-io']! + sizes.scalar! > budget, 'the four models do not fit together');
  assert.ok(sizes.slow! + sizes['multi-io']! + sizes.scalar! <= budget, 'without tiny-mlp they fit');
  cache = new SessionCache(
    localBlobs(store, directory),
    {
      maxLoadedModels: 32,
      maxSessionBytes: budget,
      onEviction: (reason) => evictions.push(reason),
      onMemoryChange: (bytes) => (heldBytes = bytes),
      onMemoryBudgetRefused: () => refusals++,
      executionProviders: ['cpu'],
      cacheDirectory: path.join(directory, 'cache'),
    },
    createLogger({ LOG_LEVEL: 'silent' }, 'test'),
  );
});
after(async () => {
  await cache.close();
  await rm(directory, { recursive: true, force: true });
});

test('past the budget the least recently used idle model is released, and only as many as needed', async () => {
  const multi = await cache.get(blobs['multi-io']!, instances(1));
  const tiny = await cache.get(blobs['tiny-mlp']!, instances(1));
  const scalar = await cache.get(blobs.scalar!, instances(1));
  await cache.get(blobs['multi-io']!, instances(1)); // tiny-mlp is now the least recently used
  assert.equal(heldBytes, sizes['multi-io']! + sizes['tiny-mlp']! + sizes.scalar!);
  const slow = await cache.get(blobs.slow!, instances(1));
  assert.ok(slow.instances.healthy);
  assert.equal(tiny.instances.healthy, false, 'tiny-mlp (least recently used) was released');
  assert.equal(multi.instances.healthy, true, 'multi-io (used more recently) stays');
  assert.equal(scalar.instances.healthy, true, 'scalar stays: releasing tiny-mlp was enough');
  assert.deepEqual(evictions, ['memory']);
  assert.equal(heldBytes, sizes['multi-io']! + sizes.scalar! + sizes.slow!);
});

test('a model whose sessions alone exceed the budget is refused, naming GANTRY_WORKER_SESSION_MEMORY_BYTES', async () => {
  await assert.rejects(cache.get(blobs.slow!, instances(2)), (error: unknown) => {
    assert.ok(error instanceof GantryError);
    assert.equal(error.code, ErrorCode.Unavailable);
    assert.match(error.message, new RegExp(`need about ${2 * sizes.slow!} bytes .*GANTRY_WORKER_SESSION_MEMORY_BYTES \\(${budget}\\)`));
    return true;
  });
  assert.deepEqual(evictions, ['memory'], 'nothing was released for a load that could never fit');
  assert.equal(refusals, 1, 'the refusal is counted (gantry_worker_limit_trips_total{limit="session_memory"})');
});

test('a load that does not fit beside a busy model is refused with 503, and fits once that model is idle', async () => {
  const slow = await cache.get(blobs.slow!, instances(1));
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
  await assert.rejects(cache.get(blobs['tiny-mlp']!, instances(1)), (error: unknown) => {
    assert.ok(error instanceof GantryError);
    assert.equal(error.code, ErrorCode.Unavailable);
    assert.equal(error.retryAfterSeconds, 1);
    assert.match(error.message, /session memory.*GANTRY_WORKER_SESSION_MEMORY_BYTES/);
    return true;
  });
  assert.equal(slow.instances.healthy, true, 'the busy model was not released');
  assert.equal(refusals, 2);
  await running;
  const tiny = await cache.get(blobs['tiny-mlp']!, instances(1));
  assert.ok(tiny.instances.healthy);
  assert.equal(slow.instances.healthy, false, 'slow, idle again, made room');
  assert.ok(heldBytes <= budget, `held ${heldBytes} bytes`);
  assert.ok(evictions.every((reason) => reason === 'memory'));
});

test('the default budget is half of what the worker may use: its cgroup limit when there is one, else the machine', () => {
  assert.equal(sessionMemoryBudget(12345), 12345);
  assert.equal(sessionMemoryBudget(0, 8e9, undefined), 4e9);
  assert.equal(sessionMemoryBudget(0, 8e9, 2e9), 1e9);
  // An unlimited cgroup reports more than the machine has.
  assert.equal(sessionMemoryBudget(0, 8e9, 2 ** 62), 4e9);
});
