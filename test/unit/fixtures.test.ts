/**
 * Proves the generated ONNX fixtures are what test/fixtures/README.md says:
 * onnxruntime-node loads every valid one with the documented signature and
 * computes the documented function, and refuses (or, for absurd-dims, exposes)
 * the hostile ones.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';

import {
  CLASSIFIER_LABELS,
  FIXTURE_NAMES,
  IDENTITY_TYPES,
  INVALID_MODEL_NAMES,
  SAMPLE_NAMES,
  TINY_MLP_SIZES,
  VALID_MODEL_NAMES,
  buildFixtureBytes,
  buildFixtures,
  classifierWeights,
  findRepoRoot,
  slowWeights,
  tinyMlpWeights,
  type IdentityTypeName,
} from '../fixtures/build-fixtures.js';
import { uniformFloats } from '../../support/onnx-builder.js';
import { mulberry32 } from '../../support/prng.js';

type Signature = readonly { name: string; type: ort.Tensor.Type; shape: readonly (number | string)[] }[];

/** The documented signatures, written out by hand so the builder is checked, not echoed. */
const EXPECTED_SIGNATURES: Record<string, { inputs: Signature; outputs: Signature }> = {
  'tiny-mlp.onnx': {
    inputs: [{ name: 'input', type: 'float32', shape: ['batch', 256] }],
    outputs: [{ name: 'output', type: 'float32', shape: ['batch', 16] }],
  },
  'multi-io.onnx': {
    inputs: [
      { name: 'a', type: 'float32', shape: ['batch', 4] },
      { name: 'b', type: 'float32', shape: ['batch', 4] },
    ],
    outputs: [
      { name: 'sum', type: 'float32', shape: ['batch', 4] },
      { name: 'product', type: 'float32', shape: ['batch', 4] },
    ],
  },
  'scalar.onnx': {
    inputs: [
      { name: 'x', type: 'float32', shape: [] },
      { name: 'y', type: 'float32', shape: [3] },
    ],
    outputs: [
      { name: 'scaled', type: 'float32', shape: [3] },
      { name: 'doubled', type: 'float32', shape: [] },
    ],
  },
  'fixed-batch.onnx': {
    inputs: [{ name: 'input', type: 'float32', shape: [1, 4] }],
    outputs: [{ name: 'output', type: 'float32', shape: [1, 4] }],
  },
  'slow.onnx': {
    inputs: [
      { name: 'iterations', type: 'int64', shape: [] },
      { name: 'x', type: 'float32', shape: [1, 256] },
    ],
    outputs: [{ name: 'y', type: 'float32', shape: [1, 256] }],
  },
  'forever.onnx': {
    inputs: [{ name: 'x', type: 'float32', shape: [1, 4] }],
    outputs: [{ name: 'y', type: 'float32', shape: [1, 4] }],
  },
  'two-batch-axes.onnx': {
    inputs: [
      { name: 'x', type: 'float32', shape: ['batch', 8] },
      { name: 'state', type: 'float32', shape: [2, 'batch', 8] },
    ],
    outputs: [
      { name: 'y', type: 'float32', shape: ['batch', 8] },
      { name: 'stateN', type: 'float32', shape: [2, 'batch', 8] },
    ],
  },
  'labelled-classifier.onnx': {
    inputs: [{ name: 'input', type: 'float32', shape: ['batch', 4] }],
    outputs: [{ name: 'scores', type: 'float32', shape: ['batch', 5] }],
  },
  'amplifier.onnx': {
    inputs: [{ name: 'shape', type: 'int64', shape: [2] }],
    outputs: [{ name: 'output', type: 'float32', shape: ['rows', 'columns'] }],
  },
};
for (const [typeName, { ortType }] of Object.entries(IDENTITY_TYPES)) {
  EXPECTED_SIGNATURES[`identity-${typeName}.onnx`] = {
    inputs: [{ name: 'input', type: ortType, shape: ['batch', 'width'] }],
    outputs: [{ name: 'output', type: ortType, shape: ['batch', 'width'] }],
  };
}

