/**
 * The API-side queue classes (ReplyListener + InferenceProducer) against a real WorkerRole, in one process,
 * on a real Redis with a private prefix. Results are checked against onnxruntime run directly in the test.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { ErrorCode, GantryError } from '../../src/errors.js';
import { InferenceProducer, type ModelTarget } from '../../src/queue/inference-producer.js';
import { defaultExecutionSettings } from '../../src/queue/job-contracts.js';
import { ReplyListener } from '../../src/queue/reply-listener.js';
import { createRedis } from '../../src/queue/redis-connection.js';
import { decodeReply } from '../../src/queue/reply-codec.js';
import { ModelRegistry } from '../../src/registry/model-registry.js';
import { readStatistics } from '../../src/registry/model-statistics.js';
import { FileModelStore } from '../../src/registry/file-model-store.js';
import { WorkerRole } from '../../src/worker/worker-role.js';
import type { Tensor } from '../../src/protocol/tensor.js';
import { deleteKeys, fixturePath, scanKeys } from '../helpers/gantry-process.js';
import { readyProducerRedis } from '../helpers/ready-producer.js';

const redisUrl = 'redis://127.0.0.1:6379';

function floatsOf(tensor: Tensor): Float32Array {
  const copy = new Uint8Array(tensor.data.byteLength);
  copy.set(tensor.data);
  return new Float32Array(copy.buffer);
}

/** Inference waiters still registered with the listener (the accessor's name differs between versions). */
function pendingInferences(listener: ReplyListener): number {
  const counts = listener as unknown as { pendingInferenceCount?: number; pendingCount?: number };
  const count = counts.pendingInferenceCount ?? counts.pendingCount;
  assert.equal(typeof count, 'number', 'ReplyListener exposes no pending count');
  return count!;
}

function randomFloats(count: number): Float32Array {
  const values = new Float32Array(count);
  for (let index = 0; index < count; index++) values[index] = Math.random() * 2 - 1;
  return values;
}

