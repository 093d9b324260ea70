/**
 * The registry's upload step against real Redis (src/registry/model-registry.ts uploadVersion and its sha256 index,
 * src/registry/identical-versions.ts): concurrent identical uploads from several connections make one version, the
 * index follows deletes and builds itself for versions made before it, and chosen numbers are taken only once and
 * only above every number the model has had.
 */
import { test, describe, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { defaultTenant } from '../../src/auth/principal.js';
import { ErrorCode, GantryError } from '../../src/errors.js';
import { ModelRegistry } from '../../src/registry/model-registry.js';
import { modelBlobIndexKey } from '../../src/redis-keys.js';
import { deleteKeys } from '../helpers/gantry-process.js';

const redisUrl = 'redis://127.0.0.1:6379';
const shaA = 'a'.repeat(64);
const shaB = 'b'.repeat(64);

describe('identical uploads and chosen numbers (real Redis)', () => {
  /** Several connections, so concurrent uploads really interleave in Redis as separate API processes' would. */
  let connections: Redis[];
  let prefix: string;
  let registries: ModelRegistry[];
  let registry: ModelRegistry;

  before(() => {
    connections = Array.from({ length: 4 }, () => new Redis(redisUrl, { maxRetriesPerRequest: 1 }));
  });
  after(() => {
    for (const connection of connections) connection.disconnect();
  });
  beforeEach(() => {
    prefix = `itest-identical-${randomBytes(4).toString('hex')}`;
    registries = connections.map((connection) => new ModelRegistry(connection, prefix));
    registry = registries[0]!;
  });
  afterEach(() => deleteKeys(redisUrl, prefix));

  const versionsOf = async (name: string) => (await registry.listVersions(name)).map((record) => record.version);

  test('20 concurrent uploads of the same bytes over four connections make one version; all answer with it', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, (_, index) => registries[index % 4]!.uploadVersion('m', { sha256: shaA, size: 1 })));
    assert.equal(results.filter((result) => !result.existing).length, 1, 'exactly one upload created the version');
    assert.deepEqual(new Set(results.map((result) => result.record.version)), new Set(['1']));
    assert.deepEqual(await versionsOf('m'), ['1']);
    assert.equal((await registry.tenantHoldings(defaultTenant)).versions, 1, "the tenant's holdings count one version");
  });

  test('different bytes and ?duplicate make new versions; a delete hands the bytes to the version that still has them', async () => {
    assert.equal((await registry.uploadVersion('m', { sha256: shaA, size: 1 })).record.version, '1');
    assert.equal((await registry.uploadVersion('m', { sha256: shaB, size: 1 })).record.version, '2');
    const duplicate = await registry.uploadVersion('m', { sha256: shaA, size: 1 }, { duplicate: true });
    assert.deepEqual([duplicate.record.version, duplicate.existing], ['3', false]);
    assert.deepEqual((await registry.uploadVersion('m', { sha256: shaA, size: 1 })).record.version, '1', 'the first version keeps the bytes');

    await registry.deleteVersion('m', '1');
    const afterFirst = await registry.uploadVersion('m', { sha256: shaA, size: 1 });
    assert.deepEqual([afterFirst.record.version, afterFirst.existing], ['3', true]);
    await registry.deleteVersion('m', '3');
    const afterBoth = await registry.uploadVersion('m', { sha256: shaA, size: 1 });
    assert.deepEqual([afterBoth.record.version, afterBoth.existing], ['4', false], 'no live version has the bytes: a new one');

    await registry.deleteModel('m');
    const recreated = await registry.uploadVersion('m', { sha256: shaA, size: 1 });
    assert.deepEqual([recreated.record.version, recreated.existing], ['5', false]);
  });

  test('versions made before the index (or with it lost) are found: the index builds itself from them', async () => {
    await registry.createVersion('m', { sha256: shaB, size: 1 });
    await registry.createVersion('m', { sha256: shaA, size: 1 });
    await connections[0]!.del(modelBlobIndexKey(prefix, 'm'));
    const found = await registry.uploadVersion('m', { sha256: shaA, size: 1 });
    assert.deepEqual([found.record.version, found.existing], ['2', true]);
    assert.equal(await registry.identicalVersions.find('m', shaB), '1');
  });

  test('a chosen number is taken once, only above every number the model has had, and later numbers follow it', async () => {
    const chosen = await registry.uploadVersion('m', { sha256: shaA, size: 1 }, { version: '5' });
    assert.deepEqual([chosen.record.version, chosen.existing], ['5', false]);
    assert.equal((await registry.uploadVersion('m', { sha256: shaB, size: 1 })).record.version, '6');
    await assert.rejects(registry.uploadVersion('m', { sha256: 'c'.repeat(64), size: 1 }, { version: '4' }), (error: unknown) => {
      assert.ok(error instanceof GantryError);
      assert.equal(error.code, ErrorCode.AlreadyExists);
      assert.match(error.message, /has had versions up to 6/);
      return true;
    });
    await assert.rejects(registry.uploadVersion('m', { sha256: shaA, size: 1 }, { version: '9' }), /version 5 holds the same file/);

    // Two uploads choosing one number at once: one gets it.
    const racing = await Promise.allSettled([
      registries[1]!.uploadVersion('m', { sha256: 'd'.repeat(64), size: 1 }, { version: '10' }),
      registries[2]!.uploadVersion('m', { sha256: 'e'.repeat(64), size: 1 }, { version: '10' }),
    ]);
    assert.deepEqual(racing.map((outcome) => outcome.status).sort(), ['fulfilled', 'rejected']);
    assert.deepEqual(await versionsOf('m'), ['5', '6', '10']);
  });
});
