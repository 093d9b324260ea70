/**
 * The reliability harness's own promises (test/helpers/reliability-harness.ts, support/private-redis.ts): the
 * fault-injection tests rely on them, so they are checked here against a real redis-server.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { Cleanup, startPrivateRedis } from '../helpers/reliability-harness.js';

test('a private Redis keeps what was written across a shutdown and restart (AOF, same port)', async () => {
  const redis = await startPrivateRedis();
  try {
    const client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    await client.set('harness:kept', 'yes');
    client.disconnect();
    await redis.shutdown();
    assert.notEqual(redis.process().exitCode ?? redis.process().signalCode, null, 'redis-server exited at shutdown');
    await redis.restart();
    const again = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    try {
      assert.equal(await again.get('harness:kept'), 'yes');
    } finally {
      again.disconnect();
    }
  } finally {
    await redis.cleanup();
  }
});

test('Cleanup runs every step, last registered first, even when one throws', async () => {
  const cleanup = new Cleanup();
  const ran: string[] = [];
  cleanup.add(() => ran.push('first'));
  cleanup.add(() => {
    throw new Error('a failing step');
  });
  cleanup.add(async () => ran.push('last'));
  await cleanup.run();
  assert.deepEqual(ran, ['last', 'first']);
  await cleanup.run();
  assert.deepEqual(ran, ['last', 'first'], 'steps run once');
});
