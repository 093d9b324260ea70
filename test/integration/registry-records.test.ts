/**
 * The registry's durable half (issue 11): version records and tombstones in the model store, version numbers
 * handed out only under this deployment's marker and never reused, and the rebuild of a wiped registry in Redis
 * from the records (real Redis, real files).
 */
import { test, describe, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Redis } from 'ioredis';
import { ErrorCode, GantryError } from '../../src/errors.js';
import { FileRegistryRecords, warmupSamplesNamedByRecords } from '../../src/registry/file-registry-records.js';
import { ModelConfigStore } from '../../src/registry/model-config.js';
import { ModelRegistry } from '../../src/registry/model-registry.js';
import { FileModelStore } from '../../src/registry/file-model-store.js';
import { rebuildRegistry } from '../../src/registry/registry-rebuild.js';
import { deleteKeys } from '../helpers/gantry-process.js';
import { registryRecordsContract } from '../helpers/registry-records-contract.js';
import { deploymentMarkerKey } from '../../src/redis-keys.js';

const redisUrl = 'redis://127.0.0.1:6379';
const signature = {
  inputs: [{ name: 'input', datatype: 'FP32' as const, shape: [-1, 4] }],
  outputs: [{ name: 'output', datatype: 'FP32' as const, shape: [-1, 4] }],
};

describe('FileRegistryRecords', () => {
  const directories: string[] = [];
  after(async () => {
    for (const directory of directories) await rm(directory, { recursive: true, force: true });
  });

  registryRecordsContract(async () => {
    const directory = await mkdtemp(path.join(os.tmpdir(), 'gantry-records-'));
    directories.push(directory);
    return {
      records: (prefix) => new FileRegistryRecords(directory, prefix),
      filesUnder: async (relative) => {
        const entries = await readdir(path.join(directory, relative), { recursive: true, withFileTypes: true });
        return entries
          .filter((entry) => entry.isFile())
          .map((entry) => path.relative(path.join(directory, relative), path.join(entry.parentPath, entry.name)))
          .sort();
      },
      samplesNamed: () => warmupSamplesNamedByRecords(directory),
      writeByHand: (relative, text) => writeFile(path.join(directory, relative), text),
    };
  });
});

