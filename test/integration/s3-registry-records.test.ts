/**
 * S3RegistryRecords against a real S3-compatible server (moto): the same checks as FileRegistryRecords'
 * (registry-records.test.ts), over objects instead of files: records, tombstones, signatures, configurations,
 * warm-up samples and routing read back; names differing only in case; the deployment id claimed once under
 * concurrent claims (a conditional write); a hand-made object that does not parse is skipped; the file store's
 * registry folder copied into the bucket reads back the same; and a wiped Redis rebuilt from these records by the
 * real rebuild (registry-rebuild.ts).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Redis } from 'ioredis';
import { FileRegistryRecords } from '../../src/registry/file-registry-records.js';
import { ModelConfigStore } from '../../src/registry/model-config.js';
import { ModelRegistry } from '../../src/registry/model-registry.js';
import { rebuildRegistry } from '../../src/registry/registry-rebuild.js';
import { S3ModelStore } from '../../src/registry/s3-model-store.js';
import { deploymentMarkerKey } from '../../src/redis-keys.js';
import { deleteKeys } from '../helpers/gantry-process.js';
import { startS3Server, type S3Server } from '../../support/s3-server.js';

const bucketName = 'gantry-records-test';
const redisUrl = 'redis://127.0.0.1:6379';
const signature = {
  inputs: [{ name: 'input', datatype: 'FP32' as const, shape: [-1, 4] }],
  outputs: [{ name: 'output', datatype: 'FP32' as const, shape: [-1, 4] }],
};

describe('S3RegistryRecords (moto)', () => {
  let server: S3Server;
  before(async () => {
    server = await startS3Server();
    await server.createBucket(bucketName);
  });
  after(() => server.stop());

  /** A store under a prefix of its own, so tests never see each other's objects. */
  function newStore(): S3ModelStore {
    return new S3ModelStore({
      bucket: bucketName,
      prefix: `records-${randomUUID()}`,
      endpoint: server.endpoint,
      region: server.region,
      forcePathStyle: true,
      credentials: server.credentials,
    });
  }

  /** The objects under a relative prefix of the store, as relative keys, sorted. */
  async function keysUnder(store: S3ModelStore, relativePrefix: string): Promise<string[]> {
    return (await store.bucket.list(relativePrefix)).map((object) => store.bucket.relative(object.key).slice(relativePrefix.length)).sort();
  }

  test('records, tombstones, signatures and configurations read back; the highest number counts deleted versions', async () => {
    const store = newStore();
    const records = store.registryRecords('p');
    await records.writeVersion({
      name: 'm',
      version: '1',
      sha256: 'a'.repeat(64),
      size: 10,
      createdAt: '2026-01-01T00:00:00.000Z',
      configAtUpload: { maxBatchSize: 2 },
    });
    await records.writeVersion({ name: 'm', version: '2', sha256: 'b'.repeat(64), size: 20, createdAt: '2026-01-02T00:00:00.000Z' });
    await records.writeVersion({ name: 'm', version: '3', sha256: 'c'.repeat(64), size: 30, createdAt: '2026-01-03T00:00:00.000Z' });
    await records.writeSignature('m', '1', signature);
    await records.writeSignature('m', '3', signature);
    await records.markDeleted('m', '3');
    await records.writeModelConfig('m', { maxBatchSize: 8 });
    assert.equal(await records.highestVersion('m'), 3, 'the deleted latest version keeps its number taken');
    assert.equal(await records.highestVersion('never'), 0);

    const [model, ...rest] = await records.readAll();
    assert.deepEqual(rest, []);
    assert.equal(model!.name, 'm');
    assert.equal(model!.highestVersion, 3);
    assert.deepEqual(model!.config, { maxBatchSize: 8 });
    assert.deepEqual(
      model!.versions.map(({ version, sha256, signature: recorded, configAtUpload }) => ({ version, sha256, recorded, configAtUpload })),
      [
        { version: '1', sha256: 'a'.repeat(64), recorded: signature, configAtUpload: { maxBatchSize: 2 } },
        { version: '2', sha256: 'b'.repeat(64), recorded: undefined, configAtUpload: undefined },
      ],
    );
    // The file store's layout, one object per file; a deleted version's signature goes with it.
    assert.deepEqual(await keysUnder(store, 'registry/p/models/m/'), ['1.json', '1.signature.json', '2.json', '3.json', 'config.json']);
    await records.writeModelConfig('m', undefined);
    assert.equal((await records.readAll())[0]!.config, undefined);
  });

  test('warm-up samples and routing (aliases, traffic policy) read back; a deleted version takes its sample, and routing can be forgotten', async () => {
    const store = newStore();
    const records = store.registryRecords('p');
    for (const version of ['1', '2']) {
      await records.writeVersion({ name: 'm', version, sha256: version.repeat(64), size: 1, createdAt: '2026-01-01T00:00:00.000Z' });
      await records.writeWarmupSample('m', version, `${version}f`.repeat(32));
    }
    await records.markDeleted('m', '2');
    const routing = {
      aliases: [{ alias: 'production', version: '1', updatedAt: '2026-01-01T00:00:00.000Z' }],
      traffic: { splits: [{ version: '1', weight: 1 }], updatedAt: '2026-01-01T00:00:00.000Z' },
    };
    await records.writeRouting('m', routing);
    const [model] = await records.readAll();
    assert.deepEqual(
      model!.versions.map(({ version, warmupSample }) => ({ version, warmupSample })),
      [{ version: '1', warmupSample: '1f'.repeat(32) }],
    );
    assert.deepEqual(model!.routing, routing);
    assert.deepEqual([...(await store.warmupSamplesNamedByRecords())], ['1f'.repeat(32)], 'a deleted version names no sample');
    await records.writeRouting('m', undefined);
    assert.equal((await records.readAll())[0]!.routing, undefined);
    assert.deepEqual(await keysUnder(store, 'registry/p/models/m/'), ['1.json', '1.warmup.json', '2.json']);
  });

  test('names differing only in case get folders of their own (the file store layout), and read back by name', async () => {
    const store = newStore();
    const records = store.registryRecords('p');
    await records.writeVersion({ name: 'Mlp', version: '1', sha256: 'a'.repeat(64), size: 1, createdAt: '' });
    await records.writeVersion({ name: 'mlp', version: '1', sha256: 'b'.repeat(64), size: 1, createdAt: '' });
    assert.deepEqual(await keysUnder(store, 'registry/p/models/'), ['^mlp/1.json', 'mlp/1.json']);
    assert.deepEqual(
      (await records.readAll()).map((model) => [model.name, model.versions[0]!.sha256[0]]),
      [
        ['Mlp', 'a'],
        ['mlp', 'b'],
      ],
    );
    assert.equal(await records.highestVersion('MLP'), 0);
  });

  test('a deployment id is claimed once: concurrent claims all get the first one (a conditional write)', async () => {
    const store = newStore();
    const records = store.registryRecords('p');
    assert.equal(await records.readDeploymentId(), undefined);
    const claimed = await Promise.all(Array.from({ length: 20 }, (_, index) => records.claimDeploymentId(`id-${index}`)));
    assert.equal(new Set(claimed).size, 1, JSON.stringify(claimed));
    assert.equal(await records.readDeploymentId(), claimed[0]);
    assert.equal(await records.claimDeploymentId('a-later-one'), claimed[0], 'a later claim gets the held id');
    assert.deepEqual(await keysUnder(store, 'registry/p/'), ['deployment.json']);
    // Another queue prefix is another deployment.
    assert.equal(await store.registryRecords('q').claimDeploymentId('other'), 'other');
  });

  test('a hand-made record that does not parse is skipped, not fatal', async () => {
    const store = newStore();
    const records = store.registryRecords('p');
    await records.writeVersion({ name: 'm', version: '1', sha256: 'a'.repeat(64), size: 1, createdAt: '' });
    await store.bucket.putText(store.bucket.key('registry/p/models/m/2.json'), '{not json');
    const [model] = await records.readAll();
    assert.deepEqual(
      model!.versions.map((version) => version.version),
      ['1'],
    );
    assert.equal(model!.highestVersion, 1);
    assert.equal(await records.highestVersion('m'), 2, 'its number still counts as taken');
  });

  test("the file store's registry folder copied into the bucket as it is reads back the same (one layout)", async () => {
    const directory = await mkdtemp(path.join(os.tmpdir(), 'gantry-s3-layout-'));
    try {
      const fileRecords = new FileRegistryRecords(directory, 'p');
      await fileRecords.claimDeploymentId('deployment-a');
      await fileRecords.writeVersion({ name: 'Mlp', version: '1', sha256: 'a'.repeat(64), size: 1, createdAt: '2026-01-01T00:00:00.000Z' });
      await fileRecords.writeSignature('Mlp', '1', signature);
      await fileRecords.writeWarmupSample('Mlp', '1', 'b'.repeat(64));
      await fileRecords.writeVersion({ name: 'Mlp', version: '2', sha256: 'c'.repeat(64), size: 2, createdAt: '2026-01-02T00:00:00.000Z' });
      await fileRecords.markDeleted('Mlp', '2');
      await fileRecords.writeModelConfig('Mlp', { maxBatchSize: 4 });
      await fileRecords.writeRouting('Mlp', { aliases: [{ alias: 'prod', version: '1', updatedAt: '2026-01-01T00:00:00.000Z' }] });
      await fileRecords.writeVersion({ name: 'acme~small', version: '1', sha256: 'd'.repeat(64), size: 3, createdAt: '2026-01-03T00:00:00.000Z' });

      // What `aws s3 sync <data>/registry s3://bucket/<prefix>/registry` does: every file under its relative path.
      const store = newStore();
      const files = (await readdir(directory, { recursive: true, withFileTypes: true })).filter((entry) => entry.isFile());
      assert.ok(files.length >= 8, `${files.length} files`);
      for (const file of files) {
        const full = path.join(file.parentPath, file.name);
        await store.bucket.putText(store.bucket.key(`registry/${path.relative(directory, full).split(path.sep).join('/')}`), await readFile(full, 'utf8'));
      }
      const s3Records = store.registryRecords('p');
      assert.equal(await s3Records.readDeploymentId(), 'deployment-a');
      assert.deepEqual(await s3Records.readAll(), await fileRecords.readAll());
      assert.equal(await s3Records.highestVersion('Mlp'), 2);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  test('a wiped Redis is rebuilt from the S3 records (real Redis, own prefix): live versions, numbers, blob references, configuration', async () => {
    const store = newStore();
    await store.init();
    const prefix = `itest-s3-records-${randomBytes(4).toString('hex')}`;
    const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
    try {
      await store.registryRecords(prefix).claimDeploymentId('deployment-a');
      await redis.set(deploymentMarkerKey(prefix), 'deployment-a');
      const registry = new ModelRegistry(redis, prefix, { records: store.registryRecords(prefix), deploymentId: () => 'deployment-a' });
      const configs = new ModelConfigStore(redis, prefix, store.registryRecords(prefix));
      const present = await store.put(Readable.from([Buffer.from('model bytes')]), 1000);
      await registry.createVersion('m', present, { configAtUpload: { maxBatchSize: 2 } });
      await registry.createVersion('m', { sha256: 'f'.repeat(64), size: 5 });
      await registry.createVersion('m', present);
      await registry.lifecycle.finishLoad('m', '1', 1, { state: 'READY', signature });
      await registry.recordSignature('m', '1', signature);
      await registry.deleteVersion('m', '3');
      await configs.update('m', { maxBatchSize: 8 });
      const before = await registry.listVersions('m');

      await deleteKeys(redisUrl, prefix);
      const outcome = await rebuildRegistry({ redis, prefix, registry, records: store.registryRecords(prefix), store, deploymentId: 'deployment-a' });
      assert.equal(outcome.status, 'rebuilt');
      assert.deepEqual(
        outcome.restored.map(({ name, version, state }) => `${name}/${version} ${state}`),
        ['m/1 LOADING', 'm/2 UNAVAILABLE'],
      );
      const after = await registry.listVersions('m');
      assert.deepEqual(
        after.map(({ version, sha256, size, createdAt }) => ({ version, sha256, size, createdAt })),
        before.map(({ version, sha256, size, createdAt }) => ({ version, sha256, size, createdAt })),
      );
      assert.deepEqual(after[0]!.signature, signature, 'the signature a load read is kept');
      assert.match(after[1]!.reason ?? '', /missing from the store/);
      assert.equal(await registry.isBlobReferenced(present.sha256), true, 'the blob reference is back');
      assert.equal((await configs.get('m')).maxBatchSize, 8, 'the configuration as last changed');
      assert.equal((await registry.createVersion('m', present)).version, '4', 'numbers go on after the deleted 3');
    } finally {
      await deleteKeys(redisUrl, prefix);
      redis.disconnect();
    }
  });
});
