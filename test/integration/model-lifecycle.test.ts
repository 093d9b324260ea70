/**
 * The one owner of model state (src/registry/model-lifecycle.ts) against real Redis, and the worker's load
 * (src/worker/load-processor.ts) with real onnxruntime sessions: a load's outcome is recorded only while the version
 * is LOADING at the generation the load started with, so an unload, a fault, a newer load or a delete that comes
 * while it runs always wins; a refused load releases its sessions; every transition is announced once.
 */
import { test, describe, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Redis } from 'ioredis';
import { ErrorCode } from '../../src/errors.js';
import { createLogger } from '../../src/logger.js';
import { localBlobs } from '../helpers/local-blobs.js';
import { createWorkerMetrics } from '../../src/metrics/worker-metrics.js';
import { defaultExecutionSettings, jobSchemaVersion, type LoadJob } from '../../src/queue/job-contracts.js';
import { decodeReply, type LoadReplyHeader } from '../../src/queue/reply-codec.js';
import { ModelRegistry } from '../../src/registry/model-registry.js';
import { FileModelStore } from '../../src/registry/file-model-store.js';
import { followRegistryEvents, type RegistryEvent } from '../../src/registry/registry-events.js';
import { processLoadJob } from '../../src/worker/load-processor.js';
import { SessionCache, type CachedModel } from '../../src/worker/session-cache.js';
import { deleteKeys, fixturePath } from '../helpers/gantry-process.js';

const redisUrl = 'redis://127.0.0.1:6379';
const shaA = 'a'.repeat(64);
const signature = {
  inputs: [{ name: 'input', datatype: 'FP32' as const, shape: [-1, 4] }],
  outputs: [{ name: 'output', datatype: 'FP32' as const, shape: [-1, 4] }],
};