describe('ModelRegistry with durable records (real Redis)', () => {
  let redis: Redis;
  let prefix: string;
  let directory: string;
  let store: FileModelStore;
  let deploymentId: string | undefined;
  let registry: ModelRegistry;

  before(() => {
    redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  });
  after(() => redis.disconnect());
  beforeEach(async () => {
    prefix = `itest-records-${randomBytes(4).toString('hex')}`;
    directory = await mkdtemp(path.join(os.tmpdir(), 'gantry-records-'));
    store = new FileModelStore(directory);
    await store.init();
    deploymentId = 'deployment-a';
    await store.registryRecords(prefix).claimDeploymentId('deployment-a');
    await redis.set(deploymentMarkerKey(prefix), 'deployment-a');
    registry = new ModelRegistry(redis, prefix, { records: store.registryRecords(prefix), deploymentId: () => deploymentId });
  });
  afterEach(async () => {
    await deleteKeys(redisUrl, prefix);
    await rm(directory, { recursive: true, force: true });
  });

  /** What Redis loses when it restarts without persistence: every key of the deployment. */
  const wipeRedis = () => deleteKeys(redisUrl, prefix);

  test('no version number is handed out while Redis lacks the marker or the guardian has no id', async () => {
    await wipeRedis();
    await assert.rejects(registry.createVersion('m', { sha256: 'a'.repeat(64), size: 1 }), (error: unknown) => {
      assert.ok(error instanceof GantryError && error.code === ErrorCode.Unavailable && error.retryAfterSeconds !== undefined);
      assert.match(error.message, /registry is unavailable/);
      return true;
    });
    await redis.set(deploymentMarkerKey(prefix), 'another-deployment');
    await assert.rejects(registry.createVersion('m', { sha256: 'a'.repeat(64), size: 1 }), { code: ErrorCode.Unavailable });
    await redis.set(deploymentMarkerKey(prefix), 'deployment-a');
    deploymentId = undefined;
    await assert.rejects(registry.createVersion('m', { sha256: 'a'.repeat(64), size: 1 }), { code: ErrorCode.Unavailable });
    deploymentId = 'deployment-a';
    assert.equal((await registry.createVersion('m', { sha256: 'a'.repeat(64), size: 1 })).version, '1');
    assert.deepEqual(
      await store
        .registryRecords(prefix)
        .readAll()
        .then((models) => models.map((model) => model.highestVersion)),
      [1],
    );
  });

  test('after a wipe, numbers go on above the highest the store knows, a deleted latest version included', async () => {
    for (let index = 0; index < 3; index++) await registry.createVersion('m', { sha256: 'a'.repeat(64), size: 1 });
    await registry.deleteVersion('m', '3');
    await wipeRedis();
    await redis.set(deploymentMarkerKey(prefix), 'deployment-a');
    assert.equal((await registry.createVersion('m', { sha256: 'b'.repeat(64), size: 2 })).version, '4');
    // A whole model deleted and uploaded again goes on too.
    await registry.deleteModel('m');
    assert.equal((await registry.createVersion('m', { sha256: 'b'.repeat(64), size: 2 })).version, '5');
  });

  test('a rebuild puts back every live version with its number, blob reference and configuration; a missing blob makes it UNAVAILABLE', async () => {
    const present = await store.put(Readable.from([Buffer.from('model bytes')]), 1000);
    const configs = new ModelConfigStore(redis, prefix, store.registryRecords(prefix));
    await registry.createVersion('m', present, { configAtUpload: { maxBatchSize: 2 } });
    await registry.createVersion('m', { sha256: 'f'.repeat(64), size: 5 });
    await registry.createVersion('m', present);
    await registry.lifecycle.finishLoad('m', '1', 1, { state: 'READY', signature });
    await registry.recordSignature('m', '1', signature);
    await registry.deleteVersion('m', '3');
    await configs.update('m', { maxBatchSize: 8 });
    await registry.createVersion('gone', present);
    await registry.deleteModel('gone');
    const before = await registry.listVersions('m');

    await wipeRedis();
    assert.deepEqual(await registry.listModelNames(), []);
    const outcome = await rebuildRegistry({ redis, prefix, registry, records: store.registryRecords(prefix), store, deploymentId: 'deployment-a' });
    assert.equal(outcome.status, 'rebuilt');
    assert.deepEqual(
      outcome.restored.map(({ name, version, state }) => `${name}/${version} ${state}`),
      ['m/1 LOADING', 'm/2 UNAVAILABLE'],
    );
    assert.equal(await redis.get(deploymentMarkerKey(prefix)), 'deployment-a', 'the marker is back (set last)');
    assert.deepEqual(await registry.listModelNames(), ['m']);
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
    assert.equal((await registry.createVersion('gone', present)).version, '2', 'a deleted model keeps its numbers too');

    // Rebuilding an intact registry changes nothing; the fill-in mode (gantry repair) restores only what is missing.
    assert.equal(
      (await rebuildRegistry({ redis, prefix, registry, records: store.registryRecords(prefix), store, deploymentId: 'deployment-a' })).status,
      'intact',
    );
    await registry.lifecycle.finishLoad('m', '1', 1, { state: 'READY', signature });
    await redis.del(`${prefix}:model:{m}:v:2`);
    await redis.zrem(`${prefix}:model:{m}:versions`, '2');
    const filled = await rebuildRegistry(
      { redis, prefix, registry, records: store.registryRecords(prefix), store, deploymentId: 'deployment-a' },
      { fillIn: true },
    );
    assert.deepEqual(
      filled.restored.map(({ name, version }) => `${name}/${version}`),
      ['m/2'],
    );
    assert.equal((await registry.getVersion('m', '1'))?.state, 'READY', 'a version still in Redis is left as it is');
  });

  test('one rebuild at a time: a second caller is told the first holds the lock', async () => {
    await registry.createVersion('m', { sha256: 'a'.repeat(64), size: 1 });
    await wipeRedis();
    await redis.set(`${prefix}:registry:rebuild-lock`, 'someone-else', 'PX', 10_000);
    const busy = await rebuildRegistry({ redis, prefix, registry, records: store.registryRecords(prefix), store, deploymentId: 'deployment-a' });
    assert.equal(busy.status, 'busy');
    assert.equal(await redis.get(deploymentMarkerKey(prefix)), null);
  });
});
