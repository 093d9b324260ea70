import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { ErrorCode, GantryError } from '../../../src/errors.js';
import { tenantKey } from '../../../src/redis-keys.js';
import { TenantStore } from '../../../src/auth/tenant-store.js';
import { LimitStore, tenantLimitsField } from '../../../src/limits/limit-store.js';
import { deleteKeys } from '../../helpers/gantry-process.js';

const redisUrl = 'redis://127.0.0.1:6379';

describe('LimitStore (real Redis)', () => {
  let redis: Redis;
  let prefix: string;

  before(async () => {
    redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
    prefix = `test-limits-${randomBytes(4).toString('hex')}`;
    const tenants = new TenantStore(redis, prefix, 100);
    for (const tenant of ['acme', 'bad', 'shared', 'old', 'garbled']) await tenants.create(tenant, undefined);
  });
  after(async () => {
    await deleteKeys(redisUrl, prefix);
    redis.disconnect();
  });

  test('a tenant or key without limits reads as {} (unlimited); a write replaces the whole document', async () => {
    const store = new LimitStore(redis, prefix);
    assert.deepEqual(await store.tenantLimits('acme'), {});
    assert.deepEqual(await store.keyLimits('k1'), {});
    await store.setTenantLimits('acme', { requestsPerSecond: 5, computeSecondsPerDay: 1.5, maxModels: 3 });
    assert.deepEqual(await store.tenantLimits('acme'), { requestsPerSecond: 5, computeSecondsPerDay: 1.5, maxModels: 3 });
    await store.setTenantLimits('acme', { requestsPerMinute: 100 });
    assert.deepEqual(await store.tenantLimits('acme'), { requestsPerMinute: 100 });
    await store.setTenantLimits('acme', {});
    assert.deepEqual(await new LimitStore(redis, prefix).tenantLimits('acme'), {});
    await store.setKeyLimits('k1', { requestsPerSecond: 2 });
    assert.deepEqual(await store.keyLimits('k1'), { requestsPerSecond: 2 });
  });

  test('bad documents are refused with the field named, and nothing is written', async () => {
    const store = new LimitStore(redis, prefix);
    const refusal = async (action: () => Promise<unknown>) => {
      try {
        await action();
      } catch (error) {
        assert.ok(error instanceof GantryError);
        assert.equal(error.code, ErrorCode.InvalidArgument);
        return error.message;
      }
      assert.fail('expected INVALID_ARGUMENT');
    };
    assert.match(await refusal(() => store.setTenantLimits('bad', { requestsPerSecond: 0 })), /requestsPerSecond/);
    assert.match(await refusal(() => store.setTenantLimits('bad', { requestsPerSecond: 1.5 })), /requestsPerSecond/);
    assert.match(await refusal(() => store.setTenantLimits('bad', { rps: 3 })), /unknown limit 'rps'/);
    assert.match(await refusal(() => store.setKeyLimits('bad', { maxModels: 3 })), /unknown limit 'maxModels'/);
    assert.match(await refusal(() => store.setTenantLimits('bad', [1])), /JSON object/);
    assert.deepEqual(await store.tenantLimits('bad'), {});
    try {
      await store.setTenantLimits('nobody', { requestsPerSecond: 1 });
      assert.fail('expected NOT_FOUND');
    } catch (error) {
      assert.ok(error instanceof GantryError);
      assert.equal(error.code, ErrorCode.NotFound);
    }
    assert.equal(await redis.exists(tenantKey(prefix, 'nobody')), 0, 'no record is made for a tenant that does not exist');
  });

  test('another process sees a change within the cache time, without any request waiting on Redis', async () => {
    const writer = new LimitStore(redis, prefix);
    const reader = new LimitStore(redis, prefix, { cacheTtlMs: 200 });
    await writer.setTenantLimits('shared', { requestsPerSecond: 1 });
    assert.deepEqual(await reader.tenantLimits('shared'), { requestsPerSecond: 1 });
    await writer.setTenantLimits('shared', { requestsPerSecond: 7 });
    // Still fresh in the reader's cache: the old value.
    assert.deepEqual(await reader.tenantLimits('shared'), { requestsPerSecond: 1 });
    await new Promise((resolve) => setTimeout(resolve, 250));
    const deadline = Date.now() + 2000;
    let seen = await reader.tenantLimits('shared');
    while (seen.requestsPerSecond !== 7 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      seen = await reader.tenantLimits('shared');
    }
    assert.deepEqual(seen, { requestsPerSecond: 7 });
  });

  test('a stored field that no longer validates reads as no limit for that field, the others still hold', async () => {
    await redis.hset(tenantKey(prefix, 'old'), tenantLimitsField, JSON.stringify({ requestsPerSecond: -1, requestsPerMinute: 30, retired: 4 }));
    assert.deepEqual(await new LimitStore(redis, prefix).tenantLimits('old'), { requestsPerMinute: 30 });
    await redis.hset(tenantKey(prefix, 'garbled'), tenantLimitsField, 'not json');
    assert.deepEqual(await new LimitStore(redis, prefix).tenantLimits('garbled'), {});
  });

  test('deleting a tenant forgets its limits in this process at once', async () => {
    const store = new LimitStore(redis, prefix);
    await store.setTenantLimits('shared', { requestsPerSecond: 3 });
    await store.deleteTenantLimits('shared');
    assert.deepEqual(await store.tenantLimits('shared'), {});
  });
});
