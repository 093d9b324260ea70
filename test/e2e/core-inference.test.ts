/**
 * The core path through a real gantry process (API + worker child, BullMQ on Redis): upload, metadata, and
 * inference whose answers are checked against onnxruntime-node run in this process.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { fixturePath, inferJson, startGantry, uploadModel, type GantryProcess } from '../helpers/gantry-process.js';
import { call, maxAbsDiff, ort, randomFloats, sha256OfFile } from './support.js';

describe('core inference path', () => {
  let gantry: GantryProcess;

  before(async () => {
    gantry = await startGantry();
  });
  after(async () => {
    await gantry?.cleanup();
  });

  test('uploading tiny-mlp.onnx answers 201 with the full version record; a second upload is version 2', async () => {
    const file = fixturePath('tiny-mlp.onnx');
    const first = await uploadModel(gantry.baseUrl, 'mlp', file);
    assert.equal(first.status, 201, JSON.stringify(first.body));
    const expectedSha = await sha256OfFile(file);
    assert.equal(first.body.name, 'mlp');
    assert.equal(first.body.version, '1');
    assert.equal(first.body.sha256, expectedSha);
    assert.match(first.body.sha256, /^[0-9a-f]{64}$/);
    assert.equal(first.body.size, statSync(file).size);
    assert.equal(first.body.state, 'READY');
    assert.equal(first.body.platform, 'onnx_onnxv1');
    assert.deepEqual(first.body.inputs, [{ name: 'input', datatype: 'FP32', shape: [-1, 256] }]);
    assert.deepEqual(first.body.outputs, [{ name: 'output', datatype: 'FP32', shape: [-1, 16] }]);
    assert.ok(!Number.isNaN(Date.parse(first.body.createdAt)), 'createdAt is a date');

    // The same bytes again make a version only when asked (otherwise version 1 answers: idempotent-uploads.test.ts).
    const second = await uploadModel(gantry.baseUrl, 'mlp', file, '?duplicate=true');
    assert.equal(second.status, 201, JSON.stringify(second.body));
    assert.equal(second.body.version, '2');
    assert.equal(second.body.state, 'READY');
    assert.equal(second.body.sha256, expectedSha);
  });

  test('tiny-mlp output matches in-process onnxruntime (max abs diff ≤ 1e-5); flat and nested data agree; id echoed', async () => {
    const batch = 3;
    const flat = randomFloats(11, batch * 256);
    const nested = [0, 1, 2].map((row) => flat.slice(row * 256, (row + 1) * 256));

    const session = await ort.InferenceSession.create(fixturePath('tiny-mlp.onnx'));
    const reference = await session.run({ input: new ort.Tensor('float32', Float32Array.from(flat), [batch, 256]) });
    const expected = reference.output!.data as Float32Array;
    assert.equal(expected.length, batch * 16);

    const flatReply = await inferJson(gantry.baseUrl, 'mlp', {
      id: 'request-42',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [batch, 256], data: flat }],
    });
    assert.equal(flatReply.status, 200, JSON.stringify(flatReply.body));
    assert.equal(flatReply.body.id, 'request-42');
    assert.equal(flatReply.body.model_name, 'mlp');
    assert.equal(flatReply.body.model_version, '2');
    assert.equal(flatReply.body.outputs.length, 1);
    const output = flatReply.body.outputs[0];
    assert.equal(output.name, 'output');
    assert.equal(output.datatype, 'FP32');
    assert.deepEqual(output.shape, [batch, 16]);
    const diff = maxAbsDiff(output.data, expected);
    assert.ok(diff <= 1e-5, `max abs diff ${diff}`);

    const nestedReply = await inferJson(gantry.baseUrl, 'mlp', {
      inputs: [{ name: 'input', datatype: 'FP32', shape: [batch, 256], data: nested }],
    });
    assert.equal(nestedReply.status, 200, JSON.stringify(nestedReply.body));
    assert.equal(nestedReply.body.id, undefined, 'no id sent, none echoed');
    assert.deepEqual(nestedReply.body.outputs, flatReply.body.outputs);
  });

  test('outputs selects outputs (multi-io: only "product")', async () => {
    const upload = await uploadModel(gantry.baseUrl, 'multi', fixturePath('multi-io.onnx'));
    assert.equal(upload.status, 201, JSON.stringify(upload.body));
    const a = [1, 2, 3, 4, 5, 6, 7, 8];
    const b = [0.5, -1, 2, 0, 3, 0.25, -2, 1];
    const inputs = [
      { name: 'a', datatype: 'FP32', shape: [2, 4], data: a },
      { name: 'b', datatype: 'FP32', shape: [2, 4], data: b },
    ];
    const only = await inferJson(gantry.baseUrl, 'multi', { inputs, outputs: [{ name: 'product' }] });
    assert.equal(only.status, 200, JSON.stringify(only.body));
    assert.deepEqual(
      only.body.outputs.map((output: { name: string }) => output.name),
      ['product'],
    );
    assert.deepEqual(only.body.outputs[0].shape, [2, 4]);
    assert.deepEqual(
      only.body.outputs[0].data,
      a.map((value, index) => value * b[index]!),
    );

    const all = await inferJson(gantry.baseUrl, 'multi', { inputs });
    assert.equal(all.status, 200, JSON.stringify(all.body));
    const byName = new Map(all.body.outputs.map((output: { name: string }) => [output.name, output]));
    assert.deepEqual([...byName.keys()].sort(), ['product', 'sum']);
    assert.deepEqual(
      (byName.get('sum') as { data: number[] }).data,
      a.map((value, index) => value + b[index]!),
    );
  });

  test('scalar.onnx: a shape [] input works and a scalar output comes back with shape []', async () => {
    const upload = await uploadModel(gantry.baseUrl, 'scalar', fixturePath('scalar.onnx'));
    assert.equal(upload.status, 201, JSON.stringify(upload.body));
    assert.deepEqual(upload.body.inputs, [
      { name: 'x', datatype: 'FP32', shape: [] },
      { name: 'y', datatype: 'FP32', shape: [3] },
    ]);
    const reply = await inferJson(gantry.baseUrl, 'scalar', {
      inputs: [
        { name: 'x', datatype: 'FP32', shape: [], data: [2.5] },
        { name: 'y', datatype: 'FP32', shape: [3], data: [1, -2, 4] },
      ],
    });
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    const byName = new Map<string, { shape: number[]; data: number[]; datatype: string }>(
      reply.body.outputs.map((output: { name: string }) => [output.name, output]),
    );
    assert.deepEqual(byName.get('doubled')?.shape, []);
    assert.deepEqual(byName.get('doubled')?.data, [5]);
    assert.equal(byName.get('doubled')?.datatype, 'FP32');
    assert.deepEqual(byName.get('scaled')?.shape, [3]);
    assert.deepEqual(byName.get('scaled')?.data, [2.5, -5, 10]);
  });

  const identityCases: { file: string; datatype: string; data: unknown[] }[] = [
    { file: 'double', datatype: 'FP64', data: [1 / 3, -1e300, 5e-324, Math.PI, -0.1, 123456789.12345679] },
    { file: 'int8', datatype: 'INT8', data: [-128, 127, 0, -1, 42, 7] },
    { file: 'int16', datatype: 'INT16', data: [-32768, 32767, 0, -1, 1234, -4321] },
    { file: 'int32', datatype: 'INT32', data: [-2147483648, 2147483647, 0, -1, 65536, -99999] },
    { file: 'int64', datatype: 'INT64', data: [2 ** 53 - 1, -(2 ** 53 - 1), 0, -1, 2 ** 40, 4294967296] },
    { file: 'uint8', datatype: 'UINT8', data: [0, 255, 1, 128, 42, 7] },
    { file: 'uint16', datatype: 'UINT16', data: [0, 65535, 1, 32768, 4242, 7] },
    { file: 'uint32', datatype: 'UINT32', data: [0, 4294967295, 1, 2147483648, 123456, 7] },
    { file: 'uint64', datatype: 'UINT64', data: [0, 2 ** 53 - 1, 1, 2 ** 32, 2 ** 52 + 3, 7] },
    { file: 'bool', datatype: 'BOOL', data: [true, false, false, true, true, false] },
  ];
  for (const { file, datatype, data } of identityCases) {
    test(`identity-${file}.onnx round-trips ${datatype} exactly`, async () => {
      const name = `identity-${file}`;
      const upload = await uploadModel(gantry.baseUrl, name, fixturePath(`identity-${file}.onnx`));
      assert.equal(upload.status, 201, JSON.stringify(upload.body));
      assert.deepEqual(upload.body.inputs, [{ name: 'input', datatype, shape: [-1, -1] }]);
      const reply = await inferJson(gantry.baseUrl, name, { inputs: [{ name: 'input', datatype, shape: [2, 3], data }] });
      assert.equal(reply.status, 200, JSON.stringify(reply.body));
      assert.equal(reply.body.outputs.length, 1);
      const output = reply.body.outputs[0];
      assert.equal(output.name, 'output');
      assert.equal(output.datatype, datatype);
      assert.deepEqual(output.shape, [2, 3]);
      assert.deepEqual(output.data, data);
    });
  }

  test('without a version the newest READY version serves; /versions/1/ serves version 1', async () => {
    const v1 = await uploadModel(gantry.baseUrl, 'switch', fixturePath('tiny-mlp.onnx'));
    assert.equal(v1.status, 201, JSON.stringify(v1.body));
    const v2 = await uploadModel(gantry.baseUrl, 'switch', fixturePath('fixed-batch.onnx'));
    assert.equal(v2.status, 201, JSON.stringify(v2.body));
    assert.equal(v2.body.version, '2');

    // Version 2 (fixed-batch: output = input * 2, shape [1,4]) serves by default.
    const newest = await inferJson(gantry.baseUrl, 'switch', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] });
    assert.equal(newest.status, 200, JSON.stringify(newest.body));
    assert.equal(newest.body.model_version, '2');
    assert.deepEqual(newest.body.outputs[0].data, [2, 4, 6, 8]);
    // …and version 1 (tiny-mlp, [.., 256] in, [.., 16] out) when named.
    const input = randomFloats(5, 256);
    const old = await inferJson(gantry.baseUrl, 'switch', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 256], data: input }] }, '1');
    assert.equal(old.status, 200, JSON.stringify(old.body));
    assert.equal(old.body.model_version, '1');
    assert.deepEqual(old.body.outputs[0].shape, [1, 16]);
    // The default version refuses tiny-mlp's input shape: proof that it is really version 2 answering.
    const wrong = await inferJson(gantry.baseUrl, 'switch', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 256], data: input }] });
    assert.equal(wrong.status, 400, JSON.stringify(wrong.body));

    const metadataDefault = await call(gantry.baseUrl, 'GET', '/v2/models/switch');
    assert.deepEqual(metadataDefault.body.inputs, [{ name: 'input', datatype: 'FP32', shape: [1, 4] }]);
    const metadataV1 = await call(gantry.baseUrl, 'GET', '/v2/models/switch/versions/1');
    assert.deepEqual(metadataV1.body.inputs, [{ name: 'input', datatype: 'FP32', shape: [-1, 256] }]);
  });

  test('server metadata, liveness and readiness', async () => {
    const server = await call(gantry.baseUrl, 'GET', '/v2');
    assert.equal(server.status, 200);
    assert.equal(server.body.name, 'gantry');
    assert.equal(typeof server.body.version, 'string');
    assert.ok(server.body.version.length > 0);
    assert.ok(Array.isArray(server.body.extensions));

    const live = await call(gantry.baseUrl, 'GET', '/v2/health/live');
    assert.equal(live.status, 200);
    assert.equal(live.body.live, true);

    const ready = await call(gantry.baseUrl, 'GET', '/v2/health/ready');
    assert.equal(ready.status, 200);
    assert.equal(ready.body.ready, true);
  });

  test('model metadata and model readiness', async () => {
    const model = await call(gantry.baseUrl, 'GET', '/v2/models/mlp');
    assert.equal(model.status, 200, JSON.stringify(model.body));
    assert.deepEqual(model.body, {
      name: 'mlp',
      versions: ['1', '2'],
      platform: 'onnx_onnxv1',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 256] }],
      outputs: [{ name: 'output', datatype: 'FP32', shape: [-1, 16] }],
    });
    const version = await call(gantry.baseUrl, 'GET', '/v2/models/multi/versions/1');
    assert.equal(version.status, 200, JSON.stringify(version.body));
    assert.equal(version.body.name, 'multi');
    assert.equal(version.body.platform, 'onnx_onnxv1');
    assert.deepEqual(version.body.inputs, [
      { name: 'a', datatype: 'FP32', shape: [-1, 4] },
      { name: 'b', datatype: 'FP32', shape: [-1, 4] },
    ]);
    assert.deepEqual(version.body.outputs.map((output: { name: string }) => output.name).sort(), ['product', 'sum']);

    const ready = await call(gantry.baseUrl, 'GET', '/v2/models/mlp/ready');
    assert.equal(ready.status, 200);
    assert.deepEqual(ready.body, { name: 'mlp', ready: true });
    const versionReady = await call(gantry.baseUrl, 'GET', '/v2/models/mlp/versions/1/ready');
    assert.equal(versionReady.status, 200);
    assert.deepEqual(versionReady.body, { name: 'mlp', ready: true });
    const unknownReady = await call(gantry.baseUrl, 'GET', '/v2/models/no-such-model/ready');
    assert.equal(unknownReady.status, 404);
    const unknownVersionReady = await call(gantry.baseUrl, 'GET', '/v2/models/mlp/versions/9/ready');
    assert.equal(unknownVersionReady.status, 404);
  });
});
