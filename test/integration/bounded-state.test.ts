/**
 * The API's per-model and per-lane state stays bounded (issue 10, "Caches bounded"), and the queue limits hold,
 * on real Redis with a real in-process WorkerRole: 2,000 priorities leave no lane, 5,000 unknown names leave no
 * catalog entry, a deleted model leaves no Queue or count, queued bytes per model are capped (Redis holds no
 * more), a job's large outputs are published in several reply messages, and the API refuses a reply bigger than
 * its request allows.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { ModelCatalog } from '../../src/inference/model-catalog.js';
import { loadConfig } from '../../src/config.js';
import { ErrorCode, GantryError } from '../../src/errors.js';
import { createLogger } from '../../src/logger.js';
import type { Tensor } from '../../src/protocol/tensor.js';
import { InferenceProducer, queuedRequestOverheadBytes, type ModelTarget } from '../../src/queue/inference-producer.js';
import { defaultExecutionSettings, jobSchemaVersion, type InferenceJob } from '../../src/queue/job-contracts.js';
import { writeLargeValue } from '../../src/queue/large-values.js';
import { inferenceQueueName, payloadKey, replyBodyKey } from '../../src/redis-keys.js';
import { createRedis } from '../../src/queue/redis-connection.js';
import { decodeReply, encodeReply, type InferenceReplyHeader } from '../../src/queue/reply-codec.js';
import { ReplyListener } from '../../src/queue/reply-listener.js';
import { WorkDoorbell } from '../../src/queue/work-doorbell.js';
import { ModelConfigStore } from '../../src/registry/model-config.js';
import { ModelRegistry } from '../../src/registry/model-registry.js';
import { FileModelStore } from '../../src/registry/file-model-store.js';
import { WorkerRole } from '../../src/worker/worker-role.js';
import { deleteKeys, fixturePath, scanKeys } from '../helpers/gantry-process.js';
import { readyProducerRedis } from '../helpers/ready-producer.js';

const redisUrl = 'redis://127.0.0.1:6379';
const mebibyte = 1024 ** 2;

function floatTensor(name: string, shape: number[]): Tensor {
  const count = shape.reduce((product, dimension) => product * dimension, 1);
  const values = new Float32Array(count);
  for (let index = 0; index < count; index++) values[index] = (index % 97) / 97;
  return { name, datatype: 'FP32', shape, data: new Uint8Array(values.buffer) };
}

/** The producer's lane and count maps once the jobs just answered have been wound up (a few ticks later). */
async function settledSizes(producer: InferenceProducer): Promise<{ lanes: number; outstanding: number }> {
  const started = Date.now();
  while (producer.trackedSizes.lanes + producer.trackedSizes.outstanding > 0 && Date.now() - started < 2000)
    await new Promise((resolve) => setTimeout(resolve, 10));
  return { lanes: producer.trackedSizes.lanes, outstanding: producer.trackedSizes.outstanding };
}

