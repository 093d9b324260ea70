/**
 * Blob references and the garbage collection (issue 11) on real Redis and a real store: what keeps a blob (a
 * version's reference, an upload's pending reference, a live record of any deployment sharing the store), when
 * an unreferenced one goes (after the grace period, never before), and the claim that makes an upload of the same
 * bytes wait until a removal in progress is done.
 */
import { test, describe, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, utimes } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { BlobCollector, warmupSampleMinimumAgeMs } from '../../src/registry/blob-collector.js';
import { WarmupSampleStore } from '../../src/registry/warmup-samples.js';
import { ModelRegistry } from '../../src/registry/model-registry.js';
import { FileModelStore } from '../../src/registry/file-model-store.js';
import type { StoredBlob } from '../../src/registry/model-store.js';
import { deleteKeys } from '../helpers/gantry-process.js';
import { deploymentMarkerKey } from '../../src/redis-keys.js';

const redisUrl = 'redis://127.0.0.1:6379';
const logger = pino({ level: 'silent' });

describe('blob references and garbage collection (real Redis, real files)', () => {
  let redis: Redis;
  let prefix: string;
  let directory: string;
  let store: FileModelStore;
  let registry: ModelRegistry;
  let trusted: boolean;
  let collected: StoredBlob[];

  before(() => {
    redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  });
  after(() => redis.disconnect());
  beforeEach(async () => {
    prefix = `itest-gc-${randomBytes(4).toString('hex')}`;
    directory = await mkdtemp(path.join(os.tmpdir(), 'gantry-gc-'));
    store = new FileModelStore(directory);
    await store.init();
    await store.registryRecords(prefix).claimDeploymentId('d');
    await redis.set(deploymentMarkerKey(prefix), 'd');
    registry = new ModelRegistry(redis, prefix, { records: store.registryRecords(prefix), deploymentId: () => 'd' });
    trusted = true;
    collected = [];
  });
  afterEach(async () => {
    await deleteKeys(redisUrl, prefix);
    await rm(directory, { recursive: true, force: true });
  });

  function collector(graceMs: number): BlobCollector {
    return new BlobCollector(redis, prefix, store, registry.blobReferences, {
      graceMs,
      intervalMs: 60_000,
      isRegistryTrusted: () => trusted,
      onCollected: (blob) => collected.push(blob),
      logger,
    });
  }

  /** An upload as the route makes it: pending reference before publication, then the version. */
  async function upload(name: string, bytes: Buffer): Promise<{ sha256: string; version: string }> {
    const uploadId = randomBytes(8).toString('hex');
    const blob = await store.put(Readable.from([bytes]), 1024 ** 2, {
      beforePublish: (stored) => registry.blobReferences.takePending(stored.sha256, uploadId),
    });
    const record = await registry.createVersion(name, blob, { uploadId });
    return { sha256: blob.sha256, version: record.version };
  }

  test('a referenced blob stays; once its last version is deleted it goes after the grace period, not before', async () => {
    const bytes = randomBytes(1000);
    const first = await upload('a', bytes);
    await upload('b', bytes);
    const gc = collector(0);
    assert.deepEqual((await gc.runPass()).collected, []);
    await registry.deleteVersion('a', first.version);
    assert.deepEqual((await gc.runPass()).collected, [], 'b still uses the bytes');
    await registry.deleteModel('b');

    const patient = collector(60_000);
    assert.deepEqual((await patient.runPass()).collected, [], 'within the grace period');
    assert.equal(await store.exists(first.sha256), true);
    const pass = await gc.runPass();
    assert.deepEqual(pass.collected, [{ sha256: first.sha256, size: 1000 }], 'past a grace period of 0');
    assert.equal(await store.exists(first.sha256), false);
    assert.deepEqual(
      collected.map((blob) => blob.sha256),
      [first.sha256],
    );
    assert.deepEqual(await redis.zrange(`${prefix}:blobs:unreferenced`, 0, -1), [], 'its grace period is forgotten');
  });

  test('a published blob whose version is not created yet is kept by its pending reference', async () => {
    const uploadId = 'upload-1';
    const blob = await store.put(Readable.from([randomBytes(500)]), 1024 ** 2, {
      beforePublish: (stored) => registry.blobReferences.takePending(stored.sha256, uploadId),
    });
    const gc = collector(0);
    assert.deepEqual((await gc.runPass()).collected, []);
    assert.deepEqual((await gc.runPass()).collected, []);
    assert.equal(await store.exists(blob.sha256), true);
    // The upload gives up: the pending reference goes and the blob with it (grace 0).
    await registry.blobReferences.releasePending(blob.sha256, uploadId);
    assert.deepEqual(
      (await gc.runPass()).collected.map((stored) => stored.sha256),
      [blob.sha256],
    );
  });

  test('a file no one ever referenced is stamped at first sight and collected once its grace period is over', async () => {
    const orphan = await store.put(Readable.from([randomBytes(300)]), 1024 ** 2);
    const gc = collector(0);
    assert.deepEqual((await gc.runPass()).collected, [], 'first sight starts the grace period');
    assert.deepEqual(
      (await gc.runPass()).collected.map((stored) => stored.sha256),
      [orphan.sha256],
    );
  });

  test('a live record of another deployment sharing the store keeps its blob', async () => {
    const bytes = randomBytes(700);
    const blob = await store.put(Readable.from([bytes]), 1024 ** 2);
    await store.registryRecords('other-prefix').writeVersion({ name: 'theirs', version: '1', sha256: blob.sha256, size: 700, createdAt: '' });
    const gc = collector(0);
    await gc.runPass();
    assert.deepEqual((await gc.runPass()).collected, []);
    assert.equal(await store.exists(blob.sha256), true);
    await store.registryRecords('other-prefix').markDeleted('theirs', '1');
    await gc.runPass();
    assert.deepEqual(
      (await gc.runPass()).collected.map((stored) => stored.sha256),
      [blob.sha256],
    );
  });

  test("no pass while the registry cannot be trusted (lost or another deployment's), nor while another process holds the lock", async () => {
    const orphan = await store.put(Readable.from([randomBytes(300)]), 1024 ** 2);
    const gc = collector(0);
    trusted = false;
    assert.equal((await gc.runPass()).skipped, 'registry-untrusted');
    trusted = true;
    await redis.set(`${prefix}:blob-gc:lock`, 'another-process', 'PX', 10_000);
    assert.equal((await gc.runPass()).skipped, 'busy');
    await redis.del(`${prefix}:blob-gc:lock`);
    await gc.runPass();
    assert.deepEqual(
      (await gc.runPass()).collected.map((stored) => stored.sha256),
      [orphan.sha256],
    );
  });

  test('an upload of bytes the collection has claimed waits until the removal is done, then publishes them anew', async () => {
    const bytes = randomBytes(400);
    const { sha256, version } = await upload('a', bytes);
    await registry.deleteVersion('a', version);
    const references = registry.blobReferences;
    assert.equal(await references.examine(sha256, 0, 'pass-token'), 'claimed');

    const order: string[] = [];
    const uploading = upload('b', bytes).then((result) => {
      order.push('upload published');
      return result;
    });
    // While claimed, the upload cannot take its pending reference (it polls): the removal goes first.
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(order.length, 0, 'the upload waits on the claim');
    assert.equal(await references.renewClaim(sha256, 'pass-token'), true);
    await store.remove(sha256);
    order.push('removed');
    await references.endClaim(sha256, true);
    const b = await uploading;
    assert.deepEqual(order, ['removed', 'upload published']);
    assert.equal(await store.exists(sha256), true, 'the upload published the bytes after the removal');
    assert.equal(await registry.isBlobReferenced(b.sha256), true);
    assert.deepEqual((await collector(0).runPass()).collected, []);
  });

  test('a claim that expired (or was taken by another pass) is not renewed, so its file stays', async () => {
    const { sha256, version } = await upload('a', randomBytes(100));
    await registry.deleteVersion('a', version);
    assert.equal(await registry.blobReferences.examine(sha256, 0, 'token-1'), 'claimed');
    assert.equal(await registry.blobReferences.renewClaim(sha256, 'token-2'), false);
    await redis.del(`${prefix}:blob:${sha256}:collecting`);
    assert.equal(await registry.blobReferences.renewClaim(sha256, 'token-1'), false);
  });
  test('warm-up samples no live version names go with a pass once old enough; named and young ones stay', async () => {
    const samples = new WarmupSampleStore(store.warmupSamples);
    const text = (value: number) => JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: [value] }] });
    const kept = await upload('sampled', randomBytes(100));
    const [named, unnamed, young, ofDeleted] = [await samples.put(text(1)), await samples.put(text(2)), await samples.put(text(3)), await samples.put(text(4))];
    await registry.setWarmupSample('sampled', kept.version, named);
    const deleted = await upload('sampled', randomBytes(100));
    await registry.setWarmupSample('sampled', deleted.version, ofDeleted);
    await registry.deleteVersion('sampled', deleted.version);
    const old = new Date(Date.now() - warmupSampleMinimumAgeMs - 60_000);
    for (const sample of [named, unnamed, ofDeleted]) await utimes(path.join(directory, 'warmup-samples', `${sample}.json`), old, old);

    const gc = new BlobCollector(redis, prefix, store, registry.blobReferences, {
      graceMs: 0,
      intervalMs: 60_000,
      isRegistryTrusted: () => trusted,
      logger,
    });
    await gc.runPass();
    const left = (await readdir(path.join(directory, 'warmup-samples'))).map((file) => file.replace('.json', '')).sort();
    assert.deepEqual(left, [named, young].sort(), "the named sample and the young one stay; the unnamed and the deleted version's go");
    // Storing a collected-looking sample again makes it young: the next pass leaves it for its version to name.
    await utimes(path.join(directory, 'warmup-samples', `${young}.json`), old, old);
    assert.equal(await samples.put(text(3)), young);
    await gc.runPass();
    assert.ok((await readdir(path.join(directory, 'warmup-samples'))).includes(`${young}.json`));
  });
});
