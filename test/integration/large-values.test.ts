/**
 * Large tensors through Redis (src/queue/large-values.ts) on a real Redis: values written in several parts come
 * back as one buffer, byte for byte; a read can delete the key; a missing key or one of the wrong length reads as
 * undefined, which callers turn into DEADLINE_EXCEEDED or UNAVAILABLE.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { inlineValueLimitBytes, placeValue, readLargeValue, writeLargeValue } from '../../src/queue/large-values.js';

describe('large values through Redis', () => {
  let redis: Redis;
  const prefix = `lv-test-${randomBytes(4).toString('hex')}`;
  const key = (name: string) => `${prefix}:${name}`;

  before(() => {
    redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  });

  after(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  test('a value in parts (empty, 100 KiB, 4 MiB + 3 bytes) reads back as their concatenation', async () => {
    const parts = [new Uint8Array(0), randomBytes(100 * 1024), new Uint8Array(randomBytes(4 * 1024 * 1024 + 3))];
    await writeLargeValue(redis, key('parts'), parts, 10_000);
    const value = await readLargeValue(redis, key('parts'), 100 * 1024 + 4 * 1024 * 1024 + 3);
    assert.ok(value !== undefined);
    assert.ok(value.equals(Buffer.concat(parts)));
    assert.equal(await redis.exists(key('parts')), 1, 'kept: a job payload must stay for a re-run');
  });

  test('a view into a larger buffer writes only the bytes it shows', async () => {
    const backing = randomBytes(1000);
    const view = new Uint8Array(backing.buffer, backing.byteOffset + 10, 500);
    await writeLargeValue(redis, key('view'), view, 10_000);
    const value = await readLargeValue(redis, key('view'), 500);
    assert.ok(value?.equals(backing.subarray(10, 510)));
  });

  test('no parts writes an empty value', async () => {
    await writeLargeValue(redis, key('empty'), [], 10_000);
    assert.equal((await readLargeValue(redis, key('empty'), 0))?.byteLength, 0);
  });

  test('deleteAfter reads the value, then removes the key', async () => {
    const bytes = randomBytes(200 * 1024);
    await writeLargeValue(redis, key('once'), bytes, 10_000);
    const value = await readLargeValue(redis, key('once'), bytes.byteLength, { deleteAfter: true });
    assert.ok(value?.equals(bytes), 'read before the delete');
    assert.equal(await redis.exists(key('once')), 0);
  });

  test('the value expires after its TTL', async () => {
    await writeLargeValue(redis, key('ttl'), randomBytes(70 * 1024), 1_000);
    const ttl = await redis.pttl(key('ttl'));
    assert.ok(ttl > 0 && ttl <= 1_000, `pttl ${ttl}`);
  });

  test('a missing key or a value of another length reads as undefined', async () => {
    assert.equal(await readLargeValue(redis, key('never-written'), 10), undefined);
    await writeLargeValue(redis, key('short'), randomBytes(100), 10_000);
    assert.equal(await readLargeValue(redis, key('short'), 101), undefined);
  });

  test('placeValue: up to inlineValueLimitBytes nothing is written (the message carries the bytes); above, they go to the key, expiring after the deadline', async () => {
    const deadline = Date.now() + 30_000;
    const atLimit = [randomBytes(inlineValueLimitBytes - 1), randomBytes(1)];
    assert.equal(await placeValue(redis, atLimit, inlineValueLimitBytes, () => key('inline'), deadline), undefined);
    assert.equal(await redis.exists(key('inline')), 0, 'an inline value writes no key');
    const over = [randomBytes(inlineValueLimitBytes), randomBytes(1)];
    const placed = await placeValue(redis, over, inlineValueLimitBytes + 1, () => key('own-key'), deadline);
    assert.equal(placed, key('own-key'));
    assert.deepEqual(await readLargeValue(redis, placed, inlineValueLimitBytes + 1), Buffer.concat(over));
    const ttl = await redis.pttl(placed);
    assert.ok(ttl > 30_000 && ttl <= 35_000, `expires with the deadline plus its margin (${ttl} ms)`);
  });
});
