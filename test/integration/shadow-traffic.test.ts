/**
 * Shadow traffic (issue 14) through the data plane: the API role built by ApiRole.create and a WorkerRole in this
 * process, on a real Redis with a private prefix, running fixture models in onnxruntime. The traffic policy is set
 * through the store the `PUT /v1/models/{m}/traffic` route uses. Covers: an identical shadow (successes, no
 * mismatches), a different one (mismatches), a shadow that fails or is gone (the primary still answers), the
 * in-flight cap (sheds), and shutdown cancelling shadows instead of waiting for them.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { ApiRole } from '../../src/api/api-role.js';
import type { ApiServices } from '../../src/api/services.js';
import { anonymousAdmin } from '../../src/auth/principal.js';
import { loadConfig } from '../../src/config.js';
import type { InferenceCall, InferenceResult } from '../../src/inference/inference-call.js';
import { ShadowTraffic } from '../../src/inference/shadow-traffic.js';
import { createLogger } from '../../src/logger.js';
import { createApiMetrics } from '../../src/metrics/api-metrics.js';
import { InferenceProducer } from '../../src/queue/inference-producer.js';
import { ReplyListener } from '../../src/queue/reply-listener.js';
import { defaultModelConfig } from '../../src/registry/model-config.js';
import { ModelTraffic } from '../../src/registry/model-traffic.js';
import type { TrafficPolicy } from '../../src/registry/traffic-policy.js';
import { WorkerRole } from '../../src/worker/worker-role.js';
import { adminAuthorization, deleteKeys, fixturePath, testAdminKey } from '../helpers/gantry-process.js';
import { sampleValue } from '../helpers/metrics-text.js';
import { threadNiceValues } from '../helpers/thread-nice.js';
import { waitForReady } from '../../src/queue/redis-connection.js';

const redisUrl = 'redis://127.0.0.1:6379';
/** The in-flight cap of the role under test: small, so the cap test can reach it. */
const maxShadowInFlight = 2;

function floats(data: Uint8Array): number[] {
  return [...new Float32Array(new Uint8Array(data).buffer)];
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let attempt = 0; attempt < 400; attempt++) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  assert.fail(`timed out waiting until ${what}`);
}

