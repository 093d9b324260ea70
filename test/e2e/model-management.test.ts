/**
 * Model management over /v1: listing, deleting versions and models (with the content-addressed blob kept while
 * any version uses it), and asynchronous uploads (`?wait=false`).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { JsonBody } from '../../support/json-body.js';
import { fixturePath, inferJson, startGantry, uploadModel, type GantryProcess } from '../helpers/gantry-process.js';
import { assertError, blobDirectory, call, sha256OfFile, waitUntil } from './support.js';

/** GANTRY_BLOB_GC_GRACE_MS for this file's gantry. */
const graceMs = 1000;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe('model management', () => {
  let gantry: GantryProcess;
  const blobPath = (sha256: string) => path.join(blobDirectory(gantry.dataDirectory), sha256);
  const multiInputs = [
    { name: 'a', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] },
    { name: 'b', datatype: 'FP32', shape: [1, 4], data: [4, 3, 2, 1] },
  ];

  before(async () => {
    // A short grace period, so that a deleted model's file is seen both kept through it and removed after it.
    gantry = await startGantry({ env: { GANTRY_BLOB_GC_GRACE_MS: String(graceMs), GANTRY_BLOB_GC_INTERVAL_MS: '100' } });
  });
  after(async () => {
    await gantry?.cleanup();
  });

  test('GET /v1/models lists every model with its version summaries', async () => {
    const empty = await call(gantry.baseUrl, 'GET', '/v1/models');
    assert.equal(empty.status, 200);
    assert.deepEqual(empty.body, { models: [] });

    const a1 = await uploadModel(gantry.baseUrl, 'listed-a', fixturePath('tiny-mlp.onnx'));
    const a2 = await uploadModel(gantry.baseUrl, 'listed-a', fixturePath('tiny-mlp.onnx'), '?duplicate=true');
    const b1 = await uploadModel(gantry.baseUrl, 'listed-b', fixturePath('multi-io.onnx'));
    for (const upload of [a1, a2, b1]) assert.equal(upload.status, 201, JSON.stringify(upload.body));

    const list = await call(gantry.baseUrl, 'GET', '/v1/models');
    assert.equal(list.status, 200);
    const summary = (upload: { body: JsonBody }) => ({
      version: upload.body.version,
      state: 'READY',
      sha256: upload.body.sha256,
      size: upload.body.size,
      createdAt: upload.body.createdAt,
    });
    const byName = new Map(list.body.models.map((model: { name: string }) => [model.name, model]));
    assert.deepEqual([...byName.keys()].sort(), ['listed-a', 'listed-b']);
    assert.deepEqual(byName.get('listed-a'), { name: 'listed-a', tenant: 'default', versions: [summary(a1), summary(a2)] });
    assert.deepEqual(byName.get('listed-b'), { name: 'listed-b', tenant: 'default', versions: [summary(b1)] });
    assert.equal(summary(b1).sha256, await sha256OfFile(fixturePath('multi-io.onnx')));
    for (const version of (byName.get('listed-a') as { versions: { createdAt: string }[] }).versions) {
      assert.ok(!Number.isNaN(Date.parse(version.createdAt)));
    }

    const model = await call(gantry.baseUrl, 'GET', '/v1/models/listed-a');
    assert.equal(model.status, 200);
    assert.equal(model.body.name, 'listed-a');
    assert.deepEqual(
      model.body.versions.map((version: { version: string; state: string }) => [version.version, version.state]),
      [
        ['1', 'READY'],
        ['2', 'READY'],
      ],
    );
  });

  test('DELETE a version → 204, then it 404s for metadata and inference', async () => {
    const upload = await uploadModel(gantry.baseUrl, 'doomed', fixturePath('multi-io.onnx'));
    assert.equal(upload.status, 201);
    const keep = await uploadModel(gantry.baseUrl, 'doomed', fixturePath('multi-io.onnx'), '?duplicate=true');
    assert.equal(keep.status, 201);
    assert.equal((await inferJson(gantry.baseUrl, 'doomed', { inputs: multiInputs }, '1')).status, 200);

    const deleted = await call(gantry.baseUrl, 'DELETE', '/v1/models/doomed/versions/1');
    assert.equal(deleted.status, 204);
    assert.equal(deleted.body, undefined);

    assertError(await call(gantry.baseUrl, 'GET', '/v1/models/doomed/versions/1'), 404, 'NOT_FOUND');
    assertError(await call(gantry.baseUrl, 'GET', '/v2/models/doomed/versions/1'), 404, 'NOT_FOUND');
    const infer = await inferJson(gantry.baseUrl, 'doomed', { inputs: multiInputs }, '1');
    assertError({ ...infer, headers: new Headers() }, 404, 'NOT_FOUND');
    assertError(await call(gantry.baseUrl, 'DELETE', '/v1/models/doomed/versions/1'), 404, 'NOT_FOUND');

    // Version 2 is untouched and still serves.
    const model = await call(gantry.baseUrl, 'GET', '/v1/models/doomed');
    assert.deepEqual(
      model.body.versions.map((version: { version: string }) => version.version),
      ['2'],
    );
    const still = await inferJson(gantry.baseUrl, 'doomed', { inputs: multiInputs });
    assert.equal(still.status, 200, JSON.stringify(still.body));
    assert.equal(still.body.model_version, '2');
  });

  test('a blob shared by two models stays until the last version using it is deleted', async () => {
    const file = fixturePath('identity-float.onnx');
    const sha256 = await sha256OfFile(file);
    const first = await uploadModel(gantry.baseUrl, 'shared-one', file);
    const second = await uploadModel(gantry.baseUrl, 'shared-two', file);
    assert.equal(first.status, 201);
    assert.equal(second.status, 201);
    assert.equal(first.body.sha256, sha256);
    assert.equal(second.body.sha256, sha256);
    assert.ok(existsSync(blobPath(sha256)), 'the blob is stored');

    assert.equal((await call(gantry.baseUrl, 'DELETE', '/v1/models/shared-one/versions/1')).status, 204);
    await sleep(graceMs + 500);
    assert.ok(existsSync(blobPath(sha256)), 'the blob stays past the grace period while shared-two uses it');
    const stillServes = await inferJson(gantry.baseUrl, 'shared-two', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 2], data: [1.5, -2] }] });
    assert.equal(stillServes.status, 200, JSON.stringify(stillServes.body));
    assert.deepEqual(stillServes.body.outputs[0].data, [1.5, -2]);

    assert.equal((await call(gantry.baseUrl, 'DELETE', '/v1/models/shared-two/versions/1')).status, 204);
    assert.ok(existsSync(blobPath(sha256)), 'the blob stays for the grace period (an upload of the same bytes may be racing the delete)');
    // Several collection passes (every 100 ms) later, still inside the grace period: a deleted version that served
    // is not a refused upload, whose file goes at the next pass.
    await sleep(graceMs / 2);
    assert.ok(existsSync(blobPath(sha256)), 'the blob of a deleted version that served stays through its grace period');
    await waitUntil(async () => !existsSync(blobPath(sha256)), graceMs + 5000, 'the blob to go once no version uses it');
    assertError(await call(gantry.baseUrl, 'GET', '/v1/models/shared-one'), 404, 'NOT_FOUND');
    assertError(await call(gantry.baseUrl, 'GET', '/v1/models/shared-two'), 404, 'NOT_FOUND');
  });

  test('DELETE a model → 204, then it 404s everywhere and its blob is gone', async () => {
    const file = fixturePath('identity-int32.onnx');
    const sha256 = await sha256OfFile(file);
    assert.equal((await uploadModel(gantry.baseUrl, 'whole', file)).status, 201);
    assert.equal((await uploadModel(gantry.baseUrl, 'whole', file, '?duplicate=true')).status, 201);
    assert.ok(existsSync(blobPath(sha256)));

    const deleted = await call(gantry.baseUrl, 'DELETE', '/v1/models/whole');
    assert.equal(deleted.status, 204);
    assertError(await call(gantry.baseUrl, 'GET', '/v1/models/whole'), 404, 'NOT_FOUND');
    assertError(await call(gantry.baseUrl, 'GET', '/v1/models/whole/versions/2'), 404, 'NOT_FOUND');
    assertError(await call(gantry.baseUrl, 'GET', '/v2/models/whole'), 404, 'NOT_FOUND');
    const infer = await inferJson(gantry.baseUrl, 'whole', { inputs: [{ name: 'input', datatype: 'INT32', shape: [1, 1], data: [1] }] });
    assertError({ ...infer, headers: new Headers() }, 404, 'NOT_FOUND');
    const list = await call(gantry.baseUrl, 'GET', '/v1/models');
    assert.ok(!list.body.models.some((model: { name: string }) => model.name === 'whole'));
    await waitUntil(async () => !existsSync(blobPath(sha256)), graceMs + 5000, 'the blob to go after the grace period');
    assertError(await call(gantry.baseUrl, 'DELETE', '/v1/models/whole'), 404, 'NOT_FOUND');
  });

  test('?wait=false answers 202 LOADING, and polling the version reaches READY', async () => {
    const upload = await uploadModel(gantry.baseUrl, 'async-model', fixturePath('tiny-mlp.onnx'), '?wait=false');
    assert.equal(upload.status, 202, JSON.stringify(upload.body));
    assert.equal(upload.body.name, 'async-model');
    assert.equal(upload.body.version, '1');
    assert.equal(upload.body.state, 'LOADING');
    assert.equal(upload.body.sha256, await sha256OfFile(fixturePath('tiny-mlp.onnx')));

    let last: JsonBody;
    await waitUntil(
      async () => {
        last = (await call(gantry.baseUrl, 'GET', '/v1/models/async-model/versions/1')).body;
        return last?.state === 'READY';
      },
      10_000,
      'async-model v1 to become READY',
    );
    assert.deepEqual(last.inputs, [{ name: 'input', datatype: 'FP32', shape: [-1, 256] }]);
    assert.deepEqual(last.outputs, [{ name: 'output', datatype: 'FP32', shape: [-1, 16] }]);
    // Once READY it serves (the API's catalog may take a moment to follow the change).
    await waitUntil(
      async () =>
        (await inferJson(gantry.baseUrl, 'async-model', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 256], data: new Array(256).fill(0.5) }] }))
          .status === 200,
      5_000,
      'async-model to serve',
    );
  });
});
