import { test, describe, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { ErrorCode, GantryError } from '../../src/errors.js';
import { ModelConfigStore, defaultModelConfig } from '../../src/registry/model-config.js';
import { ModelRegistry } from '../../src/registry/model-registry.js';
import { parseRegistryEvent, type RegistryEvent } from '../../src/registry/registry-events.js';
import { modelConfigKey, registryEventsChannel } from '../../src/redis-keys.js';
import { deleteKeys } from '../helpers/gantry-process.js';

const redisUrl = 'redis://127.0.0.1:6379';

/** Runs `action` and returns the INVALID_ARGUMENT message it throws. */
async function rejection(action: () => Promise<unknown>): Promise<string> {
  try {
    await action();
  } catch (error) {
    assert.ok(error instanceof GantryError, `expected a GantryError, got ${String(error)}`);
    assert.equal(error.code, ErrorCode.InvalidArgument);
    return error.message;
  }
  assert.fail('expected a rejection');
}

describe('ModelConfigStore (real Redis)', () => {
  let redis: Redis;
  let subscriber: Redis;
  let prefix: string;
  let store: ModelConfigStore;
  let events: RegistryEvent[];

  before(async () => {
    redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
    subscriber = new Redis(redisUrl);
  });
  after(() => {
    redis.disconnect();
    subscriber.disconnect();
  });

  beforeEach(async () => {
    prefix = `itest-config-${randomBytes(4).toString('hex')}`;
    store = new ModelConfigStore(redis, prefix);
    events = [];
    await subscriber.unsubscribe();
    subscriber.removeAllListeners('message');
    subscriber.on('message', (channel: string, message: string) => {
      if (channel === registryEventsChannel(prefix)) events.push(parseRegistryEvent(message) ?? assert.fail(`not a registry event: ${message}`));
    });
    await subscriber.subscribe(registryEventsChannel(prefix));
  });
  afterEach(async () => deleteKeys(redisUrl, prefix));

  async function eventsSoFar(count: number): Promise<RegistryEvent[]> {
    const deadline = Date.now() + 2000;
    while (events.length < count && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    return events;
  }

  test('an unconfigured model gets the documented defaults', async () => {
    const config = await store.get('never-configured');
    assert.deepEqual(config, {
      maxBatchSize: 64,
      preferredBatchSizes: [],
      maxQueueDelayMicroseconds: 0,
      instances: 1,
      intraOpThreads: 0,
      interOpThreads: 0,
      graphOptimizationLevel: 'all',
      optimizedModelCache: true,
      allowSpinning: false,
      maxQueueSize: 1000,
      defaultPriority: 10,
    });
    assert.deepEqual(config, defaultModelConfig());
    assert.equal('inferTimeoutMs' in config, false);
    assert.equal('labels' in config, false);
  });

  test('update merges the patch over what is stored and returns the effective config', async () => {
    const first = await store.update('m', { maxBatchSize: 8, instances: 2 });
    assert.equal(first.maxBatchSize, 8);
    assert.equal(first.instances, 2);
    assert.equal(first.defaultPriority, 10);
    const second = await store.update('m', { preferredBatchSizes: [4, 8], inferTimeoutMs: 500, labels: ['cat', 'dog'] });
    assert.deepEqual(second, {
      ...defaultModelConfig(),
      maxBatchSize: 8,
      instances: 2,
      preferredBatchSizes: [4, 8],
      inferTimeoutMs: 500,
      labels: ['cat', 'dog'],
    });
    assert.deepEqual(await store.get('m'), second);
    // Stored as one JSON document under the model's key.
    assert.deepEqual(JSON.parse((await redis.get(modelConfigKey(prefix, 'm')))!), second);
    // null resets a field to its default (an optional one disappears).
    const reset = await store.update('m', { instances: null, labels: null });
    assert.equal(reset.instances, 1);
    assert.equal('labels' in reset, false);
    assert.equal(reset.maxBatchSize, 8);
    // An empty patch changes nothing.
    assert.deepEqual(await store.update('m', {}), reset);
  });

  test('validation messages name the field and the problem', async () => {
    assert.equal(await rejection(() => store.update('m', { instances: 17 })), "config field 'instances': must be at most 16");
    assert.equal(await rejection(() => store.update('m', { instances: 0 })), "config field 'instances': must be at least 1");
    assert.equal(await rejection(() => store.update('m', { maxBatchSize: 2.5 })), "config field 'maxBatchSize': must be an integer");
    assert.equal(await rejection(() => store.update('m', { maxBatchSize: '8' })), "config field 'maxBatchSize': must be a number");
    assert.equal(await rejection(() => store.update('m', { optimizedModelCache: 'yes' })), "config field 'optimizedModelCache': must be a boolean");
    assert.match(
      await rejection(() => store.update('m', { graphOptimizationLevel: 'max' })),
      /^config field 'graphOptimizationLevel': must be one of 'disabled', 'basic', 'extended', 'all'$/,
    );
    assert.match(
      await rejection(() => store.update('m', { preferredBatchSizes: [4, 0] })),
      /^config field 'preferredBatchSizes' \(element 1\): must be at least 1$/,
    );
    assert.match(await rejection(() => store.update('m', { maxQueueDelayMicroseconds: 10_000_001 })), /maxQueueDelayMicroseconds': must be at most 10000000/);
    assert.match(await rejection(() => store.update('m', { defaultPriority: 2_097_152 })), /defaultPriority': must be at most 2097151/);
    assert.match(await rejection(() => store.update('m', { inferTimeoutMs: 0 })), /inferTimeoutMs': must be at least 1/);
    assert.match(await rejection(() => store.update('m', [1, 2])), /must be a JSON object/);
    assert.match(await rejection(() => store.update('m', null)), /must be a JSON object/);
    // Several problems are all reported.
    const both = await rejection(() => store.update('m', { instances: 99, intraOpThreads: -1 }));
    assert.match(both, /'instances': must be at most 16/);
    assert.match(both, /'intraOpThreads': must be at least 0/);
    // Nothing was stored by the failed updates.
    assert.equal(await redis.get(modelConfigKey(prefix, 'm')), null);
  });

  test('an unknown field is rejected by name and nothing is stored', async () => {
    assert.equal(await rejection(() => store.update('m', { foo: 1 })), "unknown config field 'foo'");
    const mixed = await rejection(() => store.update('m', { instances: 2, max_batch_size: 4 }));
    assert.equal(mixed, "unknown config field 'max_batch_size'");
    assert.equal(await redis.get(modelConfigKey(prefix, 'm')), null);
  });

  test('an update publishes config-changed on the registry channel', async () => {
    await store.update('announced', { instances: 3 });
    const [event] = await eventsSoFar(1);
    assert.deepEqual(event, { type: 'config-changed', name: 'announced' });
    // A rejected update announces nothing.
    await rejection(() => store.update('announced', { instances: 300 }));
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(events.length, 1);
  });

  test('concurrent updates of different fields are all kept', async () => {
    const fields = ['instances', 'intraOpThreads', 'interOpThreads', 'maxQueueSize', 'defaultPriority', 'maxBatchSize'] as const;
    await Promise.all(fields.map((field) => new ModelConfigStore(redis, prefix).update('race', { [field]: 5 })));
    const config = await store.get('race');
    for (const field of fields) assert.equal(config[field], 5, field);
  });

  test('a stored field that no longer validates falls back to its default', async () => {
    await redis.set(modelConfigKey(prefix, 'old'), JSON.stringify({ instances: 400, maxBatchSize: 4, removedField: true }));
    const config = await store.get('old');
    assert.equal(config.instances, 1);
    assert.equal(config.maxBatchSize, 4);
    assert.equal('removedField' in config, false);
  });

  test('delete, and deleting the model in the registry, remove the config', async () => {
    await store.update('gone', { instances: 2 });
    await store.delete('gone');
    assert.equal((await store.get('gone')).instances, 1);

    const registry = new ModelRegistry(redis, prefix);
    await registry.createVersion('with-versions', { sha256: 'a'.repeat(64), size: 1 });
    await store.update('with-versions', { instances: 4 });
    await registry.deleteModel('with-versions');
    assert.equal(await redis.get(modelConfigKey(prefix, 'with-versions')), null);

    // The last version going takes the model, and its configuration, with it.
    const { version } = await registry.createVersion('last-version', { sha256: 'b'.repeat(64), size: 1 });
    await store.update('last-version', { instances: 4 });
    await registry.deleteVersion('last-version', version);
    assert.equal(await redis.get(modelConfigKey(prefix, 'last-version')), null);
  });
});