describe('shadow traffic with a real worker', { timeout: 180_000 }, () => {
  const prefix = `itest-shadow-${randomBytes(4).toString('hex')}`;
  let dataDirectory: string;
  let role: ApiRole;
  let worker: WorkerRole;
  let redis: Redis;
  let traffic: ModelTraffic;

  const infer = (call: Omit<InferenceCall, 'principal' | 'protocol'>): Promise<InferenceResult> =>
    role.inference.infer({ principal: anonymousAdmin, protocol: 'rest', ...call });
  /** A request of the identity-shaped models (input FP32 [1, 4]) pinned to version 1. */
  const identityCall = (model: string, values = [1, 2, 3, 4]) =>
    infer({ model, version: '1', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], content: { kind: 'json', data: values } }] });

  async function upload(name: string, fixture: string): Promise<void> {
    const response = await role.app.inject({
      method: 'POST',
      url: `/v1/models/${name}/versions?duplicate=true`,
      headers: { authorization: adminAuthorization, 'content-type': 'application/octet-stream' },
      payload: await readFile(fixturePath(fixture)),
    });
    assert.equal(response.statusCode, 201, `upload ${name}: ${response.body}`);
  }

  async function setPolicy(model: string, policy: TrafficPolicy): Promise<void> {
    const outcome = await traffic.set(model, policy);
    assert.equal(outcome.outcome, 'set');
    // Its registry event reaches the catalog soon after: wait for that, so the next request follows the new policy.
    const catalog = (role as unknown as { services: ApiServices }).services.catalog;
    let seen: TrafficPolicy | undefined;
    await until(() => {
      void catalog.traffic(model).then((current) => (seen = current));
      return JSON.stringify(seen?.shadow) === JSON.stringify(policy.shadow);
    }, `the catalog has the policy of ${model}`);
  }

  async function scrape(): Promise<string> {
    const response = await role.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: adminAuthorization } });
    return response.body;
  }

  const shadowCount = (metrics: string, model: string, version: string, outcome: string) =>
    sampleValue(metrics, 'gantry_shadow_requests_total', { model, version, outcome });

  before(async () => {
    dataDirectory = await mkdtemp(path.join(os.tmpdir(), 'gantry-shadow-traffic-'));
    const config = loadConfig({
      GANTRY_QUEUE_PREFIX: prefix,
      GANTRY_DATA_DIR: dataDirectory,
      GANTRY_WORKER_METRICS_PORT: '0',
      GANTRY_MAX_SHADOW_INFLIGHT: String(maxShadowInFlight),
      LOG_LEVEL: 'silent',
      REDIS_URL: redisUrl,
      GANTRY_ADMIN_KEY: testAdminKey,
    });
    const logger = createLogger(config, 'test');
    worker = new WorkerRole({ ...config, REDIS_URL: redisUrl }, logger);
    await worker.start();
    role = await ApiRole.create({ ...config, REDIS_URL: redisUrl }, logger);
    await role.app.ready();
    redis = new Redis(redisUrl);
    traffic = new ModelTraffic(redis, prefix);
    // 'shadowed': 1 and 2 are the same identity model, 3 doubles its input, 4 (slow) takes other inputs.
    for (const fixture of ['identity-float.onnx', 'identity-float.onnx', 'fixed-batch.onnx', 'slow.onnx']) await upload('shadowed', fixture);
    // 'vanishing': version 2 is deleted after the policy names it.
    for (const fixture of ['identity-float.onnx', 'identity-float.onnx']) await upload('vanishing', fixture);
  });

  after(async () => {
    await role?.close(1000);
    await worker?.close();
    redis?.disconnect();
    await deleteKeys(redisUrl, prefix);
    if (dataDirectory !== undefined) await rm(dataDirectory, { recursive: true, force: true });
  });

  test('an identical shadow version: every copy succeeds with no mismatch and a max abs difference of 0', async () => {
    await setPolicy('shadowed', { shadow: { version: '2', percent: 100 } });
    const before = await scrape();
    for (let request = 0; request < 5; request++) {
      const result = await identityCall('shadowed', [request, 2, 3, 4]);
      assert.equal(result.modelVersion, '1');
      assert.deepEqual(floats(result.outputs[0]!.tensor.data), [request, 2, 3, 4]);
      await until(() => role.inference.shadows.inFlightCount === 0, 'the shadow copy finished');
    }
    const after = await scrape();
    assert.equal(shadowCount(after, 'shadowed', '2', 'success') - shadowCount(before, 'shadowed', '2', 'success'), 5);
    assert.equal(sampleValue(after, 'gantry_shadow_mismatches_total', { model: 'shadowed', version: '2' }), 0);
    assert.equal(sampleValue(after, 'gantry_shadow_max_abs_difference_bucket', { model: 'shadowed', version: '2', le: '0' }), 5);
    assert.equal(sampleValue(after, 'gantry_shadow_request_duration_seconds_count', { model: 'shadowed', version: '2' }), 5);
  });

  test("the copies ran on the worker's background session: a thread of its own at nice 19, beside nice-0 primaries", async () => {
    if (process.platform !== 'linux') return; // per-thread nice values are Linux's
    // The worker runs in this process: its instance threads are this process's threads.
    const niceValues = await threadNiceValues();
    assert.ok(niceValues.includes(19), `a background instance thread runs the shadow copies (nice values: ${[...new Set(niceValues)].join(', ')})`);
    assert.ok(niceValues.filter((nice) => nice === 0).length > niceValues.filter((nice) => nice === 19).length, 'everything else keeps nice 0');
  });

  test('a different shadow version: its answers count as mismatches, the primary answer is unchanged', async () => {
    await setPolicy('shadowed', { shadow: { version: '3', percent: 100 } });
    for (let request = 0; request < 3; request++) {
      const result = await identityCall('shadowed');
      assert.deepEqual(floats(result.outputs[0]!.tensor.data), [1, 2, 3, 4]);
      await until(() => role.inference.shadows.inFlightCount === 0, 'the shadow copy finished');
    }
    const metrics = await scrape();
    assert.equal(shadowCount(metrics, 'shadowed', '3', 'success'), 3);
    assert.equal(sampleValue(metrics, 'gantry_shadow_mismatches_total', { model: 'shadowed', version: '3' }), 3);
    // fixed-batch doubles the input: the largest difference is 4 (8 against 4), in the (0.1, 10] bucket.
    assert.equal(sampleValue(metrics, 'gantry_shadow_max_abs_difference_bucket', { model: 'shadowed', version: '3', le: '0.1' }), 0);
    assert.equal(sampleValue(metrics, 'gantry_shadow_max_abs_difference_bucket', { model: 'shadowed', version: '3', le: '10' }), 3);
    assert.equal(sampleValue(metrics, 'gantry_shadow_max_abs_difference_sum', { model: 'shadowed', version: '3' }), 12);
  });

  test('a shadow that cannot take the inputs fails on its own: the primary answers, the shadow counts as an error', async () => {
    await setPolicy('shadowed', { shadow: { version: '4', percent: 100 } });
    const result = await identityCall('shadowed');
    assert.deepEqual(floats(result.outputs[0]!.tensor.data), [1, 2, 3, 4]);
    await until(() => role.inference.shadows.inFlightCount === 0, 'the shadow copy finished');
    assert.equal(shadowCount(await scrape(), 'shadowed', '4', 'error'), 1);
  });

  test('a shadow version that is gone is shed, and the primary answers', async () => {
    await setPolicy('vanishing', { shadow: { version: '2', percent: 100 } });
    const deleted = await role.app.inject({
      method: 'DELETE',
      url: '/v1/models/vanishing/versions/2?force=true',
      headers: { authorization: adminAuthorization },
    });
    assert.ok(deleted.statusCode < 300, `delete: ${deleted.body}`);
    const result = await identityCall('vanishing');
    assert.equal(result.modelVersion, '1');
    await until(() => role.inference.shadows.inFlightCount === 0, 'the shadow copy finished');
    assert.equal(shadowCount(await scrape(), 'vanishing', '2', 'shed'), 1);
    assert.equal(shadowCount(await scrape(), 'vanishing', '2', 'success'), 0);
  });

  test('at 0 percent nothing is copied', async () => {
    await setPolicy('shadowed', { shadow: { version: '2', percent: 0 } });
    const before = await scrape();
    await identityCall('shadowed');
    assert.equal(role.inference.shadows.inFlightCount, 0);
    const after = await scrape();
    for (const outcome of ['success', 'error', 'timeout', 'shed']) {
      assert.equal(shadowCount(after, 'shadowed', '2', outcome), shadowCount(before, 'shadowed', '2', outcome), outcome);
    }
  });

  test('past GANTRY_MAX_SHADOW_INFLIGHT copies are shed; every primary answers', async () => {
    await setPolicy('shadowed', { shadow: { version: '2', percent: 100 } });
    const before = await scrape();
    const requests = 20;
    let mostInFlight = 0;
    const results = await Promise.all(
      Array.from({ length: requests }, (_, index) =>
        identityCall('shadowed', [index, 0, 0, 0]).then((result) => {
          mostInFlight = Math.max(mostInFlight, role.inference.shadows.inFlightCount);
          return result;
        }),
      ),
    );
    results.forEach((result, index) => assert.deepEqual(floats(result.outputs[0]!.tensor.data), [index, 0, 0, 0]));
    await until(() => role.inference.shadows.inFlightCount === 0, 'the shadow copies finished');
    const after = await scrape();
    const counted = (outcome: string) => shadowCount(after, 'shadowed', '2', outcome) - shadowCount(before, 'shadowed', '2', outcome);
    assert.ok(mostInFlight <= maxShadowInFlight, `at most ${maxShadowInFlight} in flight, saw ${mostInFlight}`);
    assert.ok(counted('shed') > 0, 'some copies were shed');
    assert.ok(counted('success') > 0, 'some copies ran');
    assert.equal(counted('success') + counted('shed'), requests);
  });
});

