import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode } from '../../src/errors.js';
import { describedVersion, randomDraw, servingVersion, stickyDraw, type TrafficRouting } from '../../src/inference/serving-version.js';
import type { TrafficPolicy } from '../../src/registry/traffic-policy.js';
import { testVersion, thrownGantryError } from '../helpers/model-versions.js';

// 1, 2 and 3 READY, 4 UNAVAILABLE.
const versions = [testVersion('1', 'READY'), testVersion('2', 'READY'), testVersion('3', 'READY'), testVersion('4', 'UNAVAILABLE')];
const none = new Map<string, string>();
const canary: TrafficPolicy = {
  splits: [
    { version: '2', weight: 95 },
    { version: '3', weight: 5 },
  ],
};

/** How many of `count` requests each version serves under `routing(index)`. */
function tally(count: number, routing: (index: number) => TrafficRouting, aliases = none): Map<string, number> {
  const counts = new Map<string, number>();
  for (let index = 0; index < count; index++) {
    const served = servingVersion('m', versions, aliases, undefined, routing(index)).version;
    counts.set(served, (counts.get(served) ?? 0) + 1);
  }
  return counts;
}

describe('traffic splits in the serving rule', () => {
  test('random draws give each split version its weight: 95/5 over 100,000 requests', () => {
    const counts = tally(100_000, () => ({ policy: canary, draw: randomDraw }));
    assert.deepEqual([...counts.keys()].sort(), ['2', '3']);
    // 5% of 100,000 has a standard deviation of about 69: ±500 is more than 7 of them.
    assert.ok(Math.abs(counts.get('3')! - 5000) < 500, `version 3 served ${counts.get('3')} of 100,000`);
  });

  test('sticky draws spread callers by weight and keep each caller on one version', () => {
    const policy: TrafficPolicy = {
      splits: [
        { version: '1', weight: 1 },
        { version: '2', weight: 3 },
      ],
    };
    const users = Array.from({ length: 4000 }, (_, index) => `user-${index}`);
    const counts = tally(users.length, (index) => ({ policy, draw: stickyDraw('m', users[index]!) }));
    assert.ok(Math.abs(counts.get('1')! - 1000) < 150, `version 1 got ${counts.get('1')} of 4000 callers`);
    for (const user of users.slice(0, 50)) {
      const first = servingVersion('m', versions, none, undefined, { policy, draw: stickyDraw('m', user) }).version;
      for (let repeat = 0; repeat < 5; repeat++) {
        assert.equal(servingVersion('m', versions, none, undefined, { policy, draw: stickyDraw('m', user) }).version, first);
      }
    }
  });

  test('a version that stops being READY moves only its own sticky callers', () => {
    const three: TrafficPolicy = {
      splits: [
        { version: '1', weight: 1 },
        { version: '2', weight: 1 },
        { version: '3', weight: 1 },
      ],
    };
    const withoutThree = [testVersion('1', 'READY'), testVersion('2', 'READY'), testVersion('3', 'UNAVAILABLE')];
    for (let index = 0; index < 500; index++) {
      const draw = stickyDraw('m', `user-${index}`);
      const before = servingVersion('m', versions, none, undefined, { policy: three, draw }).version;
      const after = servingVersion('m', withoutThree, none, undefined, { policy: three, draw }).version;
      assert.notEqual(after, '3');
      if (before !== '3') assert.equal(after, before, `user-${index} moved from ${before} to ${after}`);
    }
  });

  test('the same caller draws independently for different models', () => {
    const policy: TrafficPolicy = {
      splits: [
        { version: '1', weight: 1 },
        { version: '2', weight: 1 },
      ],
    };
    let differs = 0;
    for (let index = 0; index < 200; index++) {
      const onFirst = servingVersion('m', versions, none, undefined, { policy, draw: stickyDraw('first', `user-${index}`) }).version;
      const onSecond = servingVersion('m', versions, none, undefined, { policy, draw: stickyDraw('second', `user-${index}`) }).version;
      if (onFirst !== onSecond) differs++;
    }
    assert.ok(differs > 50 && differs < 150, `${differs} of 200 callers landed differently`);
  });

  test('split versions that are not READY or gone are skipped; none READY is a 503 naming the split', () => {
    const policy: TrafficPolicy = {
      splits: [
        { version: '4', weight: 90 },
        { version: '9', weight: 5 },
        { version: '1', weight: 5 },
      ],
    };
    assert.deepEqual([...tally(200, () => ({ policy, draw: randomDraw })).keys()], ['1']);
    const nothingReady: TrafficPolicy = {
      splits: [
        { version: '4', weight: 1 },
        { version: '9', weight: 1 },
      ],
    };
    const error = thrownGantryError(() => servingVersion('m', versions, none, undefined, { policy: nothingReady, draw: randomDraw }));
    assert.equal(error.code, ErrorCode.Unavailable);
    assert.match(error.message, /versions model 'm' splits its traffic over \(4, 9\) is READY/);
    assert.equal(error.retryAfterSeconds, 1);
  });

  test('a split overrides production; a named version or alias is never split', () => {
    const production = new Map([
      ['production', '1'],
      ['stable', '1'],
    ]);
    assert.equal(tally(500, () => ({ policy: canary, draw: randomDraw }), production).get('1'), undefined);
    for (let index = 0; index < 200; index++) {
      assert.equal(servingVersion('m', versions, production, '1', { policy: canary, draw: randomDraw }).version, '1');
      assert.equal(servingVersion('m', versions, production, 'stable', { policy: canary, draw: randomDraw }).version, '1');
    }
  });

  test('no splits (an empty list, or a shadow only): the rule without a policy', () => {
    const routing = (policy: TrafficPolicy): TrafficRouting => ({ policy, draw: randomDraw });
    assert.equal(servingVersion('m', versions, none, undefined, routing({ splits: [] })).version, '3');
    assert.equal(servingVersion('m', versions, none, undefined, routing({ shadow: { version: '1', percent: 50 } })).version, '3');
  });

  test('without a draw (describing the model), the heaviest READY split version', () => {
    assert.equal(servingVersion('m', versions, none, undefined, { policy: canary }).version, '2');
    assert.equal(describedVersion('m', versions, none, undefined, canary).version, '2');
    const heavyGone: TrafficPolicy = {
      splits: [
        { version: '4', weight: 90 },
        { version: '1', weight: 10 },
      ],
    };
    assert.equal(describedVersion('m', versions, none, undefined, heavyGone).version, '1');
    assert.equal(describedVersion('m', versions, none, '4', canary).version, '4');
  });

  test('sticky draws are stable and inside (0, 1)', () => {
    const draw = stickyDraw('m', 'user-1');
    assert.equal(draw('2'), stickyDraw('m', 'user-1')('2'));
    assert.notEqual(draw('2'), draw('3'));
    for (let index = 0; index < 1000; index++) {
      const value = stickyDraw('m', `u${index}`)('1');
      assert.ok(value > 0 && value < 1);
    }
  });
});