function tensorOf(name: string, shape: number[], values: Float32Array): Tensor {
  return { name, datatype: 'FP32', shape, data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
}

describe('queue round trip: producer → BullMQ → WorkerRole → reply', { timeout: 120_000 }, () => {
  const prefix = `itest-${randomBytes(4).toString('hex')}`;
  const logger = createLogger({ LOG_LEVEL: (process.env.GANTRY_TEST_LOG_LEVEL as 'silent' | undefined) ?? 'silent' }, 'test');
  let dataDirectory: string;
  let worker: WorkerRole;
  let producerRedis: Redis;
  let subscriber: Redis;
  let tap: Redis;
  let admin: Redis;
  let replies: ReplyListener;
  let producer: InferenceProducer;
  let registry: ModelRegistry;
  let mlp: ModelTarget;
  let identity: ModelTarget;
  let reference: ort.InferenceSession;
  const replyMessagesByKind = { infer: 0, load: 0 };
  const payloadKeysWritten: string[] = [];

  async function register(fixture: string, model: string): Promise<ModelTarget> {
    const store = new FileModelStore(dataDirectory);
    await store.init();
    const blob = await store.put(createReadStream(fixturePath(fixture)), 100 * 1024 * 1024);
    const version = await registry.createVersion(model, blob);
    return { model, version: version.version, sha256: blob.sha256, settings: defaultExecutionSettings };
  }

  before(async () => {
    dataDirectory = await mkdtemp(path.join(os.tmpdir(), 'gantry-queue-test-'));
    const config = loadConfig({
      GANTRY_QUEUE_PREFIX: prefix,
      GANTRY_DATA_DIR: dataDirectory,
      GANTRY_WORKER_METRICS_PORT: '0',
      LOG_LEVEL: 'silent',
      REDIS_URL: redisUrl,
    });
    assert.ok(config.REDIS_URL !== undefined);
    worker = new WorkerRole({ ...config, REDIS_URL: config.REDIS_URL }, logger);
    await worker.start();

    admin = new Redis(redisUrl);
    producerRedis = await readyProducerRedis(redisUrl, 'test-producer');
    subscriber = createRedis(redisUrl, 'consumer', 'test-replies');
    replies = new ReplyListener(subscriber, producerRedis, prefix, logger);
    await replies.start();
    // A second, independent subscriber on the reply channel counts reply messages (one per job).
    tap = new Redis(redisUrl);
    tap.on('messageBuffer', (_channel: Buffer, message: Buffer) => {
      replyMessagesByKind[decodeReply(message).header.kind]++;
    });
    await tap.subscribe(replies.channel);
    // Record (without changing) the keys the producer writes with SET: that is how large payloads travel
    // (src/queue/large-values.ts).
    const originalSet = producerRedis.set.bind(producerRedis) as (...args: unknown[]) => Promise<unknown>;
    (producerRedis as unknown as { set: (...args: unknown[]) => Promise<unknown> }).set = (...args: unknown[]) => {
      payloadKeysWritten.push(String(args[0]));
      return originalSet(...args);
    };
    // Few jobs in flight, so that 100 concurrent requests must be packed together.
    producer = new InferenceProducer(producerRedis, replies, { prefix, maxRequestsPerJob: 16, maxJobsInFlight: 2 }, logger);
    registry = new ModelRegistry(admin, prefix);

    mlp = await register('tiny-mlp.onnx', 'tiny-mlp');
    identity = await register('identity-float.onnx', 'identity-float');
    reference = await ort.InferenceSession.create(fixturePath('tiny-mlp.onnx'), { graphOptimizationLevel: 'all' });
  });

  after(async () => {
    await producer?.close();
    await worker?.close();
    replies?.rejectAll(new GantryError(ErrorCode.Unavailable, 'test over'));
    subscriber?.disconnect();
    producerRedis?.disconnect();
    tap?.disconnect();
    await reference?.release();
    if (admin !== undefined) {
      admin.disconnect();
      await deleteKeys(redisUrl, prefix);
    }
    if (dataDirectory !== undefined) await rm(dataDirectory, { recursive: true, force: true });
  });

  test('requestLoad returns the signature and marks the version READY', async () => {
    const signature = await producer.requestLoad(mlp, 30_000);
    assert.deepEqual(signature, {
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 256] }],
      outputs: [{ name: 'output', datatype: 'FP32', shape: [-1, 16] }],
    });
    const record = await registry.getVersion(mlp.model, mlp.version);
    assert.equal(record?.state, 'READY');
    assert.deepEqual(record?.signature, signature);

    const identitySignature = await producer.requestLoad(identity, 30_000);
    assert.equal(identitySignature.inputs[0]?.name, 'input');
    assert.equal(replyMessagesByKind.load, 2);
  });

  test('a load of a missing blob fails with a GantryError and marks the version UNAVAILABLE', async () => {
    const missing: ModelTarget = {
      model: 'tiny-mlp',
      version: (await registry.createVersion('tiny-mlp', { sha256: 'e'.repeat(64), size: 1 })).version,
      sha256: 'e'.repeat(64),
      settings: defaultExecutionSettings,
    };
    await assert.rejects(producer.requestLoad(missing, 30_000), (error: unknown) => {
      assert.ok(error instanceof GantryError, String(error));
      assert.equal(error.code, ErrorCode.InvalidModel);
      return true;
    });
    const record = await registry.getVersion(missing.model, missing.version);
    assert.equal(record?.state, 'UNAVAILABLE');
    assert.ok(record?.reason);
  });

  test('100 concurrent requests each get their own answer (no mix-ups under coalescing)', async () => {
    const inferMessagesBefore = replyMessagesByKind.infer;
    const requests = Array.from({ length: 100 }, (_, index) => {
      const batch = 1 + (index % 3);
      return { batch, values: randomFloats(batch * 256) };
    });
    const outcomes = await Promise.all(
      requests.map(({ batch, values }) =>
        producer.submit(mlp, {
          inputs: [tensorOf('input', [batch, 256], values)],
          outputs: ['output'],
          deadline: Date.now() + 30_000,
          priority: 1,
          timeoutMs: 30_000,
        }),
      ),
    );
    for (let index = 0; index < requests.length; index++) {
      const { batch, values } = requests[index]!;
      const expected = (await reference.run({ input: new ort.Tensor('float32', values, [batch, 256]) })).output!;
      const outcome = outcomes[index]!;
      assert.equal(outcome.outputs.length, 1);
      const output = outcome.outputs[0]!;
      assert.equal(output.name, 'output');
      assert.equal(output.datatype, 'FP32');
      assert.deepEqual(output.shape, [batch, 16]);
      const actual = floatsOf(output);
      const wanted = expected.data as Float32Array;
      assert.equal(actual.length, wanted.length);
      for (let element = 0; element < wanted.length; element++) {
        if (Math.abs(actual[element]! - wanted[element]!) > 1e-5) {
          assert.fail(`request ${index} element ${element}: got ${actual[element]}, expected ${wanted[element]}`);
        }
      }
    }
    // Let the last reply messages reach the tap, then check that requests really were packed into jobs.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const jobs = replyMessagesByKind.infer - inferMessagesBefore;
    assert.ok(jobs >= 1 && jobs < 100, `expected coalescing into fewer than 100 jobs, got ${jobs}`);
    assert.equal(pendingInferences(replies), 0);
  });

  test('an input over 64 KiB goes through a payload key, which is deleted afterwards', async () => {
    const values = randomFloats(20_000); // 80 000 bytes
    payloadKeysWritten.length = 0;
    const outcome = await producer.submit(identity, {
      inputs: [tensorOf('input', [1, 20_000], values)],
      outputs: ['output'],
      deadline: Date.now() + 30_000,
      priority: 1,
      timeoutMs: 30_000,
    });
    assert.deepEqual(outcome.outputs[0]?.shape, [1, 20_000]);
    assert.deepEqual(floatsOf(outcome.outputs[0]!), values);
    const payloadWrites = payloadKeysWritten.filter((key) => key.startsWith(`${prefix}:payload`));
    assert.equal(payloadWrites.length, 1, `payload keys written: ${JSON.stringify(payloadKeysWritten)}`);
    assert.ok(payloadWrites[0]!.startsWith(`${prefix}:payload{identity-float}:`));
    // The worker deletes the key right after publishing the reply; allow that DEL to land.
    const deadline = Date.now() + 2000;
    while ((await scanKeys(admin, `${prefix}:payload*`)).length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(await scanKeys(admin, `${prefix}:payload*`), []);
  });

  test('a small input rides inline (no payload key)', async () => {
    payloadKeysWritten.length = 0;
    const values = randomFloats(100);
    const outcome = await producer.submit(identity, {
      inputs: [tensorOf('input', [4, 25], values)],
      outputs: ['output'],
      deadline: Date.now() + 30_000,
      priority: 1,
      timeoutMs: 30_000,
    });
    assert.deepEqual(floatsOf(outcome.outputs[0]!), values);
    assert.deepEqual(payloadKeysWritten, []);
  });

  test('a request whose deadline is already past rejects with DEADLINE_EXCEEDED, and counts as a failed inference', async () => {
    const failedBefore = (await readStatistics(admin, prefix, mlp.model, mlp.version)).inference_stats.fail.count;
    await assert.rejects(
      producer.submit(mlp, {
        inputs: [tensorOf('input', [1, 256], randomFloats(256))],
        outputs: ['output'],
        deadline: Date.now() - 1000,
        priority: 1,
        timeoutMs: 30_000,
      }),
      (error: unknown) => {
        assert.ok(error instanceof GantryError, String(error));
        assert.equal(error.code, ErrorCode.DeadlineExceeded);
        assert.equal(error.httpStatus, 504);
        return true;
      },
    );
    // The producer stopped waiting for it: no waiter leaks.
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(pendingInferences(replies), 0);
    // The worker dropped it without running it, and its statistics say so (they are flushed every ~20 ms).
    const failedAfter = (await readStatistics(admin, prefix, mlp.model, mlp.version)).inference_stats.fail.count;
    assert.equal(failedAfter - failedBefore, 1);
    // And the lane is still usable afterwards.
    const outcome = await producer.submit(mlp, {
      inputs: [tensorOf('input', [1, 256], randomFloats(256))],
      outputs: ['output'],
      deadline: Date.now() + 30_000,
      priority: 1,
      timeoutMs: 30_000,
    });
    assert.deepEqual(outcome.outputs[0]?.shape, [1, 16]);
  });

  test('an error for one request is reported to that request only', async () => {
    const good = producer.submit(mlp, {
      inputs: [tensorOf('input', [1, 256], randomFloats(256))],
      outputs: ['output'],
      deadline: Date.now() + 30_000,
      priority: 1,
      timeoutMs: 30_000,
    });
    // Wrong width: the queue does not validate, onnxruntime refuses it in the worker.
    const bad = producer.submit(mlp, {
      inputs: [tensorOf('input', [1, 255], randomFloats(255))],
      outputs: ['output'],
      deadline: Date.now() + 30_000,
      priority: 1,
      timeoutMs: 30_000,
    });
    const [goodResult, badResult] = await Promise.allSettled([good, bad]);
    assert.equal(goodResult.status, 'fulfilled');
    assert.equal(badResult.status, 'rejected');
    assert.ok((badResult as PromiseRejectedResult).reason instanceof GantryError);
  });

  test('completed jobs leave no job keys behind (removeOnComplete)', async () => {
    // Give the workers a moment to move the last jobs to "completed" (which removes them).
    await new Promise((resolve) => setTimeout(resolve, 300));
    const metaSuffixes = new Set([
      'meta',
      'id',
      'events',
      'wait',
      'active',
      'completed',
      'failed',
      'delayed',
      'prioritized',
      'paused',
      'stalled',
      'stalled-check',
      'marker',
      'pc',
      'limiter',
      'de',
      'waiting-children',
    ]);
    for (const queue of ['infer{tiny-mlp}', 'infer{identity-float}', 'control{gantry}']) {
      const keys = await scanKeys(admin, `${prefix}:${queue}:*`);
      const leftovers = keys.filter((key) => !metaSuffixes.has(key.slice(`${prefix}:${queue}:`.length)));
      assert.deepEqual(leftovers, [], `queue ${queue} keys: ${JSON.stringify(keys)}`);
      assert.equal(await admin.zcard(`${prefix}:${queue}:completed`), 0);
      assert.equal(await admin.llen(`${prefix}:${queue}:wait`), 0);
      assert.equal(await admin.llen(`${prefix}:${queue}:active`), 0);
    }
    assert.deepEqual(await scanKeys(admin, `${prefix}:payload*`), []);
  });
});