describe('shadow copies at shutdown', { timeout: 60_000 }, () => {
  // No worker consumes this prefix: a copy sent here stays queued until cancelled (or its one-minute deadline).
  const prefix = `itest-shadow-idle-${randomBytes(4).toString('hex')}`;
  let redis: Redis;
  let subscriber: Redis;
  let producer: InferenceProducer;

  before(async () => {
    redis = new Redis(redisUrl);
    subscriber = new Redis(redisUrl);
    const logger = createLogger(loadConfig({ LOG_LEVEL: 'silent', REDIS_URL: redisUrl }), 'test');
    const replies = new ReplyListener(subscriber, redis, prefix, logger);
    await replies.start();
    // The producer refuses while its connection is still connecting.
    await waitForReady(redis, 15_000);
    producer = new InferenceProducer(redis, replies, { prefix, maxRequestsPerJob: 1, maxJobsInFlight: 1 }, logger);
  });

  after(async () => {
    await producer?.close();
    subscriber?.disconnect();
    redis?.disconnect();
    await deleteKeys(redisUrl, prefix);
  });

  test('shutdown cancels the copies in flight (counted as shed) instead of waiting for their deadline', async () => {
    const metrics = createApiMetrics({
      isRedisUp: () => true,
      pendingByModel: async () => new Map(),
      versionsByState: async () => new Map(),
      unfinishedWork: async () => new Map(),
    });
    let accepting = true;
    const signature = {
      inputs: [{ name: 'input', datatype: 'FP32' as const, shape: [1, 4] }],
      outputs: [{ name: 'output', datatype: 'FP32' as const, shape: [1, 4] }],
    };
    const shadows = new ShadowTraffic({
      // The shadow version as the catalog would serve it (the queue and the Redis under it are real).
      catalog: { serving: async () => ({ version: '2', sha256: '0'.repeat(64), state: 'READY', signature }) as never },
      producer,
      metrics,
      maxInFlight: 4,
      isAcceptingWork: () => accepting,
    });
    const input = { name: 'input', datatype: 'FP32' as const, shape: [1, 4], data: new Uint8Array(16) };
    const primary = {
      model: 'idle',
      version: '1',
      modelConfig: defaultModelConfig(),
      descriptors: [{ name: 'input', datatype: 'FP32' as const, shape: [1, 4] }],
      inputs: [input],
      outputNames: ['output'],
      outputLimits: { maxOutputBytes: 1024, maxJsonOutputElements: 1024, jsonOutputs: ['output'] },
      outputs: [input],
      timeoutMs: 60_000,
    };
    shadows.mirror({ shadow: { version: '2', percent: 100 } }, primary);
    assert.equal(shadows.inFlightCount, 1);
    accepting = false;
    await until(() => shadows.inFlightCount === 0, 'the copy in flight was cancelled');
    const exposition = await metrics.registry.metrics();
    assert.equal(sampleValue(exposition, 'gantry_shadow_requests_total', { model: 'idle', version: '2', outcome: 'shed' }), 1);
    // Once shutdown began no copy is sent at all.
    shadows.mirror({ shadow: { version: '2', percent: 100 } }, primary);
    assert.equal(shadows.inFlightCount, 0);
    const after = await metrics.registry.metrics();
    assert.equal(sampleValue(after, 'gantry_shadow_requests_total', { model: 'idle', version: '2', outcome: 'shed' }), 2);
  });
});
