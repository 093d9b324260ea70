/**
 * Reading a batch body into the batch store (src/jobs/batch-submission.ts) on a real Redis, with the data plane's
 * preparation handed in as the route hands it: good lines are packed in input order into chunks closed at
 * GANTRY_BATCH_CHUNK_LINES lines or at the byte bound, bad lines fail alone with their reason as their result, and a
 * refusal that concerns the whole batch (unknown model...) stops the reading.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { Redis } from 'ioredis';
import { GantryError, errors } from '../../src/errors.js';
import type { PreparedInference } from '../../src/inference/inference-service.js';
import { decodeChunkInput } from '../../src/jobs/batch-chunk-input.js';
import { BatchStore } from '../../src/jobs/batch-store.js';
import { receiveBatch, type BatchLineCall, type BatchSubmissionDependencies } from '../../src/jobs/batch-submission.js';
import { decodeStoredAnswer } from '../../src/jobs/stored-answer.js';
import { anonymousAdmin } from '../../src/auth/principal.js';
import { defaultExecutionSettings } from '../../src/queue/job-contracts.js';
import { batchPartKey } from '../../src/redis-keys.js';
import { scanKeys } from '../helpers/gantry-process.js';

/** Prepares a line as the service would for a model with one FP32 input: its bytes are the input's elements. */
async function prepareLine(call: BatchLineCall): Promise<PreparedInference> {
  const input = call.body.inputs[0]!;
  if (input.name !== 'x') throw errors.invalidArgument(`Unknown input '${input.name}'.`);
  if (input.datatype === 'BOOL') throw errors.modelNotFound(call.model);
  const values = (input.data as number[]).flat();
  return {
    target: { model: call.model, version: call.version!, sha256: 'b'.repeat(64), settings: defaultExecutionSettings },
    submission: {
      inputs: [{ name: 'x', datatype: 'FP32', shape: input.shape, data: new Uint8Array(new Float32Array(values).buffer) }],
      outputs: ['y'],
      deadline: Date.now() + 60_000,
      timeoutMs: 60_000,
      priority: 1000,
    },
    rendering: {
      modelName: call.model,
      modelVersion: call.version!,
      ...(call.body.id === undefined ? {} : { id: call.body.id }),
      classifications: [],
      binary: [],
    },
  };
}

const line = (values: number[], id?: string) =>
  JSON.stringify({ ...(id === undefined ? {} : { id }), inputs: [{ name: 'x', datatype: 'FP32', shape: [1, values.length], data: values }] });

describe('batch submission (real Redis)', () => {
  let redis: Redis;
  let store: BatchStore;
  const prefix = `batch-submission-test-${randomBytes(4).toString('hex')}`;

  before(() => {
    redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    store = new BatchStore(redis, prefix);
  });
  after(async () => {
    const keys = await scanKeys(redis, `${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  const dependencies = (overrides: Partial<BatchSubmissionDependencies> = {}): BatchSubmissionDependencies => ({
    prepareLine,
    store,
    limits: { maxLineBytes: 10_000, maxLines: 1000, maxBytes: 1_000_000 },
    chunkLines: 3,
    maxBytesElements: 1000,
    ...overrides,
  });
  const read = (body: string, overrides: Partial<BatchSubmissionDependencies> = {}) => {
    const id = randomBytes(6).toString('hex');
    const progress = { chunks: 0 };
    const received = receiveBatch(dependencies(overrides), {
      id,
      createdAt: Date.now(),
      principal: anonymousAdmin,
      model: 'm',
      version: '4',
      body: Readable.from([Buffer.from(body)]),
      progress,
    });
    return { id, progress, received };
  };

  test('good lines are packed in input order into chunks of GANTRY_BATCH_CHUNK_LINES; bad lines fail alone, with their reason as result', async () => {
    const body = [
      line([0], 'a'),
      line([1]),
      '{"inputs": [',
      line([3]),
      JSON.stringify({ inputs: [{ name: 'z', datatype: 'FP32', shape: [1], data: [1] }] }),
      line([5]),
      line([6]),
    ].join('\n');
    const { id, received, progress } = read(body);
    const batch = await received;
    assert.deepEqual(
      { total: batch.total, chunks: batch.chunks, queuedLines: batch.queuedLines, invalidLines: batch.invalidLines, version: batch.version },
      { total: 7, chunks: 2, queuedLines: 5, invalidLines: 2, version: '4' },
    );
    assert.equal(progress.chunks, 2);
    const first = decodeChunkInput((await store.readInput(id, 0))!);
    const second = decodeChunkInput((await store.readInput(id, 1))!);
    assert.deepEqual(
      first.map((request) => request.correlationId),
      ['0', '1', '3'],
    );
    assert.deepEqual(
      second.map((request) => request.correlationId),
      ['5', '6'],
    );
    assert.deepEqual([...new Float32Array(new Uint8Array(second[0]!.submission.inputs[0]!.data).buffer)], [5]);
    assert.deepEqual(await redis.hgetall(batchPartKey(prefix, id, 'sizes')), { 0: '3', 1: '2' });

    const { lines, results } = await store.readLines(id, 0, 7);
    assert.deepEqual(
      lines.map((entry) => JSON.parse(entry!)),
      [{ i: 'a', c: 0, o: 1 }, { i: '1', c: 0 }, { i: '2' }, { i: '3', c: 0 }, { i: '4' }, { i: '5', c: 1 }, { i: '6', c: 1 }],
    );
    const notJson = decodeStoredAnswer(results[2]!);
    assert.ok(!notJson.ok);
    assert.equal(notJson.error.code, 'INVALID_ARGUMENT');
    assert.match(notJson.error.message, /not valid JSON/);
    const refused = decodeStoredAnswer(results[4]!);
    assert.ok(!refused.ok);
    assert.match(refused.error.message, /Unknown input 'z'/);
    assert.equal(results[0], null, 'a good line has no result until a worker writes it');
  });

  test('a chunk closes early once its inputs reach the byte bound', async () => {
    const { id, received } = read([line([1, 2, 3, 4]), line([5, 6, 7, 8]), line([9])].join('\n'), { chunkLines: 100, maxChunkBytes: 20 });
    const batch = await received;
    assert.equal(batch.chunks, 2);
    assert.deepEqual(await redis.hgetall(batchPartKey(prefix, id, 'sizes')), { 0: '2', 1: '1' });
  });

  test('a refusal about the whole batch stops the reading with that error', async () => {
    const { received } = read([line([1]), JSON.stringify({ inputs: [{ name: 'x', datatype: 'BOOL', shape: [1], data: [true] }] }), line([2])].join('\n'));
    await assert.rejects(received, (error: unknown) => error instanceof GantryError && error.code === 'NOT_FOUND');
  });
});