describe('model lifecycle (real Redis)', () => {
  let redis: Redis;
  let prefix: string;
  let registry: ModelRegistry;

  before(() => {
    redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  });
  after(() => redis.disconnect());
  beforeEach(() => {
    prefix = `itest-lifecycle-${randomBytes(4).toString('hex')}`;
    registry = new ModelRegistry(redis, prefix);
  });
  afterEach(() => deleteKeys(redisUrl, prefix));

  test('a READY from a stale generation is refused; the current generation records it', async () => {
    await registry.createVersion('m', { sha256: shaA, size: 1 });
    const second = await registry.lifecycle.beginLoad('m', '1');
    assert.equal(second, 2);
    assert.equal(await registry.lifecycle.finishLoad('m', '1', 1, { state: 'READY', signature }), 'superseded');
    assert.equal((await registry.getVersion('m', '1'))?.state, 'LOADING');
    assert.equal(await registry.lifecycle.finishLoad('m', '1', 2, { state: 'READY', signature, warmup: 'ok' }), 'recorded');
    const ready = await registry.getVersion('m', '1');
    assert.equal(ready?.state, 'READY');
    assert.equal(ready?.warmup, 'ok');
    // A second outcome of the same load (a re-delivered job) changes nothing: the version is no longer LOADING.
    assert.equal(await registry.lifecycle.finishLoad('m', '1', 2, { state: 'UNAVAILABLE', reason: 'late' }), 'superseded');
    assert.equal((await registry.getVersion('m', '1'))?.state, 'READY');
  });

  test('an unload during a load wins: the load finishing after it records nothing', async () => {
    await registry.createVersion('m', { sha256: shaA, size: 1 });
    await registry.createVersion('m', { sha256: shaA, size: 1 });
    assert.deepEqual(await registry.lifecycle.unloadModel('m', 'unloaded'), ['1', '2']);
    assert.equal(await registry.lifecycle.finishLoad('m', '1', 1, { state: 'READY', signature }), 'superseded');
    assert.equal(await registry.lifecycle.finishLoad('m', '2', 1, { state: 'UNAVAILABLE', reason: 'bad file' }), 'superseded');
    for (const version of await registry.listVersions('m')) {
      assert.equal(version.state, 'UNAVAILABLE');
      assert.equal(version.reason, 'unloaded');
    }
    // A fault wins the same way.
    await registry.createVersion('m', { sha256: shaA, size: 1 });
    assert.equal(await registry.lifecycle.markUnavailable('m', '3', 'stopped runs'), true);
    assert.equal(await registry.lifecycle.finishLoad('m', '3', 1, { state: 'READY', signature }), 'superseded');
    assert.equal((await registry.getVersion('m', '3'))?.reason, 'stopped runs');
  });

  test('a delete during a load wins: the load finishing after it writes nothing, and no transition re-creates it', async () => {
    await registry.createVersion('m', { sha256: shaA, size: 1 });
    await registry.deleteVersion('m', '1');
    assert.equal(await registry.lifecycle.finishLoad('m', '1', 1, { state: 'READY', signature }), 'deleted');
    assert.equal(await registry.lifecycle.beginLoad('m', '1'), undefined);
    assert.equal(await registry.lifecycle.markUnavailable('m', '1', 'late'), false);
    assert.deepEqual(await registry.lifecycle.unloadModel('m', 'unloaded'), []);
    assert.equal(await redis.exists(`${prefix}:model:{m}:v:1`), 0);
    assert.equal(await registry.getVersion('m', '1'), undefined);
  });

  test('concurrent unloads, loads and deletes leave one consistent state, 50 times', async () => {
    for (let round = 0; round < 50; round++) {
      const name = `race-${round}`;
      await registry.createVersion(name, { sha256: shaA, size: 1 });
      // The load's outcome is written as soon as its LOADING is, racing the unload.
      const load = registry.lifecycle.beginLoad(name, '1').then(async (generation) => ({
        generation,
        outcome: generation === undefined ? undefined : await registry.lifecycle.finishLoad(name, '1', generation, { state: 'READY', signature }),
      }));
      const [{ generation, outcome }] = await Promise.all([load, registry.lifecycle.unloadModel(name, 'unloaded')]);
      const settled = await registry.getVersion(name, '1');
      // Either the unload came last (UNAVAILABLE, the load refused or overwritten) or the load came last (READY).
      if (settled?.state === 'READY') assert.equal(outcome, 'recorded', `round ${round}`);
      else assert.equal(settled?.reason, 'unloaded', `round ${round}: ${JSON.stringify(settled)}`);
      assert.equal(settled?.loadGeneration, 3, `round ${round}: both transitions counted`);
      assert.ok(generation === 2 || generation === 3, `round ${round}`);

      const [, begun] = await Promise.all([registry.deleteVersion(name, '1'), registry.lifecycle.beginLoad(name, '1')]);
      assert.equal(await redis.exists(`${prefix}:model:{${name}}:v:1`), 0, `round ${round}: a load after the delete re-created the version (${begun})`);
      assert.deepEqual(await registry.listVersions(name), []);
    }
  });

  test('every transition is announced once, to other processes too; refused ones are not', async () => {
    const subscriber = new Redis(redisUrl);
    const received: RegistryEvent[] = [];
    try {
      await followRegistryEvents(subscriber, prefix, (event) => {
        if (event !== undefined) received.push(event);
      });
      await registry.createVersion('m', { sha256: shaA, size: 1 });
      const generation = (await registry.lifecycle.beginLoad('m', '1'))!;
      await registry.lifecycle.finishLoad('m', '1', generation - 1, { state: 'READY', signature }); // stale: no event
      await registry.lifecycle.finishLoad('m', '1', generation, { state: 'READY', signature });
      await registry.lifecycle.markUnavailable('m', '1', 'stopped runs');
      await registry.lifecycle.markUnavailable('m', '9', 'no such version'); // no event
      await registry.lifecycle.finishLoad('m', '9', 1, { state: 'READY', signature }); // no event
      await registry.deleteVersion('m', '1');
      const expected = ['version-created 1', 'version-changed 1', 'version-changed 1', 'version-changed 1', 'version-deleted 1'];
      const deadline = Date.now() + 2000;
      while (received.length < expected.length && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      // Anything refused would have been published before the delete's event, so nothing more can still arrive.
      assert.deepEqual(
        received.map((event) => `${event.type} ${event.version}`),
        expected,
      );
    } finally {
      subscriber.disconnect();
    }
  });
});

describe('the worker records a load only for its generation (real Redis, real onnxruntime)', () => {
  let redis: Redis;
  let subscriber: Redis;
  let prefix: string;
  let registry: ModelRegistry;
  let directory: string;
  let store: FileModelStore;
  let sessions: SessionCache;
  let sha256: string;
  const replies = new Map<string, LoadReplyHeader>();
  const replyTo = `itest-lifecycle-replies-${randomBytes(4).toString('hex')}`;
  const dependencies = () => ({ redis, registry, metrics: createWorkerMetrics(), logger: createLogger({ LOG_LEVEL: 'silent' }, 'test') });

  before(async () => {
    redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
    subscriber = new Redis(redisUrl);
    subscriber.on('messageBuffer', (_channel: Buffer, message: Buffer) => {
      const header = decodeReply(message).header as LoadReplyHeader;
      replies.set(header.correlationId, header);
    });
    await subscriber.subscribe(replyTo);
    directory = await mkdtemp(path.join(os.tmpdir(), 'gantry-lifecycle-'));
    store = new FileModelStore(directory);
    await store.init();
    sha256 = (await store.put(Readable.from([await readFile(fixturePath('tiny-mlp.onnx'))]), 1024 ** 3)).sha256;
    sessions = new SessionCache(
      localBlobs(store, directory),
      { maxLoadedModels: 8, executionProviders: ['cpu'], cacheDirectory: path.join(directory, 'cache') },
      createLogger({ LOG_LEVEL: 'silent' }, 'test'),
    );
  });
  after(async () => {
    await sessions.close();
    subscriber.disconnect();
    redis.disconnect();
    await rm(directory, { recursive: true, force: true });
  });
  beforeEach(() => {
    prefix = `itest-lifecycle-${randomBytes(4).toString('hex')}`;
    registry = new ModelRegistry(redis, prefix);
  });
  afterEach(() => deleteKeys(redisUrl, prefix));

  function loadJob(model: string, version: string, loadGeneration?: number): LoadJob {
    return {
      schemaVersion: jobSchemaVersion,
      model,
      version,
      sha256,
      replyTo,
      correlationId: randomBytes(8).toString('hex'),
      settings: { ...defaultExecutionSettings, optimizedModelCache: false },
      ...(loadGeneration === undefined ? {} : { loadGeneration }),
    };
  }

  async function replyOf(job: LoadJob): Promise<LoadReplyHeader> {
    const deadline = Date.now() + 2000;
    while (!replies.has(job.correlationId) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    return replies.get(job.correlationId) ?? assert.fail('no load reply');
  }

  /** The real cache, with `during` run after the sessions are loaded and before the worker records the outcome. */
  function sessionsWith(during: () => Promise<unknown>, loaded: CachedModel[]): SessionCache {
    return new Proxy(sessions, {
      get(target, property) {
        // The load processor asks for the warmed model (sessions loaded and warmed on every instance).
        if (property !== 'warmed') return Reflect.get(target, property, target) as unknown;
        return async (...parameters: Parameters<SessionCache['warmed']>) => {
          const warmed = await target.warmed(...parameters);
          loaded.push(warmed.model);
          await during();
          return warmed;
        };
      },
    });
  }

  test('an unload while the sessions load: the version stays UNAVAILABLE, the waiter gets 503 (not 422), the sessions go', async () => {
    await registry.createVersion('m', { sha256, size: 1 });
    const loaded: CachedModel[] = [];
    const job = loadJob('m', '1', 1);
    await processLoadJob(job, { ...dependencies(), sessions: sessionsWith(() => registry.lifecycle.unloadModel('m', 'unloaded'), loaded) });
    const settled = await registry.getVersion('m', '1');
    assert.equal(settled?.state, 'UNAVAILABLE');
    assert.equal(settled?.reason, 'unloaded');
    assert.equal((await replyOf(job)).error?.code, ErrorCode.Unavailable, 'the upload keeps the version: it was unloaded, not refused');
    assert.equal(loaded[0]?.instances.healthy, false, 'the sessions loaded for the unloaded version were released');
  });

  test('a delete while the sessions load: nothing is written, the waiter gets 404, the sessions go', async () => {
    await registry.createVersion('m', { sha256, size: 1 });
    const loaded: CachedModel[] = [];
    const job = loadJob('m', '1', 1);
    await processLoadJob(job, { ...dependencies(), sessions: sessionsWith(() => registry.deleteVersion('m', '1'), loaded) });
    assert.equal(await redis.exists(`${prefix}:model:{m}:v:1`), 0);
    assert.equal((await replyOf(job)).error?.code, ErrorCode.NotFound);
    assert.equal(loaded[0]?.instances.healthy, false);
  });

  test('a refused load keeps the sessions while another version of the same bytes serves from them', async () => {
    await registry.createVersion('served', { sha256, size: 1 });
    await processLoadJob(loadJob('served', '1', 1), { ...dependencies(), sessions });
    assert.equal((await registry.getVersion('served', '1'))?.state, 'READY');
    await registry.createVersion('m', { sha256, size: 1 });
    const loaded: CachedModel[] = [];
    await processLoadJob(loadJob('m', '1', 1), { ...dependencies(), sessions: sessionsWith(() => registry.lifecycle.unloadModel('m', 'unloaded'), loaded) });
    assert.equal((await registry.getVersion('m', '1'))?.state, 'UNAVAILABLE');
    assert.equal(loaded[0]?.instances.healthy, true, "the READY version's sessions stay");
  });

  test('a job of a stale generation does nothing; a job from an older API (no generation) loads the current one', async () => {
    await registry.createVersion('m', { sha256, size: 1 });
    await registry.lifecycle.beginLoad('m', '1');
    const stale = loadJob('m', '1', 1);
    await processLoadJob(stale, { ...dependencies(), sessions });
    assert.equal((await registry.getVersion('m', '1'))?.state, 'LOADING', 'the newer load decides');
    assert.equal((await replyOf(stale)).error?.code, ErrorCode.Unavailable);
    const old = loadJob('m', '1');
    await processLoadJob(old, { ...dependencies(), sessions });
    assert.equal((await registry.getVersion('m', '1'))?.state, 'READY');
    assert.ok((await replyOf(old)).signature !== undefined, 'the waiter gets the signature');
  });
});
