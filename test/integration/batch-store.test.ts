/**
 * The batch store's scripts on a real Redis (src/jobs/batch-store.ts, batch-results.ts, batch-enqueue.ts): a
 * chunk starts once per line (re-runs count attempts, run nothing answered), each line's result is written once,
 * the batch finishes exactly once whatever finishes it (the last write, a cancel, an upload of bad lines only) and
 * then expires with its retention; a cancel takes the chunks not started and nothing else; the finished prefix
 * counts cancelled lines; listing pages; and queueing chunks resumes where a dead creator stopped, one job a chunk.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { ErrorCode } from '../../src/errors.js';
import { encodeChunkInput } from '../../src/jobs/batch-chunk-input.js';
import { batchChunkJobId, enqueueBatchChunks, needsEnqueueResume } from '../../src/jobs/batch-enqueue.js';
import { batchView } from '../../src/jobs/batch-record.js';
import { batchResultsWriter } from '../../src/jobs/batch-results.js';
import { BatchStore, describeBatchWebhook, type BatchOpening } from '../../src/jobs/batch-store.js';
import { DurableProducer, type DurableRequest } from '../../src/jobs/durable-producer.js';
import { encodeStoredAnswer } from '../../src/jobs/stored-answer.js';
import { defaultExecutionSettings, type InferenceJob } from '../../src/queue/job-contracts.js';
import { batchKey, batchPartKey } from '../../src/redis-keys.js';
import { scanKeys } from '../helpers/gantry-process.js';

const retentionMs = 60_000;
const target = { model: 'batch-store-model', version: '1', sha256: 'a'.repeat(64), settings: defaultExecutionSettings };

function request(line: number): DurableRequest {
  return {
    correlationId: String(line),
    submission: {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: new Uint8Array(new Float32Array([line]).buffer) }],
      outputs: ['y'],
      deadline: Date.now() + 60_000,
      timeoutMs: 60_000,
      priority: 1000,
    },
  };
}

const answered = (line: string) => encodeStoredAnswer({ correlationId: line, outputs: [], computeNs: 1, rows: 1 }, []);
const failedAnswer = (line: string) => encodeStoredAnswer({ correlationId: line, error: { code: ErrorCode.InvalidArgument, message: 'bad line' } }, []);

/** A job as the worker hands it to the writer: only the requests' ids matter to it. */
function chunkJob(lines: readonly string[]): InferenceJob {
  return { requests: lines.map((correlationId) => ({ correlationId, inputs: [], outputs: [] })) } as unknown as InferenceJob;
}

