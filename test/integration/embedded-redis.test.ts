import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { createLogger } from '../../src/logger.js';
import { RedisNotFoundError, redisAnswers, resolveRedis } from '../../src/runtime/embedded-redis.js';
import { freePort } from '../../src/runtime/free-port.js';

const logger = createLogger({ LOG_LEVEL: 'silent' }, 'test');

test('REDIS_URL, when set, is used as it is', async () => {
  const resolved = await resolveRedis({ redisUrl: 'redis://example.invalid:1234', dataDirectory: '/nonexistent', logger });
  assert.equal(resolved.url, 'redis://example.invalid:1234');
});

test('without REDIS_URL, a Redis answering on the conventional port is used', async (t) => {
  if (!(await redisAnswers('127.0.0.1', 6379))) return t.skip('no Redis on 127.0.0.1:6379');
  const resolved = await resolveRedis({ redisUrl: undefined, dataDirectory: '/nonexistent', logger });
  assert.equal(resolved.url, 'redis://127.0.0.1:6379');
});

test('with no Redis answering, a private redis-server starts with AOF under the data dir and stops on request', async () => {
  const dataDirectory = await mkdtemp(path.join(os.tmpdir(), 'gantry-embedded-redis-'));
  const nobodyListens = await freePort();
  const resolved = await resolveRedis({ redisUrl: undefined, dataDirectory, logger, conventionalPort: nobodyListens });
  try {
    assert.match(resolved.url, /^redis:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(resolved.url, `redis://127.0.0.1:${nobodyListens}`);
    const client = new Redis(resolved.url);
    assert.equal(await client.config('GET', 'appendonly').then((pair) => (pair as string[])[1]), 'yes');
    assert.equal(await client.config('GET', 'dir').then((pair) => (pair as string[])[1]), path.join(dataDirectory, 'redis'));
    await client.set('probe', 'kept');
    client.disconnect();
  } finally {
    await resolved.stop();
  }
  const port = Number(new URL(resolved.url).port);
  assert.equal(await redisAnswers('127.0.0.1', port), false, 'the private server is gone after stop()');
  assert.ok(existsSync(path.join(dataDirectory, 'redis')), 'its data stays under the data dir');
  await rm(dataDirectory, { recursive: true, force: true });
});

test('with no Redis and no redis-server, the error says what to install', async () => {
  const nobodyListens = await freePort();
  await assert.rejects(
    resolveRedis({ redisUrl: undefined, dataDirectory: '/nonexistent', logger, conventionalPort: nobodyListens, redisServerCommand: 'redis-server-that-does-not-exist' }),
    (error: unknown) => error instanceof RedisNotFoundError && /apt-get install redis-server/.test(error.message) && /REDIS_URL/.test(error.message),
  );
});

test("a private redis-server a dead start left running is adopted, not joined by a second one on the same AOF directory", async () => {
  const dataDirectory = await mkdtemp(path.join(os.tmpdir(), 'gantry-embedded-redis-'));
  const nobodyListens = await freePort();
  // The first start "dies": its stop() is never called, so its redis-server keeps running.
  const first = await resolveRedis({ redisUrl: undefined, dataDirectory, logger, conventionalPort: nobodyListens });
  const port = Number(new URL(first.url).port);
  try {
    const client = new Redis(first.url);
    await client.set('acknowledged', 'yes');
    client.disconnect();
    const second = await resolveRedis({ redisUrl: undefined, dataDirectory, logger, conventionalPort: nobodyListens });
    assert.equal(second.url, first.url, 'the second start uses the server already on its directory');
    const again = new Redis(second.url);
    assert.equal(await again.get('acknowledged'), 'yes');
    again.disconnect();
    await second.stop();
    assert.equal(await redisAnswers('127.0.0.1', port), false, 'the adopted server is stopped by the start that adopted it');
  } finally {
    await first.stop();
    await rm(dataDirectory, { recursive: true, force: true });
  }
});

test('a stale record (its server gone) starts a fresh private redis-server', async () => {
  const dataDirectory = await mkdtemp(path.join(os.tmpdir(), 'gantry-embedded-redis-'));
  const nobodyListens = await freePort();
  const first = await resolveRedis({ redisUrl: undefined, dataDirectory, logger, conventionalPort: nobodyListens });
  const firstPort = Number(new URL(first.url).port);
  // Ended from outside, without stop(): its record stays behind.
  const client = new Redis(first.url);
  await client.shutdown('NOSAVE').catch(() => undefined);
  client.disconnect();
  for (let attempt = 0; attempt < 100 && (await redisAnswers('127.0.0.1', firstPort)); attempt++) await new Promise((resolve) => setTimeout(resolve, 50));
  const second = await resolveRedis({ redisUrl: undefined, dataDirectory, logger, conventionalPort: nobodyListens });
  try {
    assert.equal(await redisAnswers('127.0.0.1', Number(new URL(second.url).port)), true);
  } finally {
    await second.stop();
    await first.stop();
    await rm(dataDirectory, { recursive: true, force: true });
  }
});
