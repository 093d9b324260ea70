/**
 * A Redis connection lost in the middle of a registry read (what a Sentinel failover does to every connection)
 * must read as "Redis unavailable" (503 and retry), never as "no such model" (404): the failover test saw
 * `Unknown model` for a model that existed, when the connection went between listVersions' two reads.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { isRedisUnavailableError } from '../../src/errors.js';
import { createRedis, waitForReady } from '../../src/queue/redis-connection.js';
import { ModelRegistry } from '../../src/registry/model-registry.js';
import { deleteKeys } from '../helpers/gantry-process.js';

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `itest-failover-reads-${randomBytes(4).toString('hex')}`;
after(() => deleteKeys(redisUrl, prefix));

test('the connection lost between the version list and the records: listVersions rejects as Redis-unavailable, not []', async () => {
  const setup = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  try {
    await new ModelRegistry(setup, prefix).createVersion('m', { sha256: 'a'.repeat(64), size: 1 });
  } finally {
    setup.disconnect();
  }
  // A producer connection as the API has (no offline queue), dropped for real right after the first read answered.
  const producer = createRedis(redisUrl, 'producer', 'test-failover-reads');
  producer.on('error', () => undefined);
  try {
    await waitForReady(producer, 5000);
    const reader = new ModelRegistry(producer, prefix);
    assert.equal((await reader.listVersions('m')).length, 1, 'the version is there while the connection lasts');
    const zrange = producer.zrange.bind(producer) as (...args: unknown[]) => Promise<string[]>;
    (producer as unknown as { zrange: (...args: unknown[]) => Promise<string[]> }).zrange = async (...args) => {
      const versions = await zrange(...args);
      producer.disconnect(true);
      return versions;
    };
    await assert.rejects(reader.listVersions('m'), (error: unknown) => isRedisUnavailableError(error));
  } finally {
    producer.disconnect();
  }
});
