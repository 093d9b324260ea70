/** Quantiles from cumulative histogram buckets, as Prometheus's histogram_quantile() estimates them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { histogramQuantile } from '../../../src/api/console/histogram-quantile.js';

const bounds = [1, 2, 4];

test('nothing counted: no quantile', () => {
  assert.equal(histogramQuantile(0.5, bounds, [0, 0, 0, 0]), undefined);
  assert.equal(histogramQuantile(0.5, bounds, []), undefined);
});

test('the rank is interpolated inside its bucket (the first from 0)', () => {
  // 10 observations, all in (1, 2]: the median is halfway through that bucket.
  assert.equal(histogramQuantile(0.5, bounds, [0, 10, 10, 10]), 1.5);
  // 4 in [0, 1], 4 in (1, 2], 2 in (2, 4]: p50 is rank 5, the first of the second bucket's four.
  assert.equal(histogramQuantile(0.5, bounds, [4, 8, 10, 10]), 1.25);
  assert.equal(histogramQuantile(0.2, bounds, [4, 8, 10, 10]), 0.5);
  assert.equal(histogramQuantile(0.9, bounds, [4, 8, 10, 10]), 3);
});

test('a rank in the +Inf bucket answers the largest finite bound', () => {
  assert.equal(histogramQuantile(0.99, bounds, [0, 0, 0, 5]), 4);
  assert.equal(histogramQuantile(0.99, bounds, [5, 5, 5, 6]), 4);
});
