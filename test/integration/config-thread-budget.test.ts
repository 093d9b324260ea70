/**
 * PUT config's thread budget on real Redis: ModelConfigStore.update refuses a configuration whose own onnxruntime
 * threads exceed GANTRY_MAX_THREADS_PER_WORKER, judged on the merged configuration (a patch of one field can push
 * the stored ones over), and stores nothing when it refuses.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { ErrorCode, GantryError } from '../../src/errors.js';
import { ModelConfigStore } from '../../src/registry/model-config.js';
import { deleteKeys } from '../helpers/gantry-process.js';

const redisUrl = 'redis://127.0.0.1:6379';
const prefix = `it-thread-budget-${randomBytes(4).toString('hex')}`;
let redis: Redis;
let store: ModelConfigStore;
const limits = { maxThreadsPerWorker: 64 };

before(() => {
  redis = new Redis(redisUrl);
  store = new ModelConfigStore(redis, prefix);
});
after(async () => {
  await deleteKeys(redisUrl, prefix);
  redis.disconnect();
});

async function budgetRejection(patch: unknown): Promise<string> {
  try {
    await store.update('m', patch, limits);
  } catch (error) {
    assert.ok(error instanceof GantryError);
    assert.equal(error.code, ErrorCode.InvalidArgument);
    return error.message;
  }
  assert.fail('expected the thread budget to refuse the configuration');
}

test('a configuration over GANTRY_MAX_THREADS_PER_WORKER is refused, judged on the merged fields, and not stored', async () => {
  assert.match(
    await budgetRejection({ instances: 16, intraOpThreads: 64, interOpThreads: 64 }),
    /needs 2048 onnxruntime threads .*GANTRY_MAX_THREADS_PER_WORKER \(64\)/,
  );
  const within = await store.update('m', { instances: 8, intraOpThreads: 8 }, limits);
  assert.equal(within.instances, 8);
  // 8 x (8 + 1) = 72: the one-field patch is what goes over.
  assert.match(await budgetRejection({ interOpThreads: 1 }), /needs 72 onnxruntime threads/);
  assert.equal((await store.get('m')).interOpThreads, 0, 'the refused patch was not stored');
  // Without a budget (callers that do not pass one), the schema's own bounds are the only limit.
  assert.equal((await store.update('m', { interOpThreads: 1 })).interOpThreads, 1);
});
