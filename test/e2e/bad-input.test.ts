/**
 * Hostile and malformed input: garbage model files, bad model names, bad multipart uploads and bad tensors.
 * Each must be refused with the documented status and code, leave nothing behind, and leave both the API and
 * the worker alive.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fixturePath, inferJson, startGantry, uploadModel, withAdminKey, type GantryProcess } from '../helpers/gantry-process.js';
import { assertError, blobDirectory, call, listDirectory, randomFloats, temporaryBlobDirectory, waitUntil } from './support.js';

describe('bad input', () => {
  let gantry: GantryProcess;

  before(async () => {
    gantry = await startGantry();
    const mlp = await uploadModel(gantry.baseUrl, 'mlp', fixturePath('tiny-mlp.onnx'));
    assert.equal(mlp.status, 201, JSON.stringify(mlp.body));
    const multi = await uploadModel(gantry.baseUrl, 'multi', fixturePath('multi-io.onnx'));
    assert.equal(multi.status, 201, JSON.stringify(multi.body));
  });
  after(async () => {
    await gantry?.cleanup();
  });

  const goodInference = async () => {
    const reply = await inferJson(gantry.baseUrl, 'mlp', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 256], data: randomFloats(1, 256) }] });
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    assert.deepEqual(reply.body.outputs[0].shape, [1, 16]);
  };

  for (const file of ['random-bytes.onnx', 'truncated.onnx', 'empty.onnx']) {
    test(`${file} is refused with 422 INVALID_MODEL and leaves nothing behind`, async () => {
      const name = `garbage-${file.replace('.onnx', '')}`;
      const blobsBefore = await listDirectory(blobDirectory(gantry.dataDirectory));
      assert.ok(blobsBefore.length > 0, 'the good models are stored');

      const reply = await uploadModel(gantry.baseUrl, name, fixturePath(file));
      assertError({ ...reply, headers: new Headers() }, 422, 'INVALID_MODEL', /not a loadable ONNX model: \S.{3,}/);

      assertError(await call(gantry.baseUrl, 'GET', `/v1/models/${name}`), 404, 'NOT_FOUND');
      assertError(await call(gantry.baseUrl, 'GET', `/v1/models/${name}/versions/1`), 404, 'NOT_FOUND');
      const list = await call(gantry.baseUrl, 'GET', '/v1/models');
      assert.equal(list.status, 200);
      assert.ok(!list.body.models.some((model: { name: string }) => model.name === name), `${name} is not listed`);
      assert.ok(
        list.body.models.some((model: { name: string }) => model.name === 'mlp'),
        'the good model is still listed',
      );

      // A refused upload's file goes at the garbage collection's next pass (it has no grace period: nobody used it).
      await waitUntil(
        async () => JSON.stringify(await listDirectory(blobDirectory(gantry.dataDirectory))) === JSON.stringify(blobsBefore),
        5000,
        'no new blob file',
      );
      assert.deepEqual(await listDirectory(temporaryBlobDirectory(gantry.dataDirectory)), [], 'blobs/tmp is empty');

      const workerReady = await fetch(`${gantry.workerUrl}/ready`);
      assert.equal(workerReady.status, 200, 'the worker is still ready');
      await goodInference();
    });
  }

  for (const name of ['bad name', '../etc', '-x', 'a'.repeat(200)]) {
    test(`invalid model name ${JSON.stringify(name.length > 20 ? `${name.slice(0, 10)}…(${name.length})` : name)} → 400`, async () => {
      const reply = await uploadModel(gantry.baseUrl, name, fixturePath('tiny-mlp.onnx'));
      assertError({ ...reply, headers: new Headers() }, 400, 'INVALID_ARGUMENT', /Invalid model name/);
    });
  }

  test('multipart upload with field "file" works; another field name → 400', async () => {
    const bytes = await readFile(fixturePath('tiny-mlp.onnx'));
    const good = new FormData();
    good.append('file', new Blob([bytes], { type: 'application/octet-stream' }), 'tiny-mlp.onnx');
    const goodResponse = await fetch(`${gantry.baseUrl}/v1/models/multipart-model/versions`, { method: 'POST', headers: withAdminKey(), body: good });
    const goodBody = (await goodResponse.json()) as { name: string; version: string; state: string; size: number };
    assert.equal(goodResponse.status, 201, JSON.stringify(goodBody));
    assert.equal(goodBody.name, 'multipart-model');
    assert.equal(goodBody.state, 'READY');
    assert.equal(goodBody.size, bytes.byteLength);

    const bad = new FormData();
    bad.append('model', new Blob([bytes], { type: 'application/octet-stream' }), 'tiny-mlp.onnx');
    const badResponse = await fetch(`${gantry.baseUrl}/v1/models/multipart-bad/versions`, { method: 'POST', headers: withAdminKey(), body: bad });
    const badBody = await badResponse.json();
    assertError({ status: badResponse.status, body: badBody, headers: badResponse.headers }, 400, 'INVALID_ARGUMENT', /'file'/);
    assertError(await call(gantry.baseUrl, 'GET', '/v1/models/multipart-bad'), 404, 'NOT_FOUND');
    assert.deepEqual(await listDirectory(temporaryBlobDirectory(gantry.dataDirectory)), [], 'blobs/tmp is empty');
  });

  const row = randomFloats(2, 256);
  const tensorCases: { what: string; model: string; request: unknown; message: RegExp }[] = [
    {
      what: 'unknown input',
      model: 'mlp',
      request: {
        inputs: [
          { name: 'input', datatype: 'FP32', shape: [1, 256], data: row },
          { name: 'extra', datatype: 'FP32', shape: [1], data: [1] },
        ],
      },
      message: /'extra'/,
    },
    {
      what: 'missing input',
      model: 'multi',
      request: { inputs: [{ name: 'a', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] },
      message: /Missing input 'b'/,
    },
    {
      what: 'datatype mismatch',
      model: 'mlp',
      request: { inputs: [{ name: 'input', datatype: 'FP64', shape: [1, 256], data: row }] },
      message: /'input'.*FP32/,
    },
    {
      what: 'wrong rank',
      model: 'mlp',
      request: { inputs: [{ name: 'input', datatype: 'FP32', shape: [256], data: row }] },
      message: /'input'.*rank/,
    },
    {
      what: 'wrong fixed dimension',
      model: 'mlp',
      request: { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 255], data: row.slice(0, 255) }] },
      message: /'input'.*256/,
    },
    {
      what: 'data length ≠ product(shape)',
      model: 'mlp',
      request: { inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 256], data: row }] },
      message: /'input'.*512.*256/,
    },
    {
      what: 'string element in FP32',
      model: 'mlp',
      request: { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 256], data: [...row.slice(0, 255), 'oops'] }] },
      message: /'input'.*element 255/,
    },
    {
      what: 'unsupported datatype string',
      model: 'mlp',
      request: { inputs: [{ name: 'input', datatype: 'FLOAT32', shape: [1, 256], data: row }] },
      message: /'input'.*FLOAT32/,
    },
    {
      what: 'unknown requested output',
      model: 'multi',
      request: {
        inputs: [
          { name: 'a', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] },
          { name: 'b', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] },
        ],
        outputs: [{ name: 'quotient' }],
      },
      message: /'quotient'/,
    },
  ];
  for (const { what, model, request, message } of tensorCases) {
    test(`bad tensor: ${what} → 400 INVALID_ARGUMENT naming it`, async () => {
      const reply = await inferJson(gantry.baseUrl, model, request);
      assertError({ ...reply, headers: new Headers() }, 400, 'INVALID_ARGUMENT', message);
    });
  }

  test('unknown model → 404, unknown version or alias → 404, invalid version → 400', async () => {
    const request = { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 256], data: row }] };
    const unknownModel = await inferJson(gantry.baseUrl, 'no-such-model', request);
    assertError({ ...unknownModel, headers: new Headers() }, 404, 'NOT_FOUND', /no-such-model/);
    const unknownVersion = await inferJson(gantry.baseUrl, 'mlp', request, '99');
    assertError({ ...unknownVersion, headers: new Headers() }, 404, 'NOT_FOUND', /'99'/);
    // `abc` could be an alias (none is set): not found; `ABC` can be neither a version nor an alias name.
    const unknownAlias = await inferJson(gantry.baseUrl, 'mlp', request, 'abc');
    assertError({ ...unknownAlias, headers: new Headers() }, 404, 'NOT_FOUND', /'abc'/);
    const invalidVersion = await inferJson(gantry.baseUrl, 'mlp', request, 'ABC');
    assertError({ ...invalidVersion, headers: new Headers() }, 400, 'INVALID_ARGUMENT', /ABC/);
    assertError(await call(gantry.baseUrl, 'GET', '/v2/models/no-such-model'), 404, 'NOT_FOUND');
    assertError(await call(gantry.baseUrl, 'GET', '/v2/models/mlp/versions/99'), 404, 'NOT_FOUND');
    assertError(await call(gantry.baseUrl, 'GET', '/v2/models/mlp/versions/abc'), 404, 'NOT_FOUND');
    assertError(await call(gantry.baseUrl, 'GET', '/v2/models/mlp/versions/ABC'), 400, 'INVALID_ARGUMENT');
  });

  test('after all of it the API and the worker are alive and serving', async () => {
    assert.equal(gantry.child.exitCode, null, 'the gantry process is still running');
    assert.equal(gantry.child.signalCode, null);
    const ready = await call(gantry.baseUrl, 'GET', '/v2/health/ready');
    assert.equal(ready.status, 200);
    assert.equal(ready.body.ready, true);
    assert.equal((await fetch(`${gantry.workerUrl}/ready`)).status, 200);
    await goodInference();
  });
});
