import { test, describe, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { ModelRegistry } from '../../src/registry/model-registry.js';
import { addStatistics, readStatistics } from '../../src/registry/model-statistics.js';
import { statisticsKey } from '../../src/redis-keys.js';
import { StatisticsBuffer } from '../../src/worker/statistics-buffer.js';
import { deleteKeys } from '../helpers/gantry-process.js';

const redisUrl = 'redis://127.0.0.1:6379';

/** A worker's statistics buffer writing to Redis over `redis`, as worker-role.ts builds it. */
function workerStatistics(redis: Redis, prefix: string): StatisticsBuffer {
  return new StatisticsBuffer(
    (model, version, increments, lastInferenceMs) => addStatistics(redis, prefix, model, version, increments, lastInferenceMs),
    pino({ level: 'silent' }),
  );
}

/**
 * Records one execution the way the worker does (inference-processor.ts): each request, then the execution once
 * when any request succeeded. `size` successful requests of one row each, `failed` failures, fixed durations;
 * each successful request is charged the execution's full compute time.
 */
function recordExecution(statistics: StatisticsBuffer, model: string, version: string, size: number, finishedAtMs: number, failed = 0): void {
  const compute = { computeInputNs: 10 * size, computeInferNs: 200 * size, computeOutputNs: 5 * size };
  for (let index = 0; index < size; index++)
    statistics.recordRequest(model, version, { ok: true, rows: 1, queueNs: 100, totalNs: 1_000, ...compute, finishedAtMs });
  for (let index = 0; index < failed; index++) {
    statistics.recordRequest(model, version, {
      ok: false,
      rows: 0,
      queueNs: 7,
      totalNs: 50,
      computeInputNs: 0,
      computeInferNs: 0,
      computeOutputNs: 0,
      finishedAtMs,
    });
  }
  if (size > 0) statistics.recordExecution(model, version, { batchSize: size, ...compute });
}

describe("the workers' StatisticsBuffer, addStatistics and readStatistics (real Redis)", () => {
  let workerA: Redis;
  let workerB: Redis;
  let reader: Redis;
  let prefix: string;

  before(() => {
    workerA = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
    workerB = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
    reader = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  });
  after(() => {
    for (const connection of [workerA, workerB, reader]) connection.disconnect();
  });
  beforeEach(() => {
    prefix = `itest-stats-${randomBytes(4).toString('hex')}`;
  });
  afterEach(async () => deleteKeys(redisUrl, prefix));

  test("a version that never ran reads as zeros in Triton's shape", async () => {
    const stats = await readStatistics(reader, prefix, 'idle', '1');
    const zero = { count: 0, ns: 0 };
    assert.deepEqual(stats, {
      name: 'idle',
      version: '1',
      last_inference: 0,
      inference_count: 0,
      execution_count: 0,
      inference_stats: { success: zero, fail: zero, queue: zero, compute_input: zero, compute_infer: zero, compute_output: zero },
      batch_stats: [],
    });
  });

  test('two workers recording concurrently add up, per request and per batch size', async () => {
    const statisticsA = workerStatistics(workerA, prefix);
    const statisticsB = workerStatistics(workerB, prefix);
    const base = 1_700_000_000_000;
    // Worker A: batches of 1, 4, 4 (the newest finish time is B's); worker B: batches of 8, 1, plus 2 failures.
    recordExecution(statisticsA, 'mlp', '1', 1, base + 10);
    recordExecution(statisticsA, 'mlp', '1', 4, base + 30);
    recordExecution(statisticsA, 'mlp', '1', 4, base + 20);
    recordExecution(statisticsB, 'mlp', '1', 8, base + 50);
    recordExecution(statisticsB, 'mlp', '1', 1, base + 40, 2);
    // Another version is counted apart.
    recordExecution(statisticsB, 'mlp', '2', 2, base + 999);
    await Promise.all([statisticsA.flush(), statisticsB.flush()]);
    const stats = await readStatistics(reader, prefix, 'mlp', '1');
    const requests = 1 + 4 + 4 + 8 + 1;
    assert.equal(stats.name, 'mlp');
    assert.equal(stats.version, '1');
    assert.equal(stats.inference_count, requests);
    assert.equal(stats.execution_count, 5);
    assert.equal(stats.inference_count / stats.execution_count, 18 / 5, 'inference_count/execution_count is the average batch size');
    assert.equal(stats.last_inference, base + 50, 'last_inference is the latest finish, whatever the order of arrival');

    assert.deepEqual(stats.inference_stats.success, { count: requests, ns: requests * 1_000 });
    assert.deepEqual(stats.inference_stats.fail, { count: 2, ns: 100 });
    assert.deepEqual(stats.inference_stats.queue, { count: requests, ns: requests * 100 });
    // Each successful request is charged its execution's full compute time (Triton's per-request statistics).
    const perRequest = (nsPerItem: number) => [1, 4, 4, 8, 1].reduce((sum, size) => sum + size * size * nsPerItem, 0);
    assert.deepEqual(stats.inference_stats.compute_input, { count: requests, ns: perRequest(10) });
    assert.deepEqual(stats.inference_stats.compute_infer, { count: requests, ns: perRequest(200) });
    assert.deepEqual(stats.inference_stats.compute_output, { count: requests, ns: perRequest(5) });

    // batch_stats: one entry per batch size, counting executions and their real durations, sorted by size.
    assert.deepEqual(
      stats.batch_stats.map((entry) => entry.batch_size),
      [1, 4, 8],
    );
    const [one, four, eight] = stats.batch_stats;
    assert.deepEqual(one, { batch_size: 1, compute_input: { count: 2, ns: 20 }, compute_infer: { count: 2, ns: 400 }, compute_output: { count: 2, ns: 10 } });
    assert.deepEqual(four, { batch_size: 4, compute_input: { count: 2, ns: 80 }, compute_infer: { count: 2, ns: 1600 }, compute_output: { count: 2, ns: 40 } });
    assert.deepEqual(eight, {
      batch_size: 8,
      compute_input: { count: 1, ns: 80 },
      compute_infer: { count: 1, ns: 1600 },
      compute_output: { count: 1, ns: 40 },
    });
    const executions = stats.batch_stats.reduce((sum, entry) => sum + entry.compute_infer.count, 0);
    assert.equal(executions, stats.execution_count);

    const other = await readStatistics(reader, prefix, 'mlp', '2');
    assert.equal(other.inference_count, 2);
    assert.equal(other.execution_count, 1);
    assert.equal(other.last_inference, base + 999);
  });

  test('many concurrent records lose nothing', async () => {
    const buffers = [workerStatistics(workerA, prefix), workerStatistics(workerB, prefix)];
    // Every execution flushed on its own, both workers' writes interleaving in Redis.
    const flushes: Promise<void>[] = [];
    for (let index = 0; index < 200; index++) {
      const statistics = buffers[index % 2]!;
      recordExecution(statistics, 'busy', '1', 1 + (index % 3), 1_000 + index);
      flushes.push(statistics.flush());
    }
    await Promise.all(flushes);
    const stats = await readStatistics(reader, prefix, 'busy', '1');
    assert.equal(stats.execution_count, 200);
    assert.equal(
      stats.inference_count,
      Array.from({ length: 200 }, (_, index) => 1 + (index % 3)).reduce((a, b) => a + b, 0),
    );
    assert.equal(stats.last_inference, 1_199);
  });

  test("an execution whose every request failed counts failures only; a request's own batch size counts in inference_count", async () => {
    const statistics = workerStatistics(workerA, prefix);
    const failure = { ok: false, rows: 0, queueNs: 5, computeInputNs: 0, computeInferNs: 0, computeOutputNs: 0, finishedAtMs: 5_000 };
    statistics.recordRequest('m', '1', { ...failure, totalNs: 70 });
    statistics.recordRequest('m', '1', { ...failure, totalNs: 30 });
    await statistics.flush();
    let stats = await readStatistics(reader, prefix, 'm', '1');
    assert.deepEqual(stats.inference_stats.fail, { count: 2, ns: 100 });
    assert.equal(stats.execution_count, 0);
    assert.equal(stats.inference_count, 0);
    assert.deepEqual(stats.batch_stats, []);
    assert.equal(stats.last_inference, 5_000);

    // One request carrying a batch of 6 (a client-side batch) is 6 inferences in one execution.
    statistics.recordRequest('m', '1', {
      ok: true,
      rows: 6,
      queueNs: 1,
      totalNs: 9,
      computeInputNs: 1,
      computeInferNs: 1,
      computeOutputNs: 1,
      finishedAtMs: 4_000,
    });
    statistics.recordExecution('m', '1', { batchSize: 6, computeInputNs: 1, computeInferNs: 1, computeOutputNs: 1 });
    await statistics.flush();
    stats = await readStatistics(reader, prefix, 'm', '1');
    assert.equal(stats.inference_count, 6);
    assert.equal(stats.execution_count, 1);
    assert.equal(stats.last_inference, 5_000);
  });

  test('deleting a version deletes its statistics', async () => {
    const registry = new ModelRegistry(reader, prefix);
    const { version } = await registry.createVersion('doomed', { sha256: 'c'.repeat(64), size: 1 });
    const statistics = workerStatistics(workerA, prefix);
    recordExecution(statistics, 'doomed', version, 2, 1);
    await statistics.flush();
    assert.equal(await reader.exists(statisticsKey(prefix, 'doomed', version)), 1);
    await registry.deleteModel('doomed');
    assert.equal(await reader.exists(statisticsKey(prefix, 'doomed', version)), 0);
  });
});
