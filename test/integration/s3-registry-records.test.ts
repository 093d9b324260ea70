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
import { registryRecordsContract } from '../helpers/registry-records-contract.js';
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

  registryRecordsContract(async () => {
    const store = newStore();
    return {
      records: (prefix) => store.registryRecords(prefix),
      filesUnder: (relative) => keysUnder(store, `registry/${relative}`),
      samplesNamed: () => store.warmupSamplesNamedByRecords(),
      writeByHand: (relative, text) => store.bucket.putText(store.bucket.key(`registry/${relative}`), text),
    };
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
