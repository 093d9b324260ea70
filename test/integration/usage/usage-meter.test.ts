import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { createLogger } from '../../../src/logger.js';
import { QuotaChecker } from '../../../src/limits/quota-checker.js';
import { ErrorCode, GantryError } from '../../../src/errors.js';
import { UsageMeter } from '../../../src/usage/usage-meter.js';
import { readUsage } from '../../../src/usage/usage-report.js';
import { nextDayStart, type UsageEvent } from '../../../src/usage/usage-record.js';
import { deleteKeys } from '../../helpers/gantry-process.js';

const redisUrl = 'redis://127.0.0.1:6379';
const logger = createLogger({ LOG_LEVEL: 'silent' }, 'test');
const hourMs = 3600_000;

function event(overrides: Partial<UsageEvent> = {}): UsageEvent {
  return {
    tenant: 'acme',
    keyId: 'key1',
    model: 'acme~mlp',
    version: '1',
    outcome: 'success',
    rows: 1,
    computeNs: 1000,
    bytesIn: 100,
    bytesOut: 50,
    ...overrides,
  };
}

describe('UsageMeter and QuotaChecker (real Redis)', () => {
  let redis: Redis;
  let prefix: string;
  const meters: UsageMeter[] = [];
  const newMeter = (connection = redis) => {
    const meter = new UsageMeter(connection, { prefix, flushIntervalMs: 60_000, retentionDays: 1, logger });
    meters.push(meter);
    return meter;
  };
  const report = (groupBy: 'tenant' | 'key' | 'model', tenants: string[] | 'all' = 'all') => {
    const now = Date.now();
    return readUsage(redis, prefix, {
      fromMs: Math.floor(now / hourMs) * hourMs - hourMs,
      toMs: Math.ceil(now / hourMs) * hourMs + hourMs,
      tenants,
      groupBy,
      granularity: 'total',
    });
  };

  before(() => {
    redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  });
  after(async () => {
    for (const meter of meters) await meter.close(100);
    await deleteKeys(redisUrl, prefix);
    redis.disconnect();
  });

  test('two meters (two API processes) add up exactly per tenant, key and model', async () => {
    prefix = `test-usage-${randomBytes(4).toString('hex')}`;
    const first = newMeter();
    const second = newMeter();
    for (let index = 0; index < 7; index++) first.record(event({ computeNs: 1_000_001 }));
    for (let index = 0; index < 5; index++) second.record(event({ keyId: 'key2', model: 'acme~other', rows: 4, bytesIn: 10 }));
    second.record(event({ outcome: 'client_error', rows: 0, computeNs: 0, model: '', version: '' }));
    for (let index = 0; index < 3; index++) second.record(event({ tenant: 'globex', keyId: 'key9', model: 'globex~mlp' }));
    await Promise.all([first.flush(), second.flush()]);

    const byTenant = await report('tenant');
    assert.deepEqual(
      byTenant.map((row) => [row.tenant, row.counts.requests, row.counts.rows, row.counts.compute_ns, row.counts.bytes_in, row.counts.bytes_out]),
      [
        ['acme', 13, 7 + 20, 7 * 1_000_001 + 5 * 1000, 700 + 50 + 100, 13 * 50],
        ['globex', 3, 3, 3000, 300, 150],
      ],
    );
    assert.equal(byTenant[0]!.outcomes.success, 12);
    assert.equal(byTenant[0]!.outcomes.client_error, 1);

    const byKey = await report('key', ['acme']);
    assert.deepEqual(byKey.map((row) => [row.keyId, row.counts.requests]).sort(), [
      ['key1', 8],
      ['key2', 5],
    ]);
    const byModel = await report('model', ['acme']);
    assert.deepEqual(byModel.map((row) => [row.model, row.counts.requests]).sort(), [
      ['', 1],
      ['acme~mlp', 7],
      ['acme~other', 5],
    ]);
  });

  test('usage recorded while Redis is unreachable is written once it is back, exactly once', async () => {
    prefix = `test-usage-${randomBytes(4).toString('hex')}`;
    const connection = new Redis(redisUrl, { maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: true });
    await connection.connect();
    const meter = newMeter(connection);
    for (let index = 0; index < 4; index++) meter.record(event());
    connection.disconnect();
    while (connection.status !== 'end') await new Promise((resolve) => setTimeout(resolve, 5));
    await meter.flush();
    for (let index = 0; index < 2; index++) meter.record(event());
    await meter.flush();
    assert.deepEqual(await report('tenant'), [], 'nothing reached Redis while it was away');
    await connection.connect();
    await meter.flush();
    await meter.flush();
    await meter.flush();
    const rows = await report('tenant');
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.counts.requests, 6);
    connection.disconnect();
  });

  test('close() flushes what is left', async () => {
    prefix = `test-usage-${randomBytes(4).toString('hex')}`;
    const meter = newMeter();
    meter.record(event({ tenant: 'initech', model: 'initech~m' }));
    await meter.close();
    assert.equal((await report('tenant'))[0]?.counts.requests, 1);
  });

  test('quotas: refused once used up, counting this process before it flushes and the other after; limit refusals never count', async () => {
    prefix = `test-usage-${randomBytes(4).toString('hex')}`;
    const meterA = newMeter();
    const meterB = newMeter();
    const quotasA = new QuotaChecker(redis, prefix, meterA, { cacheTtlMs: 50 });
    const quotasB = new QuotaChecker(redis, prefix, meterB, { cacheTtlMs: 50 });
    const limits = { requestsPerDay: 3 };
    for (let index = 0; index < 3; index++) {
      await quotasA.check('acme', limits);
      meterA.record(event());
    }
    // Process A knows at once (its own usage, unflushed).
    const refusal = await quotasA.refusal('acme', limits);
    assert.equal(refusal?.quota, 'requestsPerDay');
    assert.equal(refusal?.limit, 'quota_requests_day');
    assert.ok(refusal?.error instanceof GantryError && refusal.error.code === ErrorCode.ResourceExhausted);
    assert.match(refusal.error.message, /requestsPerDay.*3 requests of 3 requests.*resets at/);
    assert.equal((refusal.error as GantryError).retryAfterSeconds, Math.max(1, Math.ceil((nextDayStart(Date.now()).getTime() - Date.now()) / 1000)));
    assert.equal(await quotasB.refusal('acme', limits), undefined, 'process B has not seen A flush yet');
    // Limit refusals are metered but not counted against the quota.
    meterA.record(event({ outcome: 'quota_exceeded', computeNs: 0 }));
    await meterA.flush();
    // Once A flushed and B's cache period passed, B refuses too.
    let seen = await quotasB.refusal('acme', limits);
    const deadline = Date.now() + 2000;
    while (seen === undefined && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      seen = await quotasB.refusal('acme', limits);
    }
    assert.equal(seen?.quota, 'requestsPerDay');
    assert.match(seen!.error.message, /\(3 requests of 3 requests\)/);
    // A's flush answered the totals, so A's numbers stay exact after its unflushed usage is gone.
    assert.match((await quotasA.refusal('acme', limits))!.error.message, /\(3 requests of 3 requests\)/);
    // A month quota and compute quota of the same tenant.
    assert.equal(await quotasA.refusal('acme', { requestsPerMonth: 4 }), undefined);
    assert.equal((await quotasA.refusal('acme', { computeSecondsPerDay: 0.000003 }))?.quota, 'computeSecondsPerDay');
    assert.equal(await quotasA.refusal('acme', { computeSecondsPerDay: 0.000004 }), undefined);
    // Another tenant is untouched.
    assert.equal(await quotasA.refusal('globex', limits), undefined);
  });
});
