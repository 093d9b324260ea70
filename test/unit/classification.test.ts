import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { classificationParameter, classify } from '../../src/protocol/classification.js';
import { decodeJsonData, encodeJsonData } from '../../src/protocol/json-tensor-codec.js';
import { ErrorCode, GantryError } from '../../src/errors.js';
import type { Datatype } from '../../src/protocol/datatypes.js';
import type { Tensor } from '../../src/protocol/tensor.js';

function tensor(datatype: Datatype, shape: number[], values: unknown[], name = 'scores'): Tensor {
  return { name, datatype, shape, data: decodeJsonData(name, datatype, shape, values) };
}

function strings(result: Tensor): unknown[] {
  assert.equal(result.datatype, 'BYTES');
  return encodeJsonData('BYTES', result.data);
}

function assertInvalid(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof GantryError, `expected GantryError, got ${String(error)}`);
    assert.equal(error.code, ErrorCode.InvalidArgument);
    assert.match(error.message, pattern);
    return true;
  });
}

describe('classify', () => {
  test('parameter name', () => {
    assert.equal(classificationParameter, 'classification');
  });

  test('spec example: FP32 [1.1, 3.3, 0.5, 2.4], top 2 (FP32 values print as their shortest float32 text)', () => {
    const result = classify(tensor('FP32', [4], [1.1, 3.3, 0.5, 2.4], 'output0'), 2);
    assert.equal(result.name, 'output0');
    assert.deepEqual(result.shape, [2]);
    assert.deepEqual(strings(result), ['3.3:1', '2.4:3']);
  });

  test('spec example with labels', () => {
    const labels = ['index_0_label', 'index_1_label', 'index_2_label', 'index_3_label'];
    assert.deepEqual(strings(classify(tensor('FP32', [4], [1.1, 3.3, 0.5, 2.4]), 2, labels)), ['3.3:1:index_1_label', '2.4:3:index_3_label']);
  });

  const batch = [0.1, 0.7, 0.05, 0.1, 0.05, 2, -1, 3.25, 0, 1e-7];

  test('[2,5] scores: every row separately', () => {
    const result = classify(tensor('FP32', [2, 5], batch), 3);
    assert.deepEqual(result.shape, [2, 3]);
    assert.deepEqual(strings(result), ['0.7:1', '0.1:0', '0.1:3', '3.25:2', '2:0', '1e-7:4']);
  });

  test('[2,5] scores with labels', () => {
    const labels = ['cat', 'dog', 'fox', 'owl', 'eel'];
    const result = classify(tensor('FP32', [2, 5], batch), 2, labels);
    assert.deepEqual(result.shape, [2, 2]);
    assert.deepEqual(strings(result), ['0.7:1:dog', '0.1:0:cat', '3.25:2:fox', '2:0:cat']);
  });

  test('labels shorter than the classes, or empty, are left out', () => {
    const result = classify(tensor('FP32', [4], [4, 3, 2, 1]), 4, ['a', '']);
    assert.deepEqual(strings(result), ['4:0:a', '3:1', '2:2', '1:3']);
  });

  test('ties: equal values keep the lower index first', () => {
    const result = classify(tensor('FP32', [6], [0.5, 0.9, 0.5, 0.9, 0.2, 0.5]), 6);
    assert.deepEqual(strings(result), ['0.9:1', '0.9:3', '0.5:0', '0.5:2', '0.5:5', '0.2:4']);
  });

  test('N > C returns all C classes', () => {
    const result = classify(tensor('INT32', [2, 3], [1, 3, 2, 9, 8, 7]), 10);
    assert.deepEqual(result.shape, [2, 3]);
    assert.deepEqual(strings(result), ['3:1', '2:2', '1:0', '9:0', '8:1', '7:2']);
  });

  test('higher-rank output: the last dimension is the classes', () => {
    const result = classify(tensor('INT8', [2, 2, 3], [1, 2, 3, 3, 2, 1, -5, -4, -6, 0, 0, 1]), 1);
    assert.deepEqual(result.shape, [2, 2, 1]);
    assert.deepEqual(strings(result), ['3:2', '3:0', '-4:1', '1:2']);
  });

  test('zero classes gives an empty last dimension', () => {
    const result = classify(tensor('FP32', [2, 0], []), 3);
    assert.deepEqual(result.shape, [2, 0]);
    assert.equal(result.data.byteLength, 0);
  });

  test('zero rows gives an empty result', () => {
    const result = classify(tensor('FP32', [0, 5], []), 3);
    assert.deepEqual(result.shape, [0, 3]);
    assert.equal(result.data.byteLength, 0);
  });

  test('FP16 values print as their shortest half-precision text', () => {
    const result = classify(tensor('FP16', [3], [0.1, 65504, -2.5]), 3);
    // 65504 (the largest half) prints as 65500: that text already reads back as the same half, as numpy's repr does.
    assert.deepEqual(strings(result), ['65500:1', '0.1:0', '-2.5:2']);
  });

  test('FP64 values print exactly', () => {
    const result = classify(tensor('FP64', [3], [0.1, Math.PI, 1e300]), 3);
    assert.deepEqual(strings(result), ['1e+300:2', '3.141592653589793:1', '0.1:0']);
  });

  test('FP32 keeps float32 distinctions', () => {
    // Adjacent float32 values need more digits to tell apart.
    const a = Math.fround(1.0000001);
    const result = classify(tensor('FP32', [2], [1, a]), 2);
    assert.deepEqual(strings(result), ['1.0000001:1', '1:0']);
  });

  test('infinities, NaN (ranked last) and negative values', () => {
    const values = [-1, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0];
    const data = new Uint8Array(new Float32Array(values).buffer);
    const result = classify({ name: 's', datatype: 'FP32', shape: [5], data }, 5);
    assert.deepEqual(strings(result), ['Infinity:2', '0:4', '-1:0', '-Infinity:3', 'NaN:1']);
  });

  test('64-bit integers compare and print exactly', () => {
    const result = classify(tensor('INT64', [3], ['9223372036854775807', '9223372036854775806', -3]), 3);
    assert.deepEqual(strings(result), ['9223372036854775807:0', '9223372036854775806:1', '-3:2']);
    const unsigned = classify(tensor('UINT64', [2], [1, '18446744073709551615']), 1);
    assert.deepEqual(strings(unsigned), ['18446744073709551615:1']);
  });

  for (const datatype of ['UINT8', 'UINT16', 'UINT32', 'INT16', 'INT32'] as const) {
    test(`${datatype} output`, () => {
      assert.deepEqual(strings(classify(tensor(datatype, [3], [5, 7, 6]), 2)), ['7:1', '6:2']);
    });
  }

  test('misaligned data is read correctly', () => {
    const backing = new Uint8Array(13);
    backing.set(new Uint8Array(new Float32Array([0.25, 0.75, 0.5]).buffer), 1);
    const result = classify({ name: 's', datatype: 'FP32', shape: [3], data: backing.subarray(1) }, 1);
    assert.deepEqual(strings(result), ['0.75:1']);
  });

  test('BYTES and BOOL outputs are refused', () => {
    assertInvalid(() => classify(tensor('BYTES', [2], ['a', 'b'], 'words'), 1), /Output 'words': classification needs a numeric output/);
    assertInvalid(() => classify(tensor('BOOL', [2], [true, false], 'flags'), 1), /Output 'flags': classification needs a numeric output/);
  });

  for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '2' as unknown as number]) {
    test(`topN ${JSON.stringify(bad)} is refused, naming the output`, () => {
      assertInvalid(() => classify(tensor('FP32', [2], [1, 2], 'probs'), bad), /Output 'probs': parameter 'classification' must be a positive integer/);
    });
  }

  test('a scalar output has no class dimension', () => {
    assertInvalid(() => classify(tensor('FP32', [], [1], 'one'), 1), /Output 'one': .*scalar/);
  });

  test('data that disagrees with the shape is an internal error', () => {
    const broken: Tensor = { name: 'b', datatype: 'FP32', shape: [3], data: new Uint8Array(8) };
    assert.throws(
      () => classify(broken, 1),
      (error: unknown) => error instanceof GantryError && error.code === ErrorCode.Internal,
    );
  });
});