describe('bounded API state and queue limits', { timeout: 180_000 }, () => {
  const prefix = `itest-bounded-${randomBytes(4).toString('hex')}`;
  const logger = createLogger({ LOG_LEVEL: 'silent' }, 'test');
  let dataDirectory: string;
  let worker: WorkerRole;
  let admin: Redis;
  let producerRedis: Redis;
  let subscriber: Redis;
  let replies: ReplyListener;
  let producer: InferenceProducer;
  let registry: ModelRegistry;
  let catalog: ModelCatalog;
  const rejections: string[] = [];

  async function register(fixture: string, model: string): Promise<ModelTarget> {
    const store = new FileModelStore(dataDirectory);
    await store.init();
    const blob = await store.put(createReadStream(fixturePath(fixture)), 100 * mebibyte);
    const version = await registry.createVersion(model, blob);
    const target = { model, version: version.version, sha256: blob.sha256, settings: defaultExecutionSettings };
    await producer.requestLoad(target, 30_000);
    return target;
  }

  before(async () => {
    dataDirectory = await mkdtemp(path.join(os.tmpdir(), 'gantry-bounded-'));
    const config = loadConfig({
      GANTRY_QUEUE_PREFIX: prefix,
      GANTRY_DATA_DIR: dataDirectory,
      GANTRY_WORKER_METRICS_PORT: '0',
      LOG_LEVEL: 'silent',
      REDIS_URL: redisUrl,
    });
    worker = new WorkerRole({ ...config, REDIS_URL: redisUrl }, logger);
    await worker.start();
    admin = new Redis(redisUrl);
    producerRedis = await readyProducerRedis(redisUrl, 'test-producer');
    subscriber = createRedis(redisUrl, 'consumer', 'test-replies');
    replies = new ReplyListener(subscriber, producerRedis, prefix, logger);
    await replies.start();
    registry = new ModelRegistry(admin, prefix);
    catalog = new ModelCatalog(registry, new ModelConfigStore(admin, prefix), prefix);
    await catalog.follow(subscriber);
    producer = new InferenceProducer(
      producerRedis,
      replies,
      { prefix, maxRequestsPerJob: 64, maxJobsInFlight: 2, maxQueuedBytesPerModel: 8 * mebibyte, onLimitRejection: (limit) => rejections.push(limit) },
      logger,
    );
    catalog.onModelDeleted((name) => producer.dropModel(name));
  });

  after(async () => {
    await producer?.close();
    await worker?.close();
    replies?.rejectAll(new GantryError(ErrorCode.Unavailable, 'test over'));
    subscriber?.disconnect();
    producerRedis?.disconnect();
    if (admin !== undefined) {
      admin.disconnect();
      await deleteKeys(redisUrl, prefix);
    }
    if (dataDirectory !== undefined) await rm(dataDirectory, { recursive: true, force: true });
  });

  test('2,000 priorities: every request answered, no lane and no count left behind', async () => {
    const mlp = await register('tiny-mlp.onnx', 'tiny-mlp');
    const input = floatTensor('input', [1, 256]);
    for (let start = 0; start < 2000; start += 250) {
      const outcomes = await Promise.all(
        Array.from({ length: 250 }, (_, index) =>
          producer.submit(mlp, { inputs: [input], outputs: ['output'], deadline: Date.now() + 60_000, timeoutMs: 60_000, priority: start + index + 1 }),
        ),
      );
      assert.equal(outcomes.length, 250);
      // While they were out, lanes existed; now every one is gone again.
      assert.equal((await settledSizes(producer)).lanes, 0, `lanes after priorities ${start + 1}..${start + 250}`);
    }
    assert.deepEqual(await settledSizes(producer), { lanes: 0, outstanding: 0 });
  });

  test('5,000 unknown model names: 404s, and no catalog entry for any of them', async () => {
    for (let index = 0; index < 5000; index++) {
      await assert.rejects(catalog.serving(`no-such-model-${index}`), (error: unknown) => error instanceof GantryError && error.code === ErrorCode.NotFound);
    }
    assert.equal(catalog.cachedModelCount, 0);
    await catalog.serving('tiny-mlp');
    assert.equal(catalog.cachedModelCount, 1, 'an existing model is cached');
  });

  test('a deleted model leaves no Queue, count or catalog entry', async () => {
    const doomed = await register('identity-float.onnx', 'doomed');
    await producer.submit(doomed, {
      inputs: [floatTensor('input', [1, 4])],
      outputs: ['output'],
      deadline: Date.now() + 30_000,
      timeoutMs: 30_000,
      priority: 1,
    });
    await catalog.config('doomed');
    await catalog.serving('doomed');
    const queuesBefore = producer.trackedSizes.queues;
    assert.ok(queuesBefore >= 1);
    const cachedBefore = catalog.cachedModelCount;
    await registry.deleteModel('doomed');
    // The registry announces the deletion; this process follows it like any other API process would.
    const started = Date.now();
    while (producer.trackedSizes.queues === queuesBefore && Date.now() - started < 5000) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(producer.trackedSizes.queues, queuesBefore - 1, 'its Queue is closed and forgotten');
    assert.equal(catalog.cachedModelCount, cachedBefore - 1, 'its catalog entries are gone');
    assert.equal(producer.trackedSizes.outstanding, 0);
  });

  test('queued bytes per model capped: past GANTRY_MAX_QUEUED_BYTES_PER_MODEL → 429, and Redis holds no more than the cap', async () => {
    // A model no worker serves, so every accepted job stays queued in Redis with its payload.
    const stuck: ModelTarget = { model: 'unserved', version: '1', sha256: 'a'.repeat(64), settings: defaultExecutionSettings };
    const controller = new AbortController();
    const input = floatTensor('input', [1, mebibyte / 4]);
    const attempts = Array.from({ length: 20 }, (_, index) =>
      producer
        .submit(stuck, {
          inputs: [input],
          outputs: ['output'],
          deadline: Date.now() + 60_000,
          timeoutMs: 60_000,
          priority: index + 1,
          signal: controller.signal,
        })
        .then(
          () => 'answered',
          (error: GantryError) => error.code,
        ),
    );
    // Distinct priorities: each accepted request is its own job, with its own payload key, in Redis.
    const accepted = Math.floor((8 * mebibyte) / (mebibyte + queuedRequestOverheadBytes));
    let payloadKeys: string[] = [];
    const started = Date.now();
    while (payloadKeys.length < accepted && Date.now() - started < 10_000) {
      payloadKeys = await scanKeys(admin, `${prefix}:payload{unserved}:*`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    let payloadBytes = 0;
    for (const key of payloadKeys) payloadBytes += await admin.strlen(key);
    assert.equal(payloadKeys.length, accepted, `${accepted} payloads queued`);
    assert.ok(payloadBytes <= 8 * mebibyte, `payload bytes in Redis ${payloadBytes}`);
    controller.abort();
    const outcomes = await Promise.all(attempts);
    assert.equal(outcomes.filter((outcome) => outcome === ErrorCode.ResourceExhausted).length, 20 - accepted, JSON.stringify(outcomes));
    assert.equal(outcomes.filter((outcome) => outcome === ErrorCode.Cancelled).length, accepted);
    assert.equal(rejections.filter((limit) => limit === 'queued_bytes').length, 20 - accepted);
    assert.deepEqual(await settledSizes(producer), { lanes: 0, outstanding: 0 });
  });

  test('a job whose outputs pass 64 MiB is answered in several reply messages, every request matched', async () => {
    const identity = await register('identity-float.onnx', 'identity-float');
    const channel = `${prefix}:reply:split-test`;
    const tap = new Redis(redisUrl);
    const headers: InferenceReplyHeader[] = [];
    tap.on('messageBuffer', (_channel: Buffer, message: Buffer) => headers.push(decodeReply(message).header as InferenceReplyHeader));
    await tap.subscribe(channel);
    try {
      // Three requests of 24 MiB each in ONE job (as the producer would pack them): 72 MiB of outputs.
      const width = (24 * mebibyte) / 4;
      const tensor = floatTensor('input', [1, width]);
      const jobId = `split-${randomBytes(4).toString('hex')}`;
      const key = payloadKey(prefix, 'identity-float', jobId);
      await writeLargeValue(admin, key, [tensor.data, tensor.data, tensor.data], 60_000);
      const job: InferenceJob = {
        schemaVersion: jobSchemaVersion,
        model: 'identity-float',
        version: identity.version,
        sha256: identity.sha256,
        replyTo: channel,
        deadline: Date.now() + 60_000,
        enqueuedAt: Date.now(),
        priority: 1,
        settings: { ...defaultExecutionSettings, maxBatchSize: 0 },
        payloadKey: key,
        requests: ['a', 'b', 'c'].map((correlationId) => ({
          correlationId,
          inputs: [{ name: 'input', datatype: 'FP32' as const, shape: [1, width], byteLength: tensor.data.byteLength }],
          outputs: ['output'],
          maxOutputBytes: 32 * mebibyte,
        })),
      };
      const queue = new Queue(inferenceQueueName('identity-float'), { connection: admin, prefix });
      await queue.add('infer', job, { jobId, removeOnComplete: true });
      await queue.close();
      // As the producer does after queuing: workers consume only the model queues announced on the doorbell.
      new WorkDoorbell(admin, prefix, createLogger(loadConfig({}), 'test')).ring('identity-float');
      const started = Date.now();
      while (headers.flatMap((header) => header.results).length < 3 && Date.now() - started < 60_000) await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(headers.length, 2, 'two messages: 48 MiB and 24 MiB');
      assert.deepEqual(
        headers.flatMap((header) => header.results.map((result) => result.correlationId)),
        ['a', 'b', 'c'],
      );
      for (const header of headers) {
        assert.ok((header.bodyLength ?? 0) <= 64 * mebibyte, `a message body of ${header.bodyLength} bytes`);
        if (header.bodyKey !== undefined) await admin.del(header.bodyKey);
      }
    } finally {
      tap.disconnect();
    }
  });

  test('the API refuses a reply bigger than its request allows, unread, and still takes the others of the message', async () => {
    const smallWait = replies.expectInference({ maxOutputBytes: 1000 });
    const bigWait = replies.expectInference({ maxOutputBytes: 100_000 });
    const small = smallWait.correlationId;
    const big = bigWait.correlationId;
    const answered = smallWait.reply.then((outcome) => outcome.outputs);
    const refused = bigWait.reply.then(
      () => Promise.reject(new Error('a reply past the limit was accepted')),
      (error: GantryError) => error,
    );
    // As an older worker (one that checks no limit) would publish it: 200 KB for a request allowed 100 KB.
    const bodyKey = replyBodyKey(prefix, 'tiny-mlp', 'guard-test');
    const smallBytes = Buffer.alloc(64, 1);
    const bigBytes = Buffer.alloc(200_000, 2);
    await writeLargeValue(admin, bodyKey, [smallBytes, bigBytes], 60_000);
    const header: InferenceReplyHeader = {
      kind: 'infer',
      bodyKey,
      bodyLength: smallBytes.byteLength + bigBytes.byteLength,
      results: [
        { correlationId: small, outputs: [{ name: 'output', datatype: 'FP32', shape: [1, 16], byteLength: smallBytes.byteLength }] },
        { correlationId: big, outputs: [{ name: 'output', datatype: 'FP32', shape: [1, 50_000], byteLength: bigBytes.byteLength }] },
      ],
    };
    await admin.publish(replies.channel, encodeReply(header));
    const error = await refused;
    assert.equal(error.code, ErrorCode.OutputTooLarge);
    assert.match(error.message, /200000 bytes, more than GANTRY_MAX_RESPONSE_BYTES \(100000\)/);
    const outputs = await answered;
    assert.deepEqual(Buffer.from(outputs[0]!.data), smallBytes);
    const started = Date.now();
    while ((await admin.exists(bodyKey)) === 1 && Date.now() - started < 5000) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(await admin.exists(bodyKey), 0, 'the body key is deleted');
  });
});
