import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { ModelRegistry } from '../../src/registry/model-registry.js';
import { parseRegistryEvent, type RegistryEvent } from '../../src/registry/registry-events.js';
import { registryEventsChannel } from '../../src/redis-keys.js';
import { deleteKeys } from '../helpers/gantry-process.js';

const redisUrl = 'redis://127.0.0.1:6379';
const shaA = 'a'.repeat(64);
const shaB = 'b'.repeat(64);
const signature = {
  inputs: [{ name: 'input', datatype: 'FP32' as const, shape: [-1, 4] }],
  outputs: [{ name: 'output', datatype: 'FP32' as const, shape: [-1, 4] }],
};

async function countKeys(redis: Redis, prefix: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    found.push(...keys);
  } while (cursor !== '0');
  return found;
}

describe('ModelRegistry (real Redis)', () => {
  let redis: Redis;
  let subscriber: Redis;
  let prefix: string;
  let registry: ModelRegistry;
  let events: RegistryEvent[];

  before(async () => {
    redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
    subscriber = new Redis(redisUrl);
  });

  after(async () => {
    redis.disconnect();
    subscriber.disconnect();
  });

  async function freshRegistry(): Promise<void> {
    prefix = `itest-${randomBytes(4).toString('hex')}`;
    registry = new ModelRegistry(redis, prefix);
    events = [];
    await subscriber.unsubscribe();
    subscriber.removeAllListeners('message');
    subscriber.on('message', (channel: string, message: string) => {
      if (channel === registryEventsChannel(prefix)) events.push(parseRegistryEvent(message) ?? assert.fail(`not a registry event: ${message}`));
    });
    await subscriber.subscribe(registryEventsChannel(prefix));
  }

  /** Waits until `count` events arrived (pub/sub delivery is asynchronous). */
  async function eventsSoFar(count: number): Promise<RegistryEvent[]> {
    const deadline = Date.now() + 2000;
    while (events.length < count && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    await new Promise((resolve) => setTimeout(resolve, 30));
    return events;
  }

  async function cleanup(): Promise<void> {
    await deleteKeys(redisUrl, prefix);
    assert.deepEqual(await countKeys(redis, prefix), []);
  }

  test('createVersion numbers versions 1, 2, 3; getVersion and listVersions read them back', async () => {
    await freshRegistry();
    try {
      const created = [];
      for (let index = 0; index < 3; index++) created.push(await registry.createVersion('mlp', { sha256: index === 1 ? shaB : shaA, size: 100 + index }));
      assert.deepEqual(
        created.map((version) => version.version),
        ['1', '2', '3'],
      );
      for (const version of created) assert.equal(version.state, 'LOADING');

      const second = await registry.getVersion('mlp', '2');
      assert.ok(second);
      assert.equal(second.name, 'mlp');
      assert.equal(second.sha256, shaB);
      assert.equal(second.size, 101);
      assert.equal(typeof second.size, 'number');
      assert.equal(second.state, 'LOADING');
      assert.equal(second.reason, undefined);
      assert.equal(second.signature, undefined);
      assert.ok(!Number.isNaN(Date.parse(second.createdAt)));
      assert.deepEqual(second, created[1]);

      assert.equal(await registry.getVersion('mlp', '4'), undefined);
      assert.equal(await registry.getVersion('other', '1'), undefined);

      const listed = await registry.listVersions('mlp');
      assert.deepEqual(
        listed.map((version) => version.version),
        ['1', '2', '3'],
      );
      assert.deepEqual(await registry.listVersions('other'), []);
      assert.deepEqual(await registry.listModelNames(), ['mlp']);
      assert.equal(await registry.modelExists('mlp'), true);
      assert.equal(await registry.modelExists('other'), false);

      // Versions are ordered numerically, not as strings ("10" after "9").
      for (let index = 4; index <= 10; index++) await registry.createVersion('mlp', { sha256: shaA, size: 1 });
      assert.deepEqual(
        (await registry.listVersions('mlp')).map((version) => version.version),
        ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10'],
      );

      // Numbering is per model.
      assert.equal((await registry.createVersion('other', { sha256: shaA, size: 1 })).version, '1');
      assert.deepEqual(await registry.listModelNames(), ['mlp', 'other']);
    } finally {
      await cleanup();
    }
  });

  test('a load outcome and a later fault record state, signature, reason and warm-up', async () => {
    await freshRegistry();
    try {
      await registry.createVersion('m', { sha256: shaA, size: 10 });
      assert.equal(await registry.lifecycle.finishLoad('m', '1', 1, { state: 'READY', signature, warmup: 'ok' }), 'recorded');
      const ready = await registry.getVersion('m', '1');
      assert.equal(ready?.state, 'READY');
      assert.deepEqual(ready?.signature, signature);
      assert.equal(ready?.warmup, 'ok');
      assert.equal(ready?.reason, undefined);

      await registry.lifecycle.markUnavailable('m', '1', 'broken');
      const unavailable = await registry.getVersion('m', '1');
      assert.equal(unavailable?.state, 'UNAVAILABLE');
      assert.equal(unavailable?.reason, 'broken');
      // The signature learnt earlier is kept.
      assert.deepEqual(unavailable?.signature, signature);
      assert.equal(unavailable?.sha256, shaA);
    } finally {
      await cleanup();
    }
  });

  test('a load outcome or a fault on a deleted (or never created) version does not resurrect it', async () => {
    await freshRegistry();
    try {
      await registry.createVersion('m', { sha256: shaA, size: 10 });
      await registry.deleteVersion('m', '1');
      assert.equal(await registry.lifecycle.finishLoad('m', '1', 1, { state: 'READY', signature }), 'deleted');
      assert.equal(await registry.lifecycle.finishLoad('m', '7', 1, { state: 'READY', signature }), 'deleted');
      await registry.lifecycle.markUnavailable('m', '1', 'broken');
      assert.equal(await registry.getVersion('m', '1'), undefined);
      assert.equal(await registry.getVersion('m', '7'), undefined);
      assert.deepEqual(await registry.listVersions('m'), []);
      assert.deepEqual(await registry.listModelNames(), []);
      assert.equal(await redis.exists(`${prefix}:model:{m}:v:1`), 0);
    } finally {
      await cleanup();
    }
  });

  test('run strikes count per existing version, and a new load (repository load) starts them again', async () => {
    await freshRegistry();
    try {
      await registry.createVersion('m', { sha256: shaA, size: 10 });
      assert.equal(await registry.recordRunStrike('m', '1'), 1);
      assert.equal(await registry.recordRunStrike('m', '1'), 2);
      await registry.lifecycle.beginLoad('m', '1');
      assert.equal(await registry.recordRunStrike('m', '1'), 1);
      // A version that does not exist gets no strike (and no key).
      assert.equal(await registry.recordRunStrike('m', '9'), 0);
      assert.equal(await redis.exists(`${prefix}:model:{m}:v:9`), 0);
    } finally {
      await cleanup();
    }
  });

  test('deleteVersion reports an orphaned blob only when no other version references it', async () => {
    await freshRegistry();
    try {
      await registry.createVersion('a', { sha256: shaA, size: 1 }); // a/1 → A
      await registry.createVersion('a', { sha256: shaA, size: 1 }); // a/2 → A
      await registry.createVersion('b', { sha256: shaA, size: 1 }); // b/1 → A (another model, same bytes)
      await registry.createVersion('a', { sha256: shaB, size: 2 }); // a/3 → B

      assert.deepEqual(await registry.deleteVersion('a', '1'), { deleted: true });
      assert.deepEqual(await registry.deleteVersion('a', '2'), { deleted: true });
      assert.deepEqual(await registry.deleteVersion('a', '3'), { deleted: true, orphanedBlob: shaB });
      assert.deepEqual(await registry.deleteVersion('b', '1'), { deleted: true, orphanedBlob: shaA });

      assert.deepEqual(await registry.deleteVersion('b', '1'), { deleted: false });
      assert.deepEqual(await registry.deleteVersion('nope', '1'), { deleted: false });
    } finally {
      await cleanup();
    }
  });

  test('deleting the last version removes the model from listModelNames; the counter is not reused', async () => {
    await freshRegistry();
    try {
      await registry.createVersion('m', { sha256: shaA, size: 1 });
      await registry.createVersion('m', { sha256: shaA, size: 1 });
      await registry.deleteVersion('m', '1');
      assert.deepEqual(await registry.listModelNames(), ['m']);
      assert.deepEqual(
        (await registry.listVersions('m')).map((version) => version.version),
        ['2'],
      );
      await registry.deleteVersion('m', '2');
      assert.deepEqual(await registry.listModelNames(), []);
      assert.equal(await registry.modelExists('m'), false);
      assert.equal((await registry.createVersion('m', { sha256: shaA, size: 1 })).version, '3');
    } finally {
      await cleanup();
    }
  });

  test('deleteModel removes every version and returns the orphaned blobs', async () => {
    await freshRegistry();
    try {
      await registry.createVersion('m', { sha256: shaA, size: 1 });
      await registry.createVersion('m', { sha256: shaB, size: 1 });
      await registry.createVersion('m', { sha256: shaB, size: 1 });
      await registry.createVersion('keep', { sha256: shaA, size: 1 });

      const result = await registry.deleteModel('m');
      assert.equal(result.deleted, true);
      assert.deepEqual(result.orphanedBlobs, [shaB]);
      assert.deepEqual(await registry.listVersions('m'), []);
      assert.deepEqual(await registry.listModelNames(), ['keep']);
      for (const version of ['1', '2', '3']) assert.equal(await registry.getVersion('m', version), undefined);

      assert.deepEqual(await registry.deleteModel('m'), { deleted: false, orphanedBlobs: [] });
      assert.deepEqual((await registry.deleteModel('keep')).orphanedBlobs, [shaA]);
      // Only the version counters may remain, the blobs' grace periods (the garbage collection removes them) and the
      // marker saying the tenant index is built.
      const left = await countKeys(redis, prefix);
      assert.deepEqual(left.filter((key) => !key.endsWith(':next-version')).sort(), [`${prefix}:blobs:unreferenced`, `${prefix}:tenant-index`]);
      assert.deepEqual((await redis.zrange(`${prefix}:blobs:unreferenced`, 0, -1)).sort(), [shaA, shaB]);
    } finally {
      await cleanup();
    }
  });

  test('registry events are published on the events channel', async () => {
    await freshRegistry();
    try {
      await registry.createVersion('m', { sha256: shaA, size: 1 });
      await registry.lifecycle.finishLoad('m', '1', 1, { state: 'READY', signature });
      await registry.lifecycle.finishLoad('m', '99', 1, { state: 'READY', signature }); // no such version: no event
      await registry.createVersion('m', { sha256: shaA, size: 1 });
      await registry.deleteVersion('m', '1');
      await registry.deleteVersion('m', '1'); // already gone: no event
      await registry.deleteModel('m');

      // Events may carry extra fields (e.g. the blob's sha256); type, name and version are the contract.
      const received = (await eventsSoFar(6)).map(({ type, name, version }) => (version === undefined ? { type, name } : { type, name, version }));
      assert.deepEqual(received, [
        { type: 'version-created', name: 'm', version: '1' },
        { type: 'version-changed', name: 'm', version: '1' },
        { type: 'version-created', name: 'm', version: '2' },
        { type: 'version-deleted', name: 'm', version: '1' },
        { type: 'version-deleted', name: 'm', version: '2' },
        { type: 'model-deleted', name: 'm' },
      ]);
    } finally {
      await cleanup();
    }
  });

  test('concurrent createVersion calls get distinct version numbers', async () => {
    await freshRegistry();
    try {
      const created = await Promise.all(Array.from({ length: 20 }, () => registry.createVersion('m', { sha256: shaA, size: 1 })));
      const numbers = created.map((version) => Number(version.version)).sort((left, right) => left - right);
      assert.deepEqual(
        numbers,
        Array.from({ length: 20 }, (_, index) => index + 1),
      );
      assert.equal((await registry.listVersions('m')).length, 20);
    } finally {
      await cleanup();
    }
  });
});
