import { test } from 'node:test';
import assert from 'node:assert/strict';
import { onnxruntimeThreadsOf } from '../../src/registry/thread-budget.js';

test('onnxruntime threads of a configuration: instances x (intra + inter), intra 0 = the cores, inter 0 = none', () => {
  assert.equal(onnxruntimeThreadsOf({ instances: 16, intraOpThreads: 64, interOpThreads: 64 }, 2), 2048);
  assert.equal(onnxruntimeThreadsOf({ instances: 2, intraOpThreads: 4, interOpThreads: 0 }, 2), 8);
  assert.equal(onnxruntimeThreadsOf({ instances: 3, intraOpThreads: 0, interOpThreads: 0 }, 8), 24);
  assert.equal(onnxruntimeThreadsOf({ instances: 1, intraOpThreads: 0, interOpThreads: 2 }, 4), 6);
});
