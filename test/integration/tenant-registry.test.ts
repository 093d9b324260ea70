/**
 * The registry's tenant index on real Redis: each tenant's model names in a set of its own (a tenant's list reads
 * no other tenant's names), the bytes of each tenant's live versions counted in the same transaction that creates
 * or deletes a version, and registries from before tenants indexed once, into the default tenant.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { ModelRegistry } from '../../src/registry/model-registry.js';
import { deleteKeys } from '../helpers/gantry-process.js';

const redisUrl = 'redis://127.0.0.1:6379';
const shaA = 'a'.repeat(64);
const shaB = 'b'.repeat(64);

describe('ModelRegistry tenant index (real Redis)', () => {
  let redis: Redis;
  const prefixes: string[] = [];

  before(async () => {
    redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  });

  after(async () => {
    for (const prefix of prefixes) await deleteKeys(redisUrl, prefix);
    redis.disconnect();
  });

  function freshPrefix(): string {
    const prefix = `itest-tenancy-${randomBytes(4).toString('hex')}`;
    prefixes.push(prefix);
    return prefix;
  }

  test('two tenants with a model of the same name: each lists its own, the global list has both, bytes apart', async () => {
    const registry = new ModelRegistry(redis, freshPrefix());
    await registry.createVersion('mlp', { sha256: shaA, size: 100 });
    await registry.createVersion('acme~mlp', { sha256: shaA, size: 40 });
    await registry.createVersion('acme~mlp', { sha256: shaB, size: 2 });
    await registry.createVersion('globex~mlp', { sha256: shaB, size: 7 });

    assert.deepEqual(await registry.listModelNames(), ['acme~mlp', 'globex~mlp', 'mlp']);
    assert.deepEqual(await registry.listTenantModelNames('default'), ['mlp']);
    assert.deepEqual(await registry.listTenantModelNames('acme'), ['acme~mlp']);
    assert.deepEqual(await registry.listTenantModelNames('globex'), ['globex~mlp']);
    assert.deepEqual(await registry.listTenantModelNames('initech'), []);
    assert.equal(await registry.countTenantModels('acme'), 1);
    assert.equal(await registry.countVersions('acme~mlp'), 2);
    assert.equal(await registry.countVersions('globex~mlp'), 1);
    // Each version counts its own size, even where two versions share a blob.
    assert.equal(await registry.storedBytes('default'), 100);
    assert.equal(await registry.storedBytes('acme'), 42);
    assert.equal(await registry.storedBytes('globex'), 7);
  });

  test('deleting versions and models takes their bytes and names out of their tenant only, once', async () => {
    const registry = new ModelRegistry(redis, freshPrefix());
    await registry.createVersion('acme~a', { sha256: shaA, size: 10 });
    await registry.createVersion('acme~a', { sha256: shaB, size: 20 });
    await registry.createVersion('acme~b', { sha256: shaA, size: 5 });
    await registry.createVersion('globex~a', { sha256: shaA, size: 1000 });

    // Two deletes of one version racing subtract its bytes once.
    await Promise.all([registry.deleteVersion('acme~a', '1'), registry.deleteVersion('acme~a', '1')]);
    assert.equal(await registry.storedBytes('acme'), 25);
    assert.deepEqual(await registry.listTenantModelNames('acme'), ['acme~a', 'acme~b']);

    // The last version going takes the model out of its tenant's set.
    await registry.deleteVersion('acme~a', '2');
    assert.deepEqual(await registry.listTenantModelNames('acme'), ['acme~b']);
    assert.equal(await registry.storedBytes('acme'), 5);

    await registry.deleteModel('acme~b');
    assert.deepEqual(await registry.listTenantModelNames('acme'), []);
    assert.equal(await registry.storedBytes('acme'), 0);
    assert.deepEqual(await registry.listTenantModelNames('globex'), ['globex~a']);
    assert.equal(await registry.storedBytes('globex'), 1000);
  });

  test('a registry from before tenants is indexed once into the default tenant, its bytes counted once', async () => {
    const prefix = freshPrefix();
    // What a registry written before tenants holds: the global set, versions, no tenant keys.
    await redis
      .multi()
      .sadd(`${prefix}:models`, 'old-a', 'old-b')
      .zadd(`${prefix}:model:{old-a}:versions`, 1, '1', 2, '2')
      .hset(`${prefix}:model:{old-a}:v:1`, { name: 'old-a', version: '1', sha256: shaA, size: '300', state: 'READY', createdAt: '' })
      .hset(`${prefix}:model:{old-a}:v:2`, { name: 'old-a', version: '2', sha256: shaB, size: '30', state: 'READY', createdAt: '' })
      .zadd(`${prefix}:model:{old-b}:versions`, 1, '1')
      .hset(`${prefix}:model:{old-b}:v:1`, { name: 'old-b', version: '1', sha256: shaA, size: '3', state: 'READY', createdAt: '' })
      .exec();

    const first = new ModelRegistry(redis, prefix);
    assert.deepEqual(await first.listTenantModelNames('default'), ['old-a', 'old-b']);
    assert.equal(await first.storedBytes('default'), 333);

    // A second process (its own registry object) finds the index built and counts nothing again.
    const second = new ModelRegistry(redis, prefix);
    await second.createVersion('old-b', { sha256: shaB, size: 1 });
    assert.equal(await second.storedBytes('default'), 334);
    assert.equal(await first.storedBytes('default'), 334);
    await second.deleteVersion('old-a', '1');
    assert.equal(await first.storedBytes('default'), 34);
  });

  test('a restore after Redis lost its data puts back each tenant\'s set and bytes, and is not counted twice later', async () => {
    const prefix = freshPrefix();
    const registry = new ModelRegistry(redis, prefix);
    await registry.createVersion('acme~m', { sha256: shaA, size: 11 }); // this process has now indexed
    await deleteKeys(redisUrl, prefix); // the wipe
    await registry.restore(
      [
        { name: 'acme~m', highestVersion: 2, versions: [{ name: 'acme~m', version: '2', sha256: shaA, size: 11, createdAt: '' }] },
        { name: 'm', highestVersion: 1, versions: [{ name: 'm', version: '1', sha256: shaB, size: 9, createdAt: '' }] },
      ],
      'deployment-1',
      new Set(),
    );
    assert.deepEqual(await registry.listTenantModelNames('acme'), ['acme~m']);
    assert.equal(await registry.storedBytes('acme'), 11);
    assert.equal(await registry.storedBytes('default'), 9);
    // A process started after the restore must not index (and count) the restored versions again.
    const later = new ModelRegistry(redis, prefix);
    assert.equal(await later.storedBytes('acme'), 11);
    assert.deepEqual(await later.listTenantModelNames('default'), ['m']);
    assert.equal(await later.storedBytes('default'), 9);
  });
});
