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
