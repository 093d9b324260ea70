/**
 * The typed client (src/client/) against a real `gantry start`: a push with progress, inferences with typed arrays
 * over JSON and the binary extension (compared with onnxruntime run in this process), exact INT64, errors as
 * GantryError with the requestId Gantry answered, a real 429 (a tenant's rate limit) retried, an abort, jobs,
 * batches, the control plane and gRPC.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { GantryClient, GantryError, GantryGrpcClient, binaryThresholdBytes } from '../../src/client/index.js';
import { fixturePath, startGantry, testAdminKey, type GantryProcess } from '../helpers/gantry-process.js';
import { clientFor, maxAbsDiff, ort, randomFloats } from './support.js';

/** A JSON part small enough that a 64 KiB+ tensor can only arrive as binary data (so 'auto' is seen to choose it). */
const maxJsonRequestBytes = 48 * 1024;

let gantry: GantryProcess;
let client: GantryClient;
let reference: ort.InferenceSession;

/** Seeded float32 inputs (support/prng.ts), as the model takes them. */
function floats(count: number, seed: number): Float32Array {
  return Float32Array.from(randomFloats(seed, count));
}

async function rejection(promise: Promise<unknown>): Promise<GantryError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof GantryError, `expected a GantryError, got ${String(error)}`);
    return error;
  }
  assert.fail('the call succeeded');
}

async function expected(input: Float32Array, rows: number): Promise<Float32Array> {
  const outputs = await reference.run({ input: new ort.Tensor('float32', input, [rows, 256]) });
  return outputs.output!.data as Float32Array;
}

before(async () => {
  gantry = await startGantry({ env: { GANTRY_MAX_JSON_REQUEST_BYTES: String(maxJsonRequestBytes) } });
  client = clientFor(gantry.baseUrl);
  reference = await ort.InferenceSession.create(fixturePath('tiny-mlp.onnx'));
});

after(async () => {
  await reference?.release();
  await gantry?.cleanup();
});

