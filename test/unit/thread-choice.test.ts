import { test } from 'node:test';
import assert from 'node:assert/strict';
import type * as ort from 'onnxruntime-node';
import { chosenIntraOpThreads, lightRunThresholdMs, median, medianRunMs } from '../../src/worker/thread-choice.js';

/** A stand-in session whose runs take at least `runMs` (busy, like a native run) and are counted. */
function countingSession(runMs: number): { session: ort.InferenceSession; runs: () => number } {
  let runs = 0;
  const session = {
    run: async () => {
      runs++;
      const until = performance.now() + runMs;
      while (performance.now() < until);
      return {};
    },
  } as unknown as ort.InferenceSession;
  return { session, runs: () => runs };
}

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

test('the measurement is a first run and five timed ones; a first run of 50x the threshold or more ends it there', async () => {
  const light = countingSession(0);
  assert.ok((await medianRunMs(light.session, {})) < lightRunThresholdMs * 50);
  assert.equal(light.runs(), 6);
  const heavy = countingSession(lightRunThresholdMs * 60);
  assert.ok((await medianRunMs(heavy.session, {})) >= lightRunThresholdMs * 60);
  assert.equal(heavy.runs(), 1, 'no more runs of a clearly heavy model lengthen its load');
});
