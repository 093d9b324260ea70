import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { RateLimiter, rateRulesFor } from '../../../src/limits/rate-limiter.js';
import { deleteKeys } from '../../helpers/gantry-process.js';

const redisUrl = 'redis://127.0.0.1:6379';

describe('RateLimiter (real Redis, two connections as two API processes)', () => {
  let first: Redis;
  let second: Redis;
  let prefix: string;

  before(() => {
    first = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
    second = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
    prefix = `test-rate-${randomBytes(4).toString('hex')}`;
  });
  after(async () => {
    await deleteKeys(redisUrl, prefix);
    first.disconnect();
    second.disconnect();
  });

  test('no rules for a caller without limits', () => {
    assert.deepEqual(rateRulesFor('acme', 'k1', {}, {}), []);
    assert.equal(rateRulesFor('acme', 'k1', { requestsPerMinute: 5 }, { requestsPerSecond: 2, requestsPerMinute: 100 }).length, 3);
  });

  test('a per-minute key limit is shared by both processes; refused requests use no allowance', async () => {
    const limiterA = new RateLimiter(first, prefix);
    const limiterB = new RateLimiter(second, prefix);
    const rules = rateRulesFor('acme', 'k1', { requestsPerMinute: 5 }, {});
    // A fixed time in the middle of a minute window, so the window cannot end during the test.
    const now = Math.floor(Date.now() / 60_000) * 60_000 + 30_000;
    const remaining: number[] = [];
    for (let index = 0; index < 5; index++) {
      const decision = await (index % 2 === 0 ? limiterA : limiterB).take('acme', rules, now + index);
      assert.equal(decision.allowed, true, `request ${index + 1} of 5 is allowed`);
      remaining.push(decision.standing.remaining);
    }
    assert.deepEqual(remaining, [4, 3, 2, 1, 0]);
    for (const limiter of [limiterA, limiterB, limiterA]) {
      const refused = await limiter.take('acme', rules, now + 10);
      assert.equal(refused.allowed, false);
      assert.equal(refused.standing.rule.limit, 'rate_key');
      assert.equal(refused.standing.remaining, 0);
      // 30 s into a one-minute window: it resets in 29.99 s.
      assert.ok(refused.standing.resetMs > 29_000 && refused.standing.resetMs <= 30_000, `resetMs ${refused.standing.resetMs}`);
    }
    // The next window starts from zero.
    assert.equal((await limiterB.take('acme', rules, now + 30_000)).allowed, true);
  });

  test('a tenant limit holds over all its keys, and a key limit refuses without using the tenant allowance', async () => {
    const limiter = new RateLimiter(first, prefix);
    const now = Math.floor(Date.now() / 60_000) * 60_000 + 30_000;
    const tenant = { requestsPerMinute: 4 };
    const keyOne = rateRulesFor('globex', 'one', { requestsPerMinute: 1 }, tenant);
    const keyTwo = rateRulesFor('globex', 'two', {}, tenant);
    assert.equal((await limiter.take('globex', keyOne, now)).allowed, true);
    const refusedKey = await limiter.take('globex', keyOne, now);
    assert.equal(refusedKey.allowed, false);
    assert.equal(refusedKey.standing.rule.limit, 'rate_key');
    // The tenant has used 1 of 4: key two gets the other 3, then the tenant limit refuses it.
    const allowed: boolean[] = [];
    for (let index = 0; index < 4; index++) allowed.push((await limiter.take('globex', keyTwo, now)).allowed);
    assert.deepEqual(allowed, [true, true, true, false]);
    const refusedTenant = await limiter.take('globex', keyTwo, now);
    assert.equal(refusedTenant.standing.rule.limit, 'rate_tenant');
    assert.equal(refusedTenant.standing.rule.owner, 'globex');
  });

  test('the standing reports the rule with the fewest requests left', async () => {
    const limiter = new RateLimiter(first, prefix);
    const now = Math.floor(Date.now() / 60_000) * 60_000 + 30_500;
    const rules = rateRulesFor('initech', 'k', { requestsPerSecond: 10, requestsPerMinute: 3 }, {});
    const decision = await limiter.take('initech', rules, now);
    assert.equal(decision.allowed, true);
    assert.equal(decision.standing.rule.windowMs, 60_000);
    assert.equal(decision.standing.remaining, 2);
  });

  test('once a rule refused, this process refuses it without Redis until the window ends', async () => {
    const connection = new Redis(redisUrl, { maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: true });
    await connection.connect();
    const limiter = new RateLimiter(connection, prefix);
    const now = Math.floor(Date.now() / 60_000) * 60_000 + 30_000;
    const rules = rateRulesFor('hooli', 'k', { requestsPerMinute: 1 }, {});
    assert.equal((await limiter.take('hooli', rules, now)).allowed, true);
    assert.equal((await limiter.take('hooli', rules, now + 1)).allowed, false);
    connection.disconnect();
    const refused = await limiter.take('hooli', rules, now + 2);
    assert.equal(refused.allowed, false, 'refused from memory, with Redis gone');
    assert.equal(refused.standing.rule.limit, 'rate_key');
    // The next window needs Redis again (and it is gone): the request is not refused from memory.
    await assert.rejects(limiter.take('hooli', rules, now + 30_000));
  });

  test('counters expire with their window (nothing is left behind by idle callers)', async () => {
    const limiter = new RateLimiter(first, prefix);
    await limiter.take('umbrella', rateRulesFor('umbrella', 'k', { requestsPerSecond: 3 }, {}));
    const keys = await first.keys(`${prefix}:rate{umbrella}:*`);
    assert.equal(keys.length, 1);
    const ttl = await first.pttl(keys[0]!);
    assert.ok(ttl > 0 && ttl <= 2200, `ttl ${ttl}`);
  });
});