// ---------------------------------------------------------------------------
// Plain-JS helpers
// ---------------------------------------------------------------------------

function floatTensor(values: Float32Array, dims: readonly number[]): ort.Tensor {
  return new ort.Tensor('float32', values, dims);
}

function floatData(tensor: ort.Tensor | undefined): Float32Array {
  assert.ok(tensor, 'missing output tensor');
  assert.equal(tensor.type, 'float32');
  return tensor.data as Float32Array;
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number, label: string): void {
  assert.equal(actual.length, expected.length, `${label}: length`);
  for (let index = 0; index < expected.length; index++) {
    const difference = Math.abs((actual[index] ?? NaN) - (expected[index] ?? NaN));
    assert.ok(difference <= tolerance, `${label}[${index}]: ${actual[index]} vs ${expected[index]} (diff ${difference})`);
  }
}

/** Row-major [rows, inner] x [inner, columns] in float64. */
function matMul(left: ArrayLike<number>, right: ArrayLike<number>, rows: number, inner: number, columns: number): Float64Array {
  const result = new Float64Array(rows * columns);
  for (let row = 0; row < rows; row++) {
    for (let column = 0; column < columns; column++) {
      let sum = 0;
      for (let k = 0; k < inner; k++) sum += (left[row * inner + k] ?? NaN) * (right[k * columns + column] ?? NaN);
      result[row * columns + column] = sum;
    }
  }
  return result;
}

/** A [2, 3] input tensor for each identity type, with values that exercise the type's range. */
function identityInput(typeName: IdentityTypeName): ort.Tensor {
  const dims = [2, 3];
  switch (typeName) {
    case 'bool':
      return new ort.Tensor('bool', new Uint8Array([1, 0, 1, 1, 0, 0]), dims);
    case 'uint8':
      return new ort.Tensor('uint8', new Uint8Array([0, 1, 2, 127, 128, 255]), dims);
    case 'uint16':
      return new ort.Tensor('uint16', new Uint16Array([0, 1, 2, 32767, 32768, 65535]), dims);
    case 'uint32':
      return new ort.Tensor('uint32', new Uint32Array([0, 1, 2, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1]), dims);
    case 'uint64':
      return new ort.Tensor('uint64', new BigUint64Array([0n, 1n, 2n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n]), dims);
    case 'int8':
      return new ort.Tensor('int8', new Int8Array([-128, -1, 0, 1, 2, 127]), dims);
    case 'int16':
      return new ort.Tensor('int16', new Int16Array([-32768, -1, 0, 1, 2, 32767]), dims);
    case 'int32':
      return new ort.Tensor('int32', new Int32Array([-(2 ** 31), -1, 0, 1, 2, 2 ** 31 - 1]), dims);
    case 'int64':
      return new ort.Tensor('int64', new BigInt64Array([-(2n ** 63n), -1n, 0n, 2n ** 53n + 1n, 2n, 2n ** 63n - 1n]), dims);
    case 'float16':
      // Node 20 has no Float16Array, so ORT takes (and returns) float16 as raw
      // IEEE half bits in a Uint16Array: 0, 1.0, -2.0, 65504 (max), +Inf, NaN.
      return new ort.Tensor('float16', new Uint16Array([0x0000, 0x3c00, 0xc000, 0x7bff, 0x7c00, 0x7e00]), dims);
    case 'float':
      return new ort.Tensor('float32', new Float32Array([0, 1.5, -2.25, 3.4e38, -1e-38, Math.fround(Math.PI)]), dims);
    case 'double':
      return new ort.Tensor('float64', new Float64Array([0, 1.5, -2.25, Number.MAX_VALUE, Number.MIN_VALUE, Math.PI]), dims);
    case 'string':
      return new ort.Tensor('string', ['', 'a', 'hello world', 'ünïcödé', '🙂', 'x'.repeat(1000)], dims);
  }
}

