import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { createLogger } from '../../src/logger.js';
import { DataDirectoryLockedError } from '../../src/runtime/data-directory-lock.js';
import { RedisNotFoundError, redisAnswers, resolveRedis } from '../../src/runtime/embedded-redis.js';
import { freePort } from '../../src/runtime/free-port.js';
import { isProcessRunning } from '../../src/runtime/process-liveness.js';

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
    resolveRedis({
      redisUrl: undefined,
      dataDirectory: '/nonexistent',
      logger,
      conventionalPort: nobodyListens,
      redisServerCommand: 'redis-server-that-does-not-exist',
    }),
    (error: unknown) => error instanceof RedisNotFoundError && /apt-get install redis-server/.test(error.message) && /REDIS_URL/.test(error.message),
  );
});

test('a private redis-server a previous start left running (its keeper killed too) is stopped and replaced, its data kept', async () => {
  const dataDirectory = await mkdtemp(path.join(os.tmpdir(), 'gantry-embedded-redis-'));
  const directory = path.join(dataDirectory, 'redis');
  await mkdir(directory, { recursive: true });
  // What a SIGKILL of a whole start process group leaves: a server in a session of its own, its record, no keeper.
  const leftoverPort = await freePort();
  const leftover = spawn('redis-server', ['--port', String(leftoverPort), '--bind', '127.0.0.1', '--dir', directory, '--appendonly', 'yes', '--save', ''], {
    detached: true,
    stdio: 'ignore',
  });
  const leftoverExited = new Promise<void>((resolve) => leftover.once('exit', () => resolve()));
  try {
    for (let attempt = 0; attempt < 100 && !(await redisAnswers('127.0.0.1', leftoverPort)); attempt++) await new Promise((resolve) => setTimeout(resolve, 50));
    await writeFile(path.join(directory, 'gantry-redis.json'), JSON.stringify({ pid: leftover.pid, port: leftoverPort }));
    const client = new Redis(`redis://127.0.0.1:${leftoverPort}`);
    await client.set('acknowledged', 'yes');
    client.disconnect();

    const resolved = await resolveRedis({ redisUrl: undefined, dataDirectory, logger, mode: 'private' });
    try {
      assert.equal(isProcessRunning(leftover.pid!), false, 'the leftover server was stopped before the new one started');
      assert.notEqual(resolved.url, `redis://127.0.0.1:${leftoverPort}`);
      const again = new Redis(resolved.url);
      assert.equal(await again.get('acknowledged'), 'yes', 'the new server loaded the append-only file the leftover flushed');
      again.disconnect();
    } finally {
      await resolved.stop();
    }
  } finally {
    leftover.kill('SIGKILL');
    await leftoverExited;
    await rm(dataDirectory, { recursive: true, force: true });
  }
});

test('a second private Redis on a data directory whose lock is held is refused before any redis-server starts', async () => {
  const dataDirectory = await mkdtemp(path.join(os.tmpdir(), 'gantry-embedded-redis-'));
  const first = await resolveRedis({ redisUrl: undefined, dataDirectory, logger, mode: 'private' });
  try {
    const recordBefore = await readFile(path.join(dataDirectory, 'redis', 'gantry-redis.json'), 'utf8');
    await assert.rejects(resolveRedis({ redisUrl: undefined, dataDirectory, logger, mode: 'private' }), DataDirectoryLockedError);
    assert.equal(await readFile(path.join(dataDirectory, 'redis', 'gantry-redis.json'), 'utf8'), recordBefore, 'the first server is still the recorded one');
    assert.equal(await redisAnswers('127.0.0.1', Number(new URL(first.url).port)), true, 'the first server still serves');
  } finally {
    await first.stop();
  }
  // Stopped: the lock is released, so the directory can be started again.
  const next = await resolveRedis({ redisUrl: undefined, dataDirectory, logger, mode: 'private' });
  await next.stop();
  await rm(dataDirectory, { recursive: true, force: true });
});

test("mode 'private' starts a private redis-server even when a Redis answers on the conventional port", async (t) => {
  if (!(await redisAnswers('127.0.0.1', 6379))) return t.skip('no Redis on 127.0.0.1:6379');
  const dataDirectory = await mkdtemp(path.join(os.tmpdir(), 'gantry-embedded-redis-'));
  const resolved = await resolveRedis({ redisUrl: undefined, dataDirectory, logger, mode: 'private' });
  try {
    assert.notEqual(resolved.url, 'redis://127.0.0.1:6379');
    const client = new Redis(resolved.url);
    assert.equal(await client.config('GET', 'dir').then((pair) => (pair as string[])[1]), await realpath(path.join(dataDirectory, 'redis')));
    client.disconnect();
  } finally {
    await resolved.stop();
    await rm(dataDirectory, { recursive: true, force: true });
  }
});

test('a stale record (its server gone, its pid free) starts a fresh private redis-server', async () => {
  const dataDirectory = await mkdtemp(path.join(os.tmpdir(), 'gantry-embedded-redis-'));
  await mkdir(path.join(dataDirectory, 'redis'), { recursive: true });
  const gone = spawnSync(process.execPath, ['-e', '']).pid;
  await writeFile(path.join(dataDirectory, 'redis', 'gantry-redis.json'), JSON.stringify({ pid: gone, port: await freePort() }));
  const resolved = await resolveRedis({ redisUrl: undefined, dataDirectory, logger, mode: 'private' });
  try {
    assert.equal(await redisAnswers('127.0.0.1', Number(new URL(resolved.url).port)), true);
  } finally {
    await resolved.stop();
    await rm(dataDirectory, { recursive: true, force: true });
  }
});
