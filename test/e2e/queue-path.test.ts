/**
 * The queue and the worker are really on the inference path: a slow inference runs into the API's timeout
 * (504), and an API without any worker cannot answer at all.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { JsonBody } from '../../support/json-body.js';
import { deleteKeys, fixturePath, inferJson, startGantry, uploadModel, withAdminKey, type GantryProcess } from '../helpers/gantry-process.js';
import { assertError, ort, randomFloats } from './support.js';

const slowRequest = (iterations: number) => ({
  inputs: [
    { name: 'iterations', datatype: 'INT64', shape: [], data: [iterations] },
    { name: 'x', datatype: 'FP32', shape: [1, 256], data: randomFloats(7, 256) },
  ],
});

describe('inference timeout', () => {
  let gantry: GantryProcess;

  before(async () => {
    // A short shutdown timeout: at the end the worker may still be finishing an abandoned run.
    gantry = await startGantry({ env: { GANTRY_INFER_TIMEOUT_MS: '300', GANTRY_SHUTDOWN_TIMEOUT_MS: '3000' } });
  });
  after(async () => {
    await gantry?.cleanup();
  });

  test('a run longer than GANTRY_INFER_TIMEOUT_MS → 504 DEADLINE_EXCEEDED quickly; a fast one then succeeds', async () => {
    const upload = await uploadModel(gantry.baseUrl, 'slow', fixturePath('slow.onnx'));
    assert.equal(upload.status, 201, JSON.stringify(upload.body));
    assert.deepEqual(upload.body.inputs, [
      { name: 'iterations', datatype: 'INT64', shape: [] },
      { name: 'x', datatype: 'FP32', shape: [1, 256] },
    ]);

    const started = Date.now();
    const slow = await inferJson(gantry.baseUrl, 'slow', slowRequest(1_000_000));
    const elapsed = Date.now() - started;
    assertError({ ...slow, headers: new Headers() }, 504, 'DEADLINE_EXCEEDED', /timeout of \d+ ms/);
    assert.ok(elapsed >= 250, `answered after ${elapsed} ms, before the timeout could have passed`);
    assert.ok(elapsed < 1500, `504 took ${elapsed} ms`);

    // The abandoned run (~3.6 s on an idle machine) may still hold the model's instance; a fast request must get
    // through once it ends. 10 s is plenty on an idle machine; on a busy one the window grows with the measured
    // speed of the same loop run in-process (the 1,000,000-iteration run takes 20x this 50,000-iteration one).
    const calibration = await ort.InferenceSession.create(fixturePath('slow.onnx'));
    const calibrationStarted = performance.now();
    await calibration.run({
      iterations: new ort.Tensor('int64', BigInt64Array.from([50_000n]), []),
      x: new ort.Tensor('float32', Float32Array.from(randomFloats(7, 256)), [1, 256]),
    });
    const estimatedSlowRunMs = (performance.now() - calibrationStarted) * 20;
    const windowMs = Math.max(10_000, 2 * estimatedSlowRunMs + 2_000);
    const deadline = Date.now() + windowMs;
    let fast: { status: number; body: JsonBody } | undefined;
    while (Date.now() < deadline) {
      fast = await inferJson(gantry.baseUrl, 'slow', slowRequest(1));
      if (fast.status === 200) break;
      assert.equal(fast.status, 504, `only timeouts are expected while the slow run finishes: ${JSON.stringify(fast.body)}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.equal(
      fast?.status,
      200,
      `no fast answer within ${Math.round(windowMs)} ms (slow run estimated at ${Math.round(estimatedSlowRunMs)} ms): ${JSON.stringify(fast?.body)}`,
    );
    assert.deepEqual(fast!.body.outputs[0].shape, [1, 256]);
    assert.equal(fast!.body.outputs[0].data.length, 256);
  });
});

describe('API without a worker', () => {
  let dataDirectory: string;
  let prefix: string;
  let loader: GantryProcess | undefined;
  let apiOnly: GantryProcess | undefined;

  before(async () => {
    dataDirectory = await mkdtemp(path.join(os.tmpdir(), 'gantry-e2e-noworker-'));
    loader = await startGantry({ dataDirectory });
    prefix = loader.prefix;
  });
  after(async () => {
    await loader?.stop();
    await apiOnly?.stop();
    await deleteKeys('redis://127.0.0.1:6379', prefix);
    await rm(dataDirectory, { recursive: true, force: true });
  });

  test('nothing answers without a worker: uploads stay LOADING (202) and inference times out (504)', async () => {
    // A full gantry loads the model, proving it works, then goes away.
    const upload = await uploadModel(loader!.baseUrl, 'mlp', fixturePath('tiny-mlp.onnx'));
    assert.equal(upload.status, 201, JSON.stringify(upload.body));
    assert.equal(upload.body.state, 'READY');
    const request = { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 256], data: randomFloats(3, 256) }] };
    assert.equal((await inferJson(loader!.baseUrl, 'mlp', request)).status, 200);
    await loader!.stop();

    // GANTRY_SHUTDOWN_TIMEOUT_MS keeps the stop short: the API waits on the never-answered load (see report).
    apiOnly = await startGantry({ command: 'api', prefix, dataDirectory, env: { GANTRY_INFER_TIMEOUT_MS: '500', GANTRY_SHUTDOWN_TIMEOUT_MS: '1000' } });

    const pending = await uploadModel(apiOnly.baseUrl, 'mlp-later', fixturePath('tiny-mlp.onnx'), '?wait=false');
    assert.equal(pending.status, 202, JSON.stringify(pending.body));
    assert.equal(pending.body.state, 'LOADING');

    const started = Date.now();
    const reply = await inferJson(apiOnly.baseUrl, 'mlp', request);
    const elapsed = Date.now() - started;
    assertError({ ...reply, headers: new Headers() }, 504, 'DEADLINE_EXCEEDED');
    assert.ok(elapsed >= 450 && elapsed < 3000, `504 after ${elapsed} ms`);

    // Still LOADING: no worker ever took the load request.
    const version = await fetch(`${apiOnly.baseUrl}/v1/models/mlp-later/versions/1`, { headers: withAdminKey() });
    assert.equal(((await version.json()) as { state: string }).state, 'LOADING');
  });
});