describe('client e2e', { timeout: 120_000 }, () => {
  test('health and server metadata', async () => {
    assert.equal(await client.live(), true);
    assert.equal(await client.ready(), true);
    const metadata = await client.serverMetadata();
    assert.equal(metadata.name, 'gantry');
    assert.ok(metadata.extensions.includes('binary_tensor_data'), metadata.extensions.join(','));
  });

  test('push streams the file with progress and answers the READY signature', async () => {
    const file = fixturePath('tiny-mlp.onnx');
    const { size } = await stat(file);
    const progress: Array<[number, number | undefined]> = [];
    const pushed = await client.models.push(file, { name: 'tiny-mlp', onProgress: (sent, total) => progress.push([sent, total]) });
    assert.equal(pushed.status, 201);
    assert.equal(pushed.state, 'READY');
    assert.equal(pushed.size, size);
    assert.deepEqual(pushed.inputs, [{ name: 'input', datatype: 'FP32', shape: [-1, 256] }]);
    assert.deepEqual(progress.at(-1), [size, size]);
    // The same file again is answered by that version (200, existing), not a second one.
    const again = await client.models.push(file, { name: 'tiny-mlp' });
    assert.deepEqual([again.status, again.existing, again.version], [200, true, pushed.version]);
    assert.deepEqual(
      (await client.models.list()).map((model) => model.name),
      ['tiny-mlp'],
    );
    assert.equal(await client.models.ready('tiny-mlp'), true);
    assert.equal((await client.models.metadata('tiny-mlp')).outputs[0]!.name, 'output');
  });

  test('infer with a Float32Array: JSON for a small tensor, binary for a large one, both equal to onnxruntime', async () => {
    const one = floats(256, 1);
    const small = await client.infer('tiny-mlp', { input: { data: one, shape: [1, 256] } });
    assert.ok(small.output('output').data instanceof Float32Array);
    assert.equal(maxAbsDiff([...(small.output('output').data as Float32Array)], await expected(one, 1)), 0);
    assert.match(small.requestId ?? '', /\S/);

    const rows = 64;
    const many = floats(256 * rows, 2);
    assert.ok(many.byteLength >= binaryThresholdBytes && many.byteLength > maxJsonRequestBytes);
    const large = await client.infer('tiny-mlp', { input: { data: many, shape: [rows, 256] } });
    assert.deepEqual(large.output('output').shape, [rows, 16]);
    assert.equal(maxAbsDiff([...(large.output('output').data as Float32Array)], await expected(many, rows)), 0);
    // As JSON the same tensor is over GANTRY_MAX_JSON_REQUEST_BYTES: 'auto' above really sent binary data.
    const asJson = await rejection(client.infer('tiny-mlp', { input: { data: many, shape: [rows, 256] } }, { binary: false }));
    assert.deepEqual([asJson.status, asJson.code], [413, 'PAYLOAD_TOO_LARGE']);
    // And binary both ways for the small one.
    const binary = await client.infer('tiny-mlp', { input: { data: one, shape: [1, 256] } }, { binary: true });
    assert.deepEqual(binary.output('output').data, small.output('output').data);
  });

  test('INT64 exact both ways, over JSON and binary', async () => {
    await client.models.push(fixturePath('identity-int64.onnx'), { name: 'int64' });
    const values = new BigInt64Array([-(2n ** 63n), -(2n ** 53n) - 1n, 0n, 2n ** 53n + 1n, 2n ** 63n - 1n]);
    for (const binary of [false, true]) {
      const result = await client.infer('int64', { input: { data: values, shape: [1, values.length] } }, { binary });
      const data = result.outputs[0]!.data;
      assert.ok(data instanceof BigInt64Array, `binary ${binary}`);
      assert.deepEqual([...data], [...values], `binary ${binary}`);
    }
  });

  test('a 4xx is a GantryError with the code and the requestId Gantry answered', async () => {
    const wrong = await rejection(client.infer('tiny-mlp', { nope: new Float32Array(256) }));
    assert.equal(wrong.status, 400);
    assert.equal(wrong.code, 'INVALID_ARGUMENT');
    assert.match(wrong.message, /nope/);
    assert.match(wrong.requestId ?? '', /\S/);
    const missing = await rejection(client.models.get('absent'));
    assert.deepEqual([missing.status, missing.code], [404, 'NOT_FOUND']);
    // The id a caller chose (X-Request-Id) is the one the error carries.
    const traced = await rejection(client.infer('absent', { input: new Float32Array(1) }, { headers: { 'x-request-id': 'client-e2e-trace-1' } }));
    assert.equal(traced.requestId, 'client-e2e-trace-1');
    const unauthenticated = await rejection(clientFor(gantry.baseUrl, 'wrong').models.list());
    assert.deepEqual([unauthenticated.status, unauthenticated.code], [401, 'UNAUTHENTICATED']);
  });

  test("a tenant's rate limit: 429 with Retry-After, which the client waits out and retries", async () => {
    await client.tenants.create({ id: 'client-rate', limits: { requestsPerSecond: 1 } });
    const created = await client.keys.create({ tenant: 'client-rate', name: 'client e2e', scopes: ['models:read', 'models:write', 'infer'] });
    assert.match(created.key, /^gk_/);
    assert.equal((await client.keys.get(created.id)).tenant, 'client-rate');
    const once = clientFor(gantry.baseUrl, created.key, { retries: 0 });
    const patient = clientFor(gantry.baseUrl, created.key, { retries: 3 });
    await patient.models.push(fixturePath('tiny-mlp.onnx'), { name: 'tiny-mlp' });
    const input = { input: { data: floats(256, 3), shape: [1, 256] } };
    // Three calls at once span at most two one-second windows, so two share one: without retries one is refused.
    const refusal = await Promise.all([once.infer('tiny-mlp', input), once.infer('tiny-mlp', input), once.infer('tiny-mlp', input)]).then(
      () => undefined,
      (error: unknown) => error,
    );
    assert.ok(refusal instanceof GantryError, 'three requests at once passed a 1 request/s limit');
    assert.deepEqual([refusal.status, refusal.code], [429, 'RESOURCE_EXHAUSTED']);
    assert.ok((refusal.retryAfterSeconds ?? 0) >= 1, `Retry-After ${refusal.retryAfterSeconds}`);
    // With retries the same burst all succeeds, paced by Retry-After.
    const started = Date.now();
    const results = await Promise.all([patient.infer('tiny-mlp', input), patient.infer('tiny-mlp', input), patient.infer('tiny-mlp', input)]);
    assert.equal(results.length, 3);
    assert.ok(Date.now() - started >= 900, `three requests under a 1/s limit took only ${Date.now() - started} ms: no retry happened`);
    assert.deepEqual((await client.limits.tenant('client-rate')).requestsPerSecond, 1);
    assert.equal((await client.keys.revoke(created.id)).status, 'revoked');
  });

  test('an AbortSignal stops an inference in flight (CANCELLED), long before the model would answer', async () => {
    await client.models.push(fixturePath('slow.onnx'), { name: 'slow' });
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(), 150);
    // ~3.6 µs an iteration: about 2 s of compute.
    const inputs = { iterations: { data: new BigInt64Array([600_000n]), shape: [] }, x: { data: new Float32Array(256), shape: [1, 256] } };
    const aborted = await rejection(client.infer('slow', inputs, { signal: controller.signal }));
    assert.deepEqual([aborted.status, aborted.code], [0, 'CANCELLED']);
    assert.ok(Date.now() - started < 1500, `the abort took ${Date.now() - started} ms`);
    const timedOut = await rejection(client.infer('slow', inputs, { timeoutMs: 200 }));
    assert.ok(timedOut.code === 'DEADLINE_EXCEEDED', `${timedOut.status} ${timedOut.code}: ${timedOut.message}`);
  });

  test('jobs: create, wait, and a result equal to the synchronous one', async () => {
    const input = { input: { data: floats(256, 4), shape: [1, 256] } };
    const job = await client.jobs.create('tiny-mlp', input, { retention: 600 });
    assert.equal(job.model, 'tiny-mlp');
    const states: string[] = [];
    const finished = await client.jobs.wait(job.id, { timeoutMs: 30_000, onState: (seen) => states.push(seen.state) });
    assert.equal(finished.state, 'succeeded', JSON.stringify(finished));
    const result = await client.jobs.result(job.id);
    assert.deepEqual(result.output('output').data, (await client.infer('tiny-mlp', input)).output('output').data);
    assert.ok((await client.jobs.list({ limit: 10 })).jobs.some((listed) => listed.id === job.id));
    // The same Idempotency-Key answers the same job.
    const keyed = await client.jobs.create('tiny-mlp', input, { idempotencyKey: 'client-e2e-1' });
    assert.equal((await client.jobs.create('tiny-mlp', input, { idempotencyKey: 'client-e2e-1' })).id, keyed.id);
  });

  test('batches: submit requests, wait, read the results line by line', async () => {
    const requests = [0, 1, 2].map((index) => ({
      id: `line-${index}`,
      inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 256], data: [...floats(256, 10 + index)] }],
    }));
    requests.push({ id: 'bad', inputs: [{ name: 'nope', datatype: 'FP32', shape: [1], data: [1] }] });
    const batch = await client.batches.submit('tiny-mlp', requests);
    assert.equal(batch.total, 4);
    const done = await client.batches.wait(batch.id, { timeoutMs: 30_000 });
    assert.deepEqual([done.state, done.succeeded, done.failed], ['succeeded', 3, 1]);
    const lines = [];
    for await (const line of client.batches.results(batch.id)) lines.push(line);
    assert.deepEqual(
      lines.map((line) => line.id),
      ['line-0', 'line-1', 'line-2', 'bad'],
    );
    const first = await expected(floats(256, 10), 1);
    assert.equal(maxAbsDiff([...(lines[0]!.response!.output('output').data as Float32Array)], first), 0);
    assert.equal(lines[3]!.error?.code, 'INVALID_ARGUMENT');
  });

  test('gRPC: ready, metadata and an inference equal to the REST one', async () => {
    const grpc = new GantryGrpcClient({ address: gantry.grpcAddress, key: testAdminKey });
    try {
      assert.equal(await grpc.ready(), true);
      assert.equal(await grpc.modelReady('tiny-mlp'), true);
      assert.deepEqual((await grpc.metadata('tiny-mlp')).inputs, [{ name: 'input', datatype: 'FP32', shape: [-1, 256] }]);
      const input = { input: { data: floats(256, 5), shape: [1, 256] } };
      const overGrpc = await grpc.infer('tiny-mlp', input);
      assert.deepEqual(overGrpc.output('output').data, (await client.infer('tiny-mlp', input)).output('output').data);
      const exact = await grpc.infer('int64', { input: { data: new BigInt64Array([2n ** 63n - 1n]), shape: [1, 1] } });
      assert.deepEqual([...(exact.outputs[0]!.data as BigInt64Array)], [2n ** 63n - 1n]);
      const missing = await rejection(grpc.infer('absent', input));
      assert.deepEqual([missing.status, missing.code], [404, 'NOT_FOUND']);
    } finally {
      grpc.close();
    }
  });

  test('warm-up samples (multipart push and setWarmup), unload and load', async () => {
    const sample = { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] };
    const pushed = await client.models.push(fixturePath('identity-float.onnx'), { name: 'warmed', warmup: sample });
    assert.deepEqual([pushed.status, pushed.state, pushed.warmup?.status], [201, 'READY', 'ok']);
    const refused = await rejection(client.models.push(fixturePath('identity-float.onnx'), { name: 'warmed', duplicate: true, warmup: { inputs: 'no' } }));
    assert.deepEqual([refused.status, refused.code], [400, 'INVALID_ARGUMENT']);
    const rewarmed = await client.models.setWarmup('tiny-mlp', 1, {
      inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 256], data: [...floats(256, 6)] }],
    });
    assert.equal(rewarmed.warmup?.status, 'ok');
    await client.models.unload('warmed');
    assert.equal(await client.models.ready('warmed'), false);
    await client.models.load('warmed');
    assert.equal(await client.models.ready('warmed'), true);
    const index = await client.models.repositoryIndex({ ready: true });
    assert.ok(
      index.some((entry) => entry.name === 'warmed' && entry.state === 'READY'),
      JSON.stringify(index),
    );
  });

  test('aliases, config and removal', async () => {
    const detail = await client.models.get('tiny-mlp');
    const version = detail.versions[0]!.version;
    assert.equal((await client.models.setAlias('tiny-mlp', 'production', version)).version, version);
    assert.deepEqual(
      (await client.models.aliases('tiny-mlp')).map((alias) => alias.alias),
      ['production'],
    );
    assert.equal((await client.models.updateConfig('tiny-mlp', { defaultPriority: 5 })).defaultPriority, 5);
    await client.models.remove('tiny-mlp', { version, force: true });
    assert.deepEqual([(await rejection(client.models.get('tiny-mlp'))).status], [404]);
  });
});