/** Bit-exact view of tensor data: float16 may come back as Float16Array where the runtime has one. */
function comparableData(tensor: ort.Tensor): unknown[] {
  if (tensor.type === 'float16') {
    const data = tensor.data as unknown as { buffer: ArrayBufferLike; byteOffset: number; length: number };
    return [...new Uint16Array(data.buffer, data.byteOffset, data.length)];
  }
  return Array.from(tensor.data as ArrayLike<unknown>);
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

test('fixtures', async (t) => {
  const outDir = await mkdtemp(path.join(os.tmpdir(), 'gantry-fixtures-'));
  t.after(() => rm(outDir, { recursive: true, force: true }));

  await buildFixtures(outDir);
  const sessions: ort.InferenceSession[] = [];
  t.after(async () => {
    for (const session of sessions) await session.release();
  });

  async function load(fileName: string): Promise<ort.InferenceSession> {
    const session = await ort.InferenceSession.create(path.join(outDir, fileName));
    sessions.push(session);
    return session;
  }

  await t.test('writes exactly FIXTURE_NAMES, idempotently and deterministically', async () => {
    const before = await Promise.all(FIXTURE_NAMES.map((name) => readFile(path.join(outDir, name))));
    await buildFixtures(outDir);
    const after = await Promise.all(FIXTURE_NAMES.map((name) => readFile(path.join(outDir, name))));
    assert.deepEqual((await readdir(outDir)).sort(), [...FIXTURE_NAMES].sort());
    FIXTURE_NAMES.forEach((name, index) => assert.ok(before[index]?.equals(after[index] ?? Buffer.alloc(0)), name));
    assert.deepEqual(buildFixtureBytes('tiny-mlp.onnx'), buildFixtureBytes('tiny-mlp.onnx'));
  });

  await t.test('committed samples in models/ match the builder', async () => {
    const repoRoot = findRepoRoot(import.meta.url);
    for (const name of SAMPLE_NAMES) {
      const samplePath = path.join(repoRoot, 'models', name);
      assert.ok(existsSync(samplePath), `${samplePath} missing: run build-fixtures.js --samples`);
      const sample = await readFile(samplePath);
      assert.ok(sample.equals(buildFixtureBytes(name)), `${name} differs from the builder: run build-fixtures.js --samples`);
    }
  });

  await t.test('every valid model has the documented signature', async () => {
    assert.deepEqual([...VALID_MODEL_NAMES].sort(), Object.keys(EXPECTED_SIGNATURES).sort());
    for (const name of VALID_MODEL_NAMES) {
      const session = await load(name);
      const expected = EXPECTED_SIGNATURES[name];
      assert.ok(expected, name);
      assert.deepEqual(
        session.inputNames,
        expected.inputs.map((value) => value.name),
        `${name} inputNames`,
      );
      assert.deepEqual(
        session.outputNames,
        expected.outputs.map((value) => value.name),
        `${name} outputNames`,
      );
      const describe = (metadata: readonly ort.InferenceSession.ValueMetadata[]) =>
        metadata.map((value) => {
          assert.ok(value.isTensor, `${name} ${value.name} is a tensor`);
          return { name: value.name, type: value.type, shape: [...value.shape] };
        });
      assert.deepEqual(describe(session.inputMetadata), expected.inputs, `${name} inputMetadata`);
      assert.deepEqual(describe(session.outputMetadata), expected.outputs, `${name} outputMetadata`);
    }
  });

  await t.test('tiny-mlp matches a plain-JS reference of the seeded weights', async () => {
    const session = await load('tiny-mlp.onnx');
    const { input: inputSize, hidden: hiddenSize, output: outputSize } = TINY_MLP_SIZES;
    const batch = 3;
    const input = uniformFloats(mulberry32(100), batch * inputSize, 1);
    const result = await session.run({ input: floatTensor(input, [batch, inputSize]) });
    assert.deepEqual(result.output?.dims, [batch, outputSize]);

    const weights = tinyMlpWeights();
    const hidden = matMul(input, weights.w1, batch, inputSize, hiddenSize).map((value, index) => Math.max(0, value + (weights.b1[index % hiddenSize] ?? NaN)));
    const expected = matMul(hidden, weights.w2, batch, hiddenSize, outputSize).map((value, index) => value + (weights.b2[index % outputSize] ?? NaN));
    assertClose(floatData(result.output), expected, 1e-5, 'tiny-mlp output');
  });

  await t.test('multi-io returns a + b and a * b', async () => {
    const session = await load('multi-io.onnx');
    const a = new Float32Array([1, 2, 3, 4, -1, -2, -3, -4]);
    const b = new Float32Array([0.5, 0.25, 10, -1, 2, 3, 4, 5]);
    const result = await session.run({ a: floatTensor(a, [2, 4]), b: floatTensor(b, [2, 4]) });
    assert.deepEqual(
      [...floatData(result.sum)],
      [...a].map((value, index) => value + (b[index] ?? NaN)),
    );
    assert.deepEqual(
      [...floatData(result.product)],
      [...a].map((value, index) => value * (b[index] ?? NaN)),
    );
    assert.deepEqual(result.sum?.dims, [2, 4]);
    assert.deepEqual(result.product?.dims, [2, 4]);
  });

  await t.test('scalar takes and returns rank-0 tensors', async () => {
    const session = await load('scalar.onnx');
    const result = await session.run({
      x: floatTensor(new Float32Array([3]), []),
      y: floatTensor(new Float32Array([1, -2, 0.5]), [3]),
    });
    assert.deepEqual([...floatData(result.scaled)], [3, -6, 1.5]);
    assert.deepEqual(result.scaled?.dims, [3]);
    assert.deepEqual([...floatData(result.doubled)], [6]);
    assert.deepEqual(result.doubled?.dims, []);
  });

  for (const typeName of Object.keys(IDENTITY_TYPES) as IdentityTypeName[]) {
    await t.test(`identity-${typeName} returns its input exactly`, async () => {
      const session = await load(`identity-${typeName}.onnx`);
      const input = identityInput(typeName);
      const result = await session.run({ input });
      const output = result.output;
      assert.ok(output);
      assert.equal(output.type, IDENTITY_TYPES[typeName].ortType);
      assert.deepEqual(output.dims, [2, 3]);
      assert.deepEqual(comparableData(output), comparableData(input));
    });
  }

  await t.test('fixed-batch doubles a [1, 4] input and rejects other batch sizes', async () => {
    const session = await load('fixed-batch.onnx');
    const result = await session.run({ input: floatTensor(new Float32Array([1, 2, -3, 0.5]), [1, 4]) });
    assert.deepEqual([...floatData(result.output)], [2, 4, -6, 1]);
    await assert.rejects(session.run({ input: floatTensor(new Float32Array(8), [2, 4]) }), /invalid dimensions/i);
  });

  await t.test('slow loops Tanh(x W) `iterations` times', async () => {
    const session = await load('slow.onnx');
    const x = uniformFloats(mulberry32(101), 256, 1);
    const run = (iterations: bigint) => session.run({ iterations: new ort.Tensor('int64', new BigInt64Array([iterations]), []), x: floatTensor(x, [1, 256]) });

    assert.deepEqual([...floatData((await run(0n)).y)], [...x], 'zero iterations return x');

    const weights = slowWeights();
    let expected: ArrayLike<number> = x;
    for (let iteration = 0; iteration < 3; iteration++) expected = matMul(expected, weights, 1, 256, 256).map(Math.tanh);
    assertClose(floatData((await run(3n)).y), expected, 1e-5, 'slow after 3 iterations');

    // The loop really runs `iterations` times (tests assert behaviour; how long it takes is in the README).
    const fourIterations = floatData((await run(4n)).y);
    assert.notDeepEqual([...fourIterations], [...floatData((await run(3n)).y)], 'each iteration changes y');
  });

  await t.test('two-batch-axes: y = x + sum(state, axis 0), stateN = 2 * state', async () => {
    const session = await load('two-batch-axes.onnx');
    const batch = 3;
    const x = uniformFloats(mulberry32(102), batch * 8, 1);
    const state = uniformFloats(mulberry32(103), 2 * batch * 8, 1);
    const result = await session.run({ x: floatTensor(x, [batch, 8]), state: floatTensor(state, [2, batch, 8]) });
    const half = batch * 8;
    const expectedY = [...x].map((value, index) => value + (state[index] ?? NaN) + (state[half + index] ?? NaN));
    assertClose(floatData(result.y), expectedY, 1e-6, 'two-batch-axes y');
    assert.deepEqual(
      [...floatData(result.stateN)],
      [...state].map((value) => value * 2),
    );
    assert.deepEqual(result.y?.dims, [batch, 8]);
    assert.deepEqual(result.stateN?.dims, [2, batch, 8]);
  });

  await t.test('labelled-classifier returns softmax scores over its 5 labels', async () => {
    const session = await load('labelled-classifier.onnx');
    const input = new Float32Array([1, 0, 0, 0, 0.5, -1, 2, 0.25]);
    const result = await session.run({ input: floatTensor(input, [2, 4]) });
    const logits = matMul(input, classifierWeights(), 2, 4, 5);
    const expected: number[] = [];
    for (let row = 0; row < 2; row++) {
      const exponentials = [...logits.subarray(row * 5, row * 5 + 5)].map(Math.exp);
      const total = exponentials.reduce((sum, value) => sum + value, 0);
      expected.push(...exponentials.map((value) => value / total));
    }
    assertClose(floatData(result.scores), expected, 1e-6, 'labelled-classifier scores');
    const labels = await readFile(path.join(outDir, 'labelled-classifier.labels.txt'), 'utf8');
    assert.deepEqual(labels.trimEnd().split('\n'), [...CLASSIFIER_LABELS]);
    assert.deepEqual([...CLASSIFIER_LABELS], ['cat', 'dog', 'bird', 'fish', 'horse']);
  });

  await t.test('ORT refuses the broken and hostile models', async () => {
    assert.deepEqual([...INVALID_MODEL_NAMES].sort(), ['absurd-dims.onnx', 'empty.onnx', 'external-data-escape.onnx', 'random-bytes.onnx', 'truncated.onnx']);
    const bytesOf = (name: string) => readFile(path.join(outDir, name));
    assert.equal((await bytesOf('random-bytes.onnx')).length, 4096);
    assert.equal((await bytesOf('empty.onnx')).length, 0);
    assert.ok((await bytesOf('tiny-mlp.onnx')).subarray(0, 10).equals((await bytesOf('truncated.onnx')).subarray(0, 10)));

    await assert.rejects(ort.InferenceSession.create(await bytesOf('random-bytes.onnx')), /protobuf parsing failed/);
    await assert.rejects(ort.InferenceSession.create(await bytesOf('truncated.onnx')), /protobuf parsing failed/);
    await assert.rejects(ort.InferenceSession.create(await bytesOf('empty.onnx')));
    await assert.rejects(ort.InferenceSession.create(await bytesOf('external-data-escape.onnx')), /External data path .*escapes/);
    await assert.rejects(ort.InferenceSession.create(path.join(outDir, 'external-data-escape.onnx')), /escapes model directory/);
  });

  await t.test('absurd-dims loads in ORT: a gateway must reject it from the metadata itself', async () => {
    const session = await load('absurd-dims.onnx');
    const [input] = session.inputMetadata;
    assert.ok(input?.isTensor);
    assert.deepEqual(input.shape, [2147483647, 2147483647]);
  });
});