describe('batch store (real Redis)', () => {
  let redis: Redis;
  let store: BatchStore;
  const prefix = `batch-store-test-${randomBytes(4).toString('hex')}`;

  before(() => {
    redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    store = new BatchStore(redis, prefix);
  });
  after(async () => {
    const keys = await scanKeys(redis, `${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  /**
   * A received and opened batch: `good` lines in chunks of 2 (line numbers 0..good-1), then `bad` lines that
   * failed when read.
   */
  async function openedBatch(good: number, bad = 0, options: { callbackUrl?: string } = {}) {
    const id = randomBytes(6).toString('hex');
    const createdAt = Date.now();
    await store.create({
      id,
      tenant: 'acme',
      keyId: 'k1',
      model: target.model,
      modelShown: target.model,
      version: '1',
      createdAt,
      retentionMs,
      deadline: createdAt + 60_000,
      priority: 1000,
      ...options,
    });
    const chunks = Math.ceil(good / 2);
    for (let chunk = 0; chunk < chunks; chunk += 1) {
      const lines = [chunk * 2, chunk * 2 + 1].filter((line) => line < good);
      await store.writeReceived(id, createdAt, {
        lines: lines.map((line) => [line, JSON.stringify({ i: String(line), c: chunk })]),
        results: [],
        input: { chunk, bytes: encodeChunkInput(lines.map(request)), lines: lines.length },
      });
    }
    const badLines = Array.from({ length: bad }, (_, index) => good + index);
    await store.writeReceived(id, createdAt, {
      lines: badLines.map((line) => [line, JSON.stringify({ i: String(line) })]),
      results: badLines.map((line) => [line, failedAnswer(String(line))]),
    });
    const opening: BatchOpening = { total: good + bad, chunks, chunkLines: 2, queuedLines: good, invalidLines: bad, version: '1', target, rendering: {} };
    const opened = await store.open(id, opening, 120_000);
    return { id, opened, chunks };
  }

  test('begin answers the lines without a result; re-runs count attempts; each result is written once; the last write finishes it once', async () => {
    const { id, opened } = await openedBatch(3, 1);
    assert.equal(opened, 'queued');
    const writer = batchResultsWriter(redis, prefix);
    const chunk0 = { kind: 'batch' as const, batchId: id, chunk: 0 };
    const chunk1 = { kind: 'batch' as const, batchId: id, chunk: 1 };

    assert.deepEqual([...(await writer.begin(chunkJob(['0', '1']), chunk0))], ['0', '1']);
    let record = (await store.read(id))!;
    assert.equal(record.state, 'running');
    assert.equal(batchView(record).running, 2);
    assert.equal(batchView(record).queued, 1);

    assert.deepEqual(await writer.write(chunkJob(['0', '1']), chunk0, [{ correlationId: '0', stored: answered('0') }]), []);
    // The worker died after writing line 0: the re-run runs line 1 only, and writing line 0 again changes nothing.
    assert.deepEqual([...(await writer.begin(chunkJob(['0', '1']), chunk0))], ['1']);
    const other = encodeStoredAnswer({ correlationId: '0', error: { code: ErrorCode.Internal, message: 'second run' } }, []);
    assert.deepEqual(
      await writer.write(chunkJob(['0', '1']), chunk0, [
        { correlationId: '0', stored: other, error: { code: ErrorCode.Internal, message: 'second run' } },
        { correlationId: '1', stored: answered('1') },
      ]),
      [],
    );
    assert.ok((await redis.hgetBuffer(batchPartKey(prefix, id, 'results'), '0'))!.equals(answered('0')), 'the first answer stays');
    record = (await store.read(id))!;
    assert.deepEqual([record.succeeded, record.failed, record.attempts, record.startedLines], [2, 1, 2, 2]);
    assert.equal(await store.finishedPrefix(record), 2, 'line 2 has no result yet');

    assert.deepEqual([...(await writer.begin(chunkJob(['2']), chunk1))], ['2']);
    assert.deepEqual(await writer.write(chunkJob(['2']), chunk1, [{ correlationId: '2', stored: answered('2') }]), [{ kind: 'batch', id }]);
    assert.deepEqual(await writer.write(chunkJob(['2']), chunk1, [{ correlationId: '2', stored: answered('2') }]), [], 'finished once');
    record = (await store.read(id))!;
    assert.equal(record.state, 'succeeded');
    assert.ok(record.finishedAt !== undefined);
    assert.deepEqual([record.succeeded, record.failed, batchView(record).running], [3, 1, 0]);
    assert.equal(await store.finishedPrefix(record), 4);
    for (const key of [batchKey(prefix, id), batchPartKey(prefix, id, 'results'), batchPartKey(prefix, id, 'lines')]) {
      const ttl = await redis.pttl(key);
      assert.ok(ttl > 0 && ttl <= retentionMs, `${key} expires with the retention (${ttl} ms)`);
    }
  });

  test('a cancel takes the chunks not started (they never run), running ones finish, and the prefix counts cancelled lines', async () => {
    const { id } = await openedBatch(6);
    const writer = batchResultsWriter(redis, prefix);
    assert.deepEqual([...(await writer.begin(chunkJob(['2', '3']), { kind: 'batch', batchId: id, chunk: 1 }))], ['2', '3']);
    const cancel = await store.cancel(id);
    assert.deepEqual(cancel, { before: 'running', finished: false });
    let record = (await store.read(id))!;
    assert.equal(record.state, 'cancelled');
    assert.equal(record.cancelledLines, 4);
    assert.equal(await store.finishedPrefix(record), 2, 'lines 0 and 1 were cancelled; line 2 still runs');
    // A worker that takes a cancelled chunk later runs nothing of it.
    assert.deepEqual([...(await writer.begin(chunkJob(['0', '1']), { kind: 'batch', batchId: id, chunk: 0 }))], []);
    assert.deepEqual([...(await writer.begin(chunkJob(['4', '5']), { kind: 'batch', batchId: id, chunk: 2 }))], []);
    assert.deepEqual(await store.cancel(id), { before: 'cancelled', finished: false }, 'a second cancel takes nothing more');
    const finished = await writer.write(chunkJob(['2', '3']), { kind: 'batch', batchId: id, chunk: 1 }, [
      { correlationId: '2', stored: answered('2') },
      { correlationId: '3', stored: answered('3') },
    ]);
    assert.deepEqual(finished, [{ kind: 'batch', id }]);
    record = (await store.read(id))!;
    assert.equal(record.state, 'cancelled');
    assert.ok(record.finishedAt !== undefined);
    assert.deepEqual([record.succeeded, record.cancelledLines, batchView(record).running], [2, 4, 0]);
    assert.equal(await store.finishedPrefix(record), 6);
  });

  test('a cancel with nothing running finishes the batch itself; lines past their deadline end it expired', async () => {
    const idle = await openedBatch(4);
    assert.deepEqual(await store.cancel(idle.id), { before: 'queued', finished: true });
    assert.equal((await store.read(idle.id))!.finishedAt !== undefined, true);

    const late = await openedBatch(1);
    const writer = batchResultsWriter(redis, prefix);
    const destination = { kind: 'batch' as const, batchId: late.id, chunk: 0 };
    await writer.begin(chunkJob(['0']), destination);
    const error = { code: ErrorCode.DeadlineExceeded, message: 'too late' };
    const stored = encodeStoredAnswer({ correlationId: '0', error }, []);
    assert.deepEqual(await writer.write(chunkJob(['0']), destination, [{ correlationId: '0', stored, error, expired: true }]), [
      { kind: 'batch', id: late.id },
    ]);
    const record = (await store.read(late.id))!;
    assert.equal(record.state, 'expired');
    assert.deepEqual([record.failed, record.expiredLines], [1, 1]);
  });

  test('an upload of bad lines only is finished when opened; its webhook describes it', async () => {
    const { id, opened } = await openedBatch(0, 2, { callbackUrl: 'https://example.com/hook' });
    assert.equal(opened, 'finished');
    const webhook = await describeBatchWebhook(redis, prefix, id);
    assert.ok(webhook !== undefined);
    assert.equal(webhook.url, 'https://example.com/hook');
    assert.equal(webhook.body.type, 'batch.finished');
    assert.equal(webhook.body.batch.id, id);
    assert.equal(webhook.body.batch.state, 'succeeded');
    assert.equal(webhook.body.batch.failed, 2);
    assert.ok(webhook.retentionMs > 0 && webhook.retentionMs <= retentionMs);
    const unfinished = await openedBatch(2, 0, { callbackUrl: 'https://example.com/hook' });
    assert.equal(await describeBatchWebhook(redis, prefix, unfinished.id), undefined, 'not finished: nothing to deliver');
  });

  test('an upload past its receiving time cannot be opened; a discarded one leaves no key', async () => {
    const id = randomBytes(6).toString('hex');
    const createdAt = Date.now();
    await store.create({
      id,
      tenant: 'acme',
      keyId: 'k1',
      model: target.model,
      modelShown: target.model,
      version: '1',
      createdAt,
      retentionMs,
      deadline: createdAt,
      priority: 1,
    });
    await store.writeReceived(id, createdAt, {
      lines: [[0, '{"i":"0","c":0}']],
      results: [],
      input: { chunk: 0, bytes: encodeChunkInput([request(0)]), lines: 1 },
    });
    assert.ok((await scanKeys(redis, `${prefix}:batch{${id}}*`)).length >= 3);
    await store.discard(id, 'acme', 1);
    assert.deepEqual(await scanKeys(redis, `${prefix}:batch{${id}}*`), []);
    const opening: BatchOpening = { total: 1, chunks: 1, chunkLines: 2, queuedLines: 1, invalidLines: 0, version: '1' };
    assert.equal(await store.open(id, opening, 1000), 'gone');
  });

  test('queueing chunks resumes where a dead creator stopped: one job per chunk, never two', async () => {
    const { id, chunks } = await openedBatch(6);
    assert.equal(chunks, 3);
    const logger = pino({ level: 'silent' });
    const durable = new DurableProducer(redis, prefix, logger);
    try {
      let calls = 0;
      const dying = {
        enqueue: async (...args: Parameters<DurableProducer['enqueue']>) => {
          calls += 1;
          // The second chunk is queued, then the process dies before recording it.
          await durable.enqueue(...args);
          if (calls === 2) throw new Error('killed');
        },
      };
      await assert.rejects(enqueueBatchChunks(store, dying, (await store.read(id))!, 'creator'), /killed/);
      let record = (await store.read(id))!;
      assert.equal(record.enqueued, 1);
      assert.ok(needsEnqueueResume(record));
      assert.equal(await store.takeEnqueueLease(id, 'someone'), true, 'the dead creator released or lost its lease');
      assert.equal(await enqueueBatchChunks(store, durable, record, 'reader'), false, 'another holder is queueing');
      await store.releaseEnqueueLease(id);
      assert.equal(await enqueueBatchChunks(store, durable, record, 'reader'), true);
      record = (await store.read(id))!;
      assert.equal(record.enqueued, 3);
      assert.equal(needsEnqueueResume(record), false);
      // Each chunk's job, whichever of the model's queues holds it: its hash is `<prefix>:<queue>:<job id>`.
      const jobKeys = await scanKeys(redis, `${prefix}:*{${target.model}}:batch-${id}-*`);
      const jobs = jobKeys.filter((key) => /:batch-[0-9a-f]+-\d+$/.test(key));
      assert.deepEqual(jobs.map((key) => key.slice(key.lastIndexOf(':') + 1)).sort(), [0, 1, 2].map((chunk) => batchChunkJobId(id, chunk)).sort());
      for (const key of jobs) {
        const chunk = Number(key.split('-').pop());
        const data = JSON.parse((await redis.hget(key, 'data'))!);
        assert.deepEqual(data.durable, { kind: 'batch', batchId: id, chunk, owner: { tenant: 'acme', keyId: 'k1' } });
      }
      assert.deepEqual(await scanKeys(redis, `${prefix}:batch{${id}}:input:*`), [], 'inputs go once queued');
    } finally {
      await durable.close();
    }
  });

  test('every key a batch leaves expires; reading one that expired meanwhile creates nothing', async () => {
    const { id } = await openedBatch(2);
    const stale = (await store.read(id))!;
    await redis.del(batchKey(prefix, id));
    assert.equal(await store.finishedPrefix(stale), 0);
    await store.markEnqueued(id, 0);
    assert.equal(await redis.exists(batchKey(prefix, id)), 0, 'no record without a TTL was made');
    for (const key of await scanKeys(redis, `${prefix}:batch{*`)) {
      assert.ok((await redis.pttl(key)) > 0, `${key} has no TTL`);
    }
  });

  test('a tenant lists its batches newest first, page by page, and counts the unfinished ones', async () => {
    const tenant = `t${randomBytes(3).toString('hex')}`;
    const ids: string[] = [];
    const base = Date.now();
    for (let index = 0; index < 5; index += 1) {
      const id = `list${index}${randomBytes(3).toString('hex')}`;
      // Two share a creation time: the cursor must still not repeat or skip one.
      const createdAt = base + Math.min(index, 3);
      await store.create({ id, tenant, keyId: 'k', model: 'm', modelShown: 'm', version: '1', createdAt, retentionMs, deadline: createdAt, priority: 1 });
      ids.push(id);
    }
    const seen: string[] = [];
    let cursor: { createdAt: number; id: string } | undefined;
    for (let page = 0; page < 5; page += 1) {
      const found = await store.list(tenant, 2, cursor);
      seen.push(...found.batches.map((batch) => batch.id));
      if (found.nextCursor === undefined) break;
      const [createdAt, id] = found.nextCursor.split('.');
      cursor = { createdAt: Number(createdAt), id: id! };
    }
    assert.deepEqual([...seen].sort(), [...ids].sort());
    assert.equal(new Set(seen).size, 5);
    const times = seen.map((id) => base + Math.min(ids.indexOf(id), 3));
    assert.deepEqual(
      times,
      [...times].sort((a, b) => b - a),
      'newest first',
    );
    assert.equal(await store.countUnfinished(tenant), 5);
    assert.deepEqual(await store.unfinishedAcross([tenant, `${tenant}x`]), { count: 5, running: 0, oldestCreatedAt: base });
    await redis.del(batchKey(prefix, ids[0]!));
    assert.equal(await store.countUnfinished(tenant), 4, 'an expired record is dropped from the list');
    assert.equal((await store.list(tenant, 10)).batches.length, 4);
  });
});
