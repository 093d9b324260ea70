/**
 * The pool view on real Redis (its own key prefix): workers' announcements (workers-view/worker-announcement.ts)
 * read by an API's LiveWorkers. A model is unserved only while announced workers exist and none matches; a
 * withdrawn worker leaves the view within about a second; an id whose announcement lapsed (a worker killed
 * outright) is pruned from the set; patterns naming other tenants stay out of the reason. A worker announces again
 * as soon as its Redis is back (one that lost its data included), and a shutdown while Redis is away does not
 * wait for it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { Redis } from 'ioredis';
import { createLogger } from '../../src/logger.js';
import { workerAnnouncementsKey } from '../../src/redis-keys.js';
import { LiveWorkers } from '../../src/workers-view/live-workers.js';
import { WorkerAnnouncer } from '../../src/workers-view/worker-announcement.js';
import { deleteKeys } from '../helpers/gantry-process.js';
import { startPrivateRedis, waitUntil } from '../helpers/reliability-harness.js';
import { createRedis } from '../../src/queue/redis-connection.js';

const redisUrl = 'redis://127.0.0.1:6379';
const prefix = `test-live-workers-${randomBytes(4).toString('hex')}`;
const logger = createLogger({ LOG_LEVEL: 'silent' }, 'test');
let redis: Redis;
const unserved: string[] = [];

before(() => {
  redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
});
after(async () => {
  await deleteKeys(redisUrl, prefix);
  redis.disconnect();
});

/** A fresh view (no cache shared between tests). */
const view = () => new LiveWorkers(redis, prefix, logger, (model) => unserved.push(model));

test('with no announced worker nothing is unserved: requests queue for the first worker to come', async () => {
  const workers = view();
  assert.equal(await workers.serving('anything'), undefined);
  await workers.checkServed('anything');
  assert.deepEqual(unserved, []);
});

test('announced pools: a model is served by the workers whose patterns match, refused with the reason when none does', async () => {
  const gpu = new WorkerAnnouncer(redis, prefix, logger);
  const cpu = new WorkerAnnouncer(redis, prefix, logger);
  await gpu.start(['big-*', 'acme~llm-*', 'other~secret-*'], 'cuda');
  await cpu.start(['small-?'], 'cpu');
  try {
    const workers = view();
    assert.deepEqual(await workers.serving('big-model'), { servedBy: 1 });
    assert.deepEqual(await workers.serving('acme~llm-7b'), { servedBy: 1 });
    assert.deepEqual(await workers.serving('small-1'), { servedBy: 1 });
    const snapshot = await workers.snapshot();
    assert.deepEqual(snapshot?.workers.map((worker) => worker.device).sort(), ['cpu', 'cuda']);

    const forDefaultTenant = await workers.serving('small-12');
    assert.equal(forDefaultTenant?.servedBy, 0);
    // Another tenant's patterns are counted, not shown.
    assert.equal(
      forDefaultTenant?.unservedReason,
      "no running worker serves model 'small-12': the 2 running workers serve [big-*, small-?] and 2 more; start a worker with GANTRY_WORKER_MODELS matching it",
    );
    const forAcme = await workers.serving('acme~vision', 'vision');
    assert.match(forAcme?.unservedReason ?? '', /model 'vision': the 2 running workers serve \[acme~llm-\*, big-\*, small-\?\] and 1 more;/);

    await assert.rejects(workers.checkServed('small-12'), (error: Error & { code?: string; retryAfterSeconds?: number }) => {
      assert.equal(error.code, 'UNAVAILABLE');
      assert.equal(error.retryAfterSeconds, 5);
      assert.match(error.message, /^No running worker serves model 'small-12'/);
      return true;
    });
    assert.deepEqual(unserved, ['small-12']);
    await workers.checkServed('big-model');

    // A worker that stops withdraws its announcement; the view follows within about a second.
    await cpu.withdraw();
    await waitUntil(async () => (await workers.serving('small-1'))?.servedBy === 0, 2000, 'the withdrawn worker to leave the view');
  } finally {
    await gpu.withdraw();
    await cpu.withdraw();
  }
});

test('an id whose announcement lapsed (a worker killed outright) is pruned, and no worker is left', async () => {
  await redis.sadd(workerAnnouncementsKey(prefix), 'killed-worker');
  const workers = view();
  assert.equal(await workers.serving('anything'), undefined);
  assert.equal(await redis.sismember(workerAnnouncementsKey(prefix), 'killed-worker'), 0);
});

test('a worker announces again as soon as Redis is back, and withdrawing while Redis is away does not hang', { timeout: 60_000 }, async () => {
  const privateRedis = await startPrivateRedis();
  // The worker's own kind of connection: it queues commands while Redis is away and reconnects forever.
  const connection = createRedis(privateRedis.url, 'consumer', 'test-announcer');
  connection.on('error', () => undefined);
  const reader = new Redis(privateRedis.url, { maxRetriesPerRequest: 1, lazyConnect: true });
  reader.on('error', () => undefined);
  const announcer = new WorkerAnnouncer(connection, prefix, logger);
  try {
    await announcer.start(['mlp*'], 'cpu');
    await reader.connect();
    const announced = async () => (await reader.smembers(workerAnnouncementsKey(prefix))).includes(announcer.id);
    // The connection may still be connecting when start() returns: the first announcement goes at its 'ready'.
    await waitUntil(announced, 5000, 'the first announcement');
    // A restart without its data (the AOF removed): the announcement comes back with the connection.
    reader.disconnect();
    await privateRedis.shutdown();
    await rm(path.join(privateRedis.directory, 'appendonlydir'), { recursive: true, force: true });
    await privateRedis.restart();
    await reader.connect();
    await waitUntil(announced, 5000, 'the announcement to come back after the restart');

    reader.disconnect();
    await privateRedis.shutdown();
    const started = Date.now();
    await announcer.withdraw();
    assert.ok(Date.now() - started < 2000, `withdraw took ${Date.now() - started} ms with Redis away`);
  } finally {
    await announcer.withdraw();
    connection.disconnect();
    reader.disconnect();
    await privateRedis.cleanup();
  }
});
