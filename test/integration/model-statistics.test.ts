import { test, describe, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { ModelRegistry } from '../../src/registry/model-registry.js';
import { StatisticsRecorder, readStatistics, type ExecutionRecord } from '../../src/registry/model-statistics.js';
import { deleteKeys } from '../helpers/gantry-process.js';
import { statisticsKey } from '../../src/redis-keys.js';

const redisUrl = 'redis://127.0.0.1:6379';

/** An execution of `size` requests of batch size 1, all successful, with fixed durations. */
function execution(size: number, finishedAtMs: number, failed = 0): ExecutionRecord {
  return {
    batchSize: size,
    requests: [
      ...Array.from({ length: size }, () => ({ ok: true, queueNs: 100, totalNs: 1_000 })),
      ...Array.from({ length: failed }, () => ({ ok: false, queueNs: 7, totalNs: 50 })),
    ],
    computeInputNs: 10 * size,
    computeInferNs: 200 * size,
    computeOutputNs: 5 * size,
    finishedAtMs,
  };
}

describe('StatisticsRecorder and readStatistics (real Redis)', () => {
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

  test('a version that never ran reads as zeros in Triton\'s shape', async () => {
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
    const recorderA = new StatisticsRecorder(workerA, prefix);
    const recorderB = new StatisticsRecorder(workerB, prefix);
    const base = 1_700_000_000_000;
    // Worker A: batches of 1, 4, 4 (the newest finish time is B's); worker B: batches of 8, 1, plus 2 failures.
    await Promise.all([
      recorderA.record('mlp', '1', execution(1, base + 10)),
      recorderA.record('mlp', '1', execution(4, base + 30)),
      recorderA.record('mlp', '1', execution(4, base + 20)),
      recorderB.record('mlp', '1', execution(8, base + 50)),
      recorderB.record('mlp', '1', execution(1, base + 40, 2)),
      // Another version is counted apart.
      recorderB.record('mlp', '2', execution(2, base + 999)),
    ]);
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
    assert.deepEqual(eight, { batch_size: 8, compute_input: { count: 1, ns: 80 }, compute_infer: { count: 1, ns: 1600 }, compute_output: { count: 1, ns: 40 } });
    const executions = stats.batch_stats.reduce((sum, entry) => sum + entry.compute_infer.count, 0);
    assert.equal(executions, stats.execution_count);

    const other = await readStatistics(reader, prefix, 'mlp', '2');
    assert.equal(other.inference_count, 2);
    assert.equal(other.execution_count, 1);
    assert.equal(other.last_inference, base + 999);
  });

  test('many concurrent records lose nothing', async () => {
    const recorders = [new StatisticsRecorder(workerA, prefix), new StatisticsRecorder(workerB, prefix)];
    await Promise.all(Array.from({ length: 200 }, (_, index) => recorders[index % 2]!.record('busy', '1', execution(1 + (index % 3), 1_000 + index))));
    const stats = await readStatistics(reader, prefix, 'busy', '1');
    assert.equal(stats.execution_count, 200);
    assert.equal(stats.inference_count, Array.from({ length: 200 }, (_, index) => 1 + (index % 3)).reduce((a, b) => a + b, 0));
    assert.equal(stats.last_inference, 1_199);
  });

  test('an execution whose every request failed counts failures only; a request\'s own batch size counts in inference_count', async () => {
    const recorder = new StatisticsRecorder(workerA, prefix);
    await recorder.record('m', '1', {
      batchSize: 3,
      requests: [
        { ok: false, queueNs: 5, totalNs: 70 },
        { ok: false, queueNs: 5, totalNs: 30 },
      ],
      computeInputNs: 1,
      computeInferNs: 2,
      computeOutputNs: 3,
      finishedAtMs: 5_000,
    });
    let stats = await readStatistics(reader, prefix, 'm', '1');
    assert.deepEqual(stats.inference_stats.fail, { count: 2, ns: 100 });
    assert.equal(stats.execution_count, 0);
    assert.equal(stats.inference_count, 0);
    assert.deepEqual(stats.batch_stats, []);
    assert.equal(stats.last_inference, 5_000);

    // One request carrying a batch of 6 (a client-side batch) is 6 inferences in one execution.
    await recorder.record('m', '1', { batchSize: 6, requests: [{ ok: true, queueNs: 1, totalNs: 9, batchSize: 6 }], computeInputNs: 1, computeInferNs: 1, computeOutputNs: 1, finishedAtMs: 4_000 });
    stats = await readStatistics(reader, prefix, 'm', '1');
    assert.equal(stats.inference_count, 6);
    assert.equal(stats.execution_count, 1);
    assert.equal(stats.last_inference, 5_000);
  });

  test('deleting a version deletes its statistics', async () => {
    const registry = new ModelRegistry(reader, prefix);
    const { version } = await registry.createVersion('doomed', { sha256: 'c'.repeat(64), size: 1 });
    await new StatisticsRecorder(workerA, prefix).record('doomed', version, execution(2, 1));
    assert.equal(await reader.exists(statisticsKey(prefix, 'doomed', version)), 1);
    await registry.deleteModel('doomed');
    assert.equal(await reader.exists(statisticsKey(prefix, 'doomed', version)), 0);
  });
});
