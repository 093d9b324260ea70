/**
 * Where the producer puts jobs in BullMQ (src/queue/job-ordering.ts): default-priority jobs at the back of the wait
 * list (BullMQ's cheap path), urgent ones at its front, yielding ones in the prioritized set. Checked in Redis itself,
 * with no worker consuming, so the order a worker would take them in is what the keys hold.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { ErrorCode, GantryError } from '../../src/errors.js';
import { createLogger } from '../../src/logger.js';
import { InferenceProducer, type ModelTarget } from '../../src/queue/inference-producer.js';
import { jobOrdering } from '../../src/queue/job-ordering.js';
import { defaultExecutionSettings } from '../../src/queue/job-contracts.js';
import { ReplyListener } from '../../src/queue/reply-listener.js';
import { createRedis } from '../../src/queue/redis-connection.js';
import { inferenceQueueKey } from '../../src/redis-keys.js';
import { deleteKeys } from '../helpers/gantry-process.js';
import { readyProducerRedis } from '../helpers/ready-producer.js';

const redisUrl = 'redis://127.0.0.1:6379';

describe('job ordering in BullMQ', () => {
  test('default priority: plain add; above it: front of the wait list; below it: prioritized', () => {
    assert.deepEqual(jobOrdering(10, 10), {});
    assert.deepEqual(jobOrdering(3, 10), { lifo: true });
    assert.deepEqual(jobOrdering(11, 10), { priority: 11 });
    // The model's own default decides, not the standard one.
    assert.deepEqual(jobOrdering(10, 20), { lifo: true });
    assert.deepEqual(jobOrdering(20, 20), {});
  });

  describe('in Redis', { timeout: 60_000 }, () => {
    const prefix = `itest-order-${randomBytes(4).toString('hex')}`;
    const logger = createLogger({ LOG_LEVEL: 'silent' }, 'test');
    let admin: Redis;
    let producerRedis: Redis;
    let subscriber: Redis;
    let replies: ReplyListener;
    let producer: InferenceProducer;
    const outcomes: Array<Promise<unknown>> = [];
    const submitFailures: string[] = [];

    before(async () => {
      admin = new Redis(redisUrl);
      producerRedis = await readyProducerRedis(redisUrl, 'test-producer');
      subscriber = createRedis(redisUrl, 'consumer', 'test-replies');
      replies = new ReplyListener(subscriber, producerRedis, prefix, logger);
      await replies.start();
      producer = new InferenceProducer(producerRedis, replies, { prefix, maxRequestsPerJob: 16, maxJobsInFlight: 2 }, logger);
    });

    after(async () => {
      await producer.close();
      replies.rejectAll(new GantryError(ErrorCode.Unavailable, 'test over'));
      await Promise.allSettled(outcomes);
      producerRedis.disconnect();
      subscriber.disconnect();
      admin.disconnect();
      await deleteKeys(redisUrl, prefix);
    });

    function submit(version: string, priority: number, defaultPriority: number): void {
      // Versions differ so that each request leaves in a job of its own (requests of one lane would wait for the first).
      const target: ModelTarget = { model: 'ordered', version, sha256: 'a'.repeat(64), settings: defaultExecutionSettings };
      const outcome = producer.submit(target, {
        inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 1], data: new Uint8Array(4) }],
        outputs: [],
        deadline: Date.now() + 3_000,
        timeoutMs: 3_000,
        priority,
        defaultPriority,
      });
      // The outcome itself waits for a worker that never comes, so only a refusal on the way in is worth keeping.
      outcome.catch((error: unknown) => {
        if (!(error instanceof GantryError && error.message === 'test over')) submitFailures.push(String(error));
      });
      outcomes.push(outcome);
    }

    async function jobLabel(id: string): Promise<string> {
      const data = JSON.parse((await admin.hget(`${prefix}:infer{ordered}:${id}`, 'data'))!) as { version: string; priority: number };
      return `v${data.version}@${data.priority}`;
    }

    test('a worker would take urgent jobs first, then default ones in arrival order, then yielding ones by priority', async () => {
      const wait = inferenceQueueKey(prefix, 'ordered', 'wait');
      const prioritized = inferenceQueueKey(prefix, 'ordered', 'prioritized');
      const plan: Array<[string, number]> = [
        ['1', 10],
        ['2', 10],
        ['3', 5],
        ['4', 30],
        ['5', 20],
        ['6', 10],
      ];
      for (const [version, priority] of plan) {
        submit(version, priority, 10);
        // One at a time, so arrival order is the order the jobs reached Redis.
        const expected = plan.findIndex(([planned]) => planned === version) + 1;
        const deadline = Date.now() + 5_000;
        while ((await admin.llen(wait)) + (await admin.zcard(prioritized)) < expected) {
          assert.ok(Date.now() < deadline, `job of version ${version} never reached Redis (failures: ${submitFailures.join('; ') || 'none'})`);
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      }
      // BullMQ pushes plain adds on the left and takes from the right; a lifo add goes on the right.
      const waitOrder = await Promise.all((await admin.lrange(wait, 0, -1)).reverse().map(jobLabel));
      assert.deepEqual(waitOrder, ['v3@5', 'v1@10', 'v2@10', 'v6@10']);
      const prioritizedOrder = await Promise.all((await admin.zrange(prioritized, 0, -1)).map(jobLabel));
      assert.deepEqual(prioritizedOrder, ['v5@20', 'v4@30']);
    });
  });
});
