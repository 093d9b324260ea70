/**
 * The registry's tenant index on real Redis: each tenant's model names in a set of its own (a tenant's list reads
 * no other tenant's names), the bytes of each tenant's live versions counted in the same transaction that creates
 * or deletes a version, and registries from before tenants indexed once, into the default tenant.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { GantryError } from '../../src/errors.js';
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
    assert.deepEqual(await registry.tenantHoldings('acme', 'acme~mlp'), { models: 1, versions: 2, storedBytes: 42, hasModel: true });
    assert.deepEqual(await registry.tenantHoldings('acme', 'acme~other'), { models: 1, versions: 2, storedBytes: 42, hasModel: false });
    assert.deepEqual(await registry.tenantHoldings('initech'), { models: 0, versions: 0, storedBytes: 0, hasModel: false });
    // Each version counts its own size, even where two versions share a blob.
    assert.equal((await registry.tenantHoldings('default')).storedBytes, 100);
    assert.equal((await registry.tenantHoldings('acme')).storedBytes, 42);
    assert.equal((await registry.tenantHoldings('globex')).storedBytes, 7);
  });

  test('deleting versions and models takes their bytes and names out of their tenant only, once', async () => {
    const registry = new ModelRegistry(redis, freshPrefix());
    await registry.createVersion('acme~a', { sha256: shaA, size: 10 });
    await registry.createVersion('acme~a', { sha256: shaB, size: 20 });
    await registry.createVersion('acme~b', { sha256: shaA, size: 5 });
    await registry.createVersion('globex~a', { sha256: shaA, size: 1000 });

    // Two deletes of one version racing subtract its bytes once.
    await Promise.all([registry.deleteVersion('acme~a', '1'), registry.deleteVersion('acme~a', '1')]);
    assert.deepEqual(await registry.tenantHoldings('acme'), { models: 2, versions: 2, storedBytes: 25, hasModel: false });
    assert.deepEqual(await registry.listTenantModelNames('acme'), ['acme~a', 'acme~b']);

    // The last version going takes the model out of its tenant's set.
    await registry.deleteVersion('acme~a', '2');
    assert.deepEqual(await registry.listTenantModelNames('acme'), ['acme~b']);
    assert.equal((await registry.tenantHoldings('acme')).storedBytes, 5);

    await registry.deleteModel('acme~b');
    assert.deepEqual(await registry.listTenantModelNames('acme'), []);
    assert.deepEqual(await registry.tenantHoldings('acme'), { models: 0, versions: 0, storedBytes: 0, hasModel: false });
    assert.deepEqual(await registry.listTenantModelNames('globex'), ['globex~a']);
    assert.equal((await registry.tenantHoldings('globex')).storedBytes, 1000);
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
    assert.deepEqual(await first.tenantHoldings('default'), { models: 2, versions: 3, storedBytes: 333, hasModel: false });

    // A second process (its own registry object) finds the index built and counts nothing again.
    const second = new ModelRegistry(redis, prefix);
    await second.createVersion('old-b', { sha256: shaB, size: 1 });
    assert.equal((await second.tenantHoldings('default')).storedBytes, 334);
    assert.equal((await first.tenantHoldings('default')).storedBytes, 334);
    await second.deleteVersion('old-a', '1');
    assert.deepEqual(await first.tenantHoldings('default'), { models: 2, versions: 3, storedBytes: 34, hasModel: false });
  });

  test("a restore after Redis lost its data puts back each tenant's set and bytes, and is not counted twice later", async () => {
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
    assert.equal((await registry.tenantHoldings('acme')).storedBytes, 11);
    assert.equal((await registry.tenantHoldings('default')).storedBytes, 9);
    // A process started after the restore must not index (and count) the restored versions again.
    const later = new ModelRegistry(redis, prefix);
    assert.equal((await later.tenantHoldings('acme')).storedBytes, 11);
    assert.deepEqual(await later.listTenantModelNames('default'), ['m']);
    assert.equal((await later.tenantHoldings('default')).storedBytes, 9);
  });

  test('caps hold under concurrent uploads of one tenant: 409 for models and versions, 413 for bytes, naming the cap', async () => {
    const registry = new ModelRegistry(redis, freshPrefix());
    const refusedBy: string[] = [];
    const capped = (caps: object) => ({ caps, onCapRefused: (limit: string) => refusedBy.push(limit) });
    const outcome = (promise: Promise<unknown>) =>
      promise.then(
        () => 'created',
        (error: unknown) => {
          assert.ok(error instanceof GantryError, String(error));
          return `${error.httpStatus} ${error.code} ${error.message}`;
        },
      );

    // Ten new models at once against maxModels 3: exactly three are created.
    const models = await Promise.all(
      Array.from({ length: 10 }, (_, index) => outcome(registry.createVersion(`acme~m${index}`, { sha256: shaA, size: 1 }, capped({ maxModels: 3 })))),
    );
    assert.equal(models.filter((result) => result === 'created').length, 3, models.join('\n'));
    for (const refusal of models.filter((result) => result !== 'created')) {
      assert.match(refusal, /^409 FAILED_PRECONDITION Tenant 'acme' has 3 models, its cap \(maxModels\)/);
    }
    const names = models.flatMap((result, index) => (result === 'created' ? [`acme~m${index}`] : []));
    // A new version of a model it has is no new model.
    assert.equal(await outcome(registry.createVersion(names[0]!, { sha256: shaA, size: 1 }, capped({ maxModels: 3 }))), 'created');

    // Versions over all its models: it has 4; eight more at once against maxVersions 6 create exactly two.
    const versions = await Promise.all(
      Array.from({ length: 8 }, (_, index) =>
        outcome(registry.createVersion(names[index % names.length]!, { sha256: shaB, size: 1 }, capped({ maxVersions: 6 }))),
      ),
    );
    assert.equal(versions.filter((result) => result === 'created').length, 2, versions.join('\n'));
    assert.match(
      versions.find((result) => result !== 'created')!,
      /^409 FAILED_PRECONDITION Tenant 'acme' has 6 model versions, its cap \(maxVersions, over all its models\)/,
    );

    // Bytes: 6 stored; uploads of 10 bytes at once against 36 leave room for three (to a model it has: the first
    // would otherwise create a fourth model).
    const bytes = await Promise.all(
      Array.from({ length: 6 }, () => outcome(registry.createVersion(names[1]!, { sha256: shaA, size: 10 }, capped({ maxStoredBytes: 36 })))),
    );
    assert.equal(bytes.filter((result) => result === 'created').length, 3, bytes.join('\n'));
    assert.match(
      bytes.find((result) => result !== 'created')!,
      /^413 PAYLOAD_TOO_LARGE This upload of 10 bytes would take tenant 'acme' past its cap on stored model bytes \(maxStoredBytes, 36 bytes; 36 stored now\)/,
    );
    assert.deepEqual(await registry.tenantHoldings('acme'), { models: 3, versions: 9, storedBytes: 36, hasModel: false });

    // Another tenant is not held back by acme's caps, and acme under its caps still uploads.
    assert.equal(
      await outcome(registry.createVersion('globex~m0', { sha256: shaA, size: 1000 }, capped({ maxModels: 1, maxVersions: 1, maxStoredBytes: 1000 }))),
      'created',
    );
    const [firstVersion] = await registry.listVersions(names[0]!);
    await registry.deleteVersion(names[0]!, firstVersion!.version);
    assert.equal(
      await outcome(registry.createVersion(names[2]!, { sha256: shaA, size: 1 }, capped({ maxStoredBytes: 36, maxVersions: 9, maxModels: 3 }))),
      'created',
    );

    assert.deepEqual([...new Set(refusedBy)].sort(), ['tenant_models', 'tenant_stored_bytes', 'tenant_versions']);
    assert.equal(refusedBy.length, 7 + 6 + 3);
  });
});
