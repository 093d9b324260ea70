import { test } from 'node:test';
import assert from 'node:assert/strict';
import { intraOpShare, onnxruntimeThreadsOf } from '../../src/registry/thread-budget.js';

test('onnxruntime threads of a configuration: instances x (intra + inter), intra 0 = the share of the cores, inter 0 = none', () => {
  assert.equal(onnxruntimeThreadsOf({ instances: 16, intraOpThreads: 64, interOpThreads: 64 }, 2), 2048);
  assert.equal(onnxruntimeThreadsOf({ instances: 2, intraOpThreads: 4, interOpThreads: 0 }, 2), 8);
  // Automatic: floor(8 / 3) = 2 threads for each of 3 instances.
  assert.equal(onnxruntimeThreadsOf({ instances: 3, intraOpThreads: 0, interOpThreads: 0 }, 8), 6);
  assert.equal(onnxruntimeThreadsOf({ instances: 1, intraOpThreads: 0, interOpThreads: 2 }, 4), 6);
  // More instances than cores: one thread each, never none.
  assert.equal(onnxruntimeThreadsOf({ instances: 4, intraOpThreads: 0, interOpThreads: 0 }, 2), 4);
});

test('the share of cores per instance is max(1, floor(cores / instances))', () => {
  assert.equal(intraOpShare(1, 2), 2);
  assert.equal(intraOpShare(2, 2), 1);
  assert.equal(intraOpShare(3, 8), 2);
  assert.equal(intraOpShare(5, 2), 1);
  assert.equal(intraOpShare(1, 16), 16);
});
