import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chosenIntraOpThreads, lightRunThresholdMs, median } from '../../src/worker/thread-choice.js';

test('the median of the timed runs ignores one slow outlier', () => {
  assert.equal(median([0.01, 0.02, 9, 0.015, 0.012]), 0.015);
  assert.equal(median([4, 1, 3, 2]), 2.5);
});

test('a run under the threshold gets one intra-op thread; one at or over it keeps the share', () => {
  assert.equal(chosenIntraOpThreads(2, lightRunThresholdMs / 100), 1);
  assert.equal(chosenIntraOpThreads(4, lightRunThresholdMs), 4);
  assert.equal(chosenIntraOpThreads(2, lightRunThresholdMs * 20), 2);
  assert.equal(chosenIntraOpThreads(1, lightRunThresholdMs * 20), 1);
});
