/**
 * The comparison of a shadow's answer with the primary's (src/inference/shadow-comparison.ts): per datatype, the
 * tolerance for floats, exactness for integers and BYTES, NaN and infinities, and structural mismatches.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeBytesElements } from '../../src/protocol/bytes-elements.js';
import type { Datatype } from '../../src/protocol/datatypes.js';
import { toFloat16Bits } from '../../src/protocol/float16.js';
import type { Tensor } from '../../src/protocol/tensor.js';
import { compareOutputs } from '../../src/inference/shadow-comparison.js';

function tensor(datatype: Datatype, values: ArrayBufferView, shape = [1, (values as unknown as { length: number }).length], name = 'out'): Tensor {
  return { name, datatype, shape, data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
}

test('identical FP32 outputs: no mismatch, a max abs difference of 0', () => {
  const values = new Float32Array([1.5, -2, 3e10]);
  assert.deepEqual(compareOutputs([tensor('FP32', values)], [tensor('FP32', new Float32Array(values))]), { mismatchedOutputs: 0, maxAbsDifference: 0 });
});

test('FP32 within the tolerance (1e-5 absolute + 1e-5 relative) is no mismatch; past it is one', () => {
  const close = compareOutputs([tensor('FP32', new Float32Array([1000, 0]))], [tensor('FP32', new Float32Array([1000.0078125, 0.000005]))]);
  assert.equal(close.mismatchedOutputs, 0);
  assert.ok(close.maxAbsDifference! > 0.0078 && close.maxAbsDifference! < 0.0079);
  const far = compareOutputs([tensor('FP32', new Float32Array([1, 0]))], [tensor('FP32', new Float32Array([1, 0.001]))]);
  assert.equal(far.mismatchedOutputs, 1);
  assert.ok(Math.abs(far.maxAbsDifference! - 0.001) < 1e-9);
});

test('FP16 compares the half-precision values, not their bit patterns', () => {
  const primary = new Uint16Array([toFloat16Bits(1), toFloat16Bits(-2)]);
  const shadow = new Uint16Array([toFloat16Bits(1), toFloat16Bits(-2.5)]);
  assert.deepEqual(compareOutputs([tensor('FP16', primary)], [tensor('FP16', shadow)]), { mismatchedOutputs: 1, maxAbsDifference: 0.5 });
});

test('integers compare exactly, INT64 beyond 2^53 included', () => {
  const big = 2n ** 60n;
  const int64 = compareOutputs([tensor('INT64', new BigInt64Array([big, 5n]))], [tensor('INT64', new BigInt64Array([big + 1n, 5n]))]);
  assert.deepEqual(int64, { mismatchedOutputs: 1, maxAbsDifference: 1 });
  assert.deepEqual(compareOutputs([tensor('INT32', new Int32Array([7, -7]))], [tensor('INT32', new Int32Array([7, -7]))]), {
    mismatchedOutputs: 0,
    maxAbsDifference: 0,
  });
});

test('NaN agrees with NaN; NaN or infinity against a number is an infinite difference', () => {
  assert.equal(compareOutputs([tensor('FP32', new Float32Array([NaN, Infinity]))], [tensor('FP32', new Float32Array([NaN, Infinity]))]).mismatchedOutputs, 0);
  assert.deepEqual(compareOutputs([tensor('FP32', new Float32Array([NaN]))], [tensor('FP32', new Float32Array([0]))]), {
    mismatchedOutputs: 1,
    maxAbsDifference: Infinity,
  });
});

test('an infinity against a finite number is a mismatch, however large the tolerance around it', () => {
  assert.equal(compareOutputs([tensor('FP32', new Float32Array([Infinity]))], [tensor('FP32', new Float32Array([1e30]))]).mismatchedOutputs, 1);
});

test('BYTES compare exactly and add no difference', () => {
  const hello = writeBytesElements([Buffer.from('hello')]);
  const other = writeBytesElements([Buffer.from('hellp')]);
  const bytes = (data: Uint8Array): Tensor => ({ name: 'out', datatype: 'BYTES', shape: [1], data });
  assert.deepEqual(compareOutputs([bytes(hello)], [bytes(new Uint8Array(hello))]), { mismatchedOutputs: 0, maxAbsDifference: undefined });
  assert.deepEqual(compareOutputs([bytes(hello)], [bytes(other)]), { mismatchedOutputs: 1, maxAbsDifference: undefined });
});

test('another datatype, another shape or a missing output is a mismatch, counted per output', () => {
  const primary = [
    tensor('FP32', new Float32Array([1, 2]), [1, 2], 'a'),
    tensor('FP32', new Float32Array([1, 2]), [1, 2], 'b'),
    tensor('FP32', new Float32Array([3]), [1, 1], 'c'),
  ];
  const shadow = [tensor('FP64', new Float64Array([1, 2]), [1, 2], 'a'), tensor('FP32', new Float32Array([1, 2]), [2, 1], 'b')];
  assert.deepEqual(compareOutputs(primary, shadow), { mismatchedOutputs: 3, maxAbsDifference: undefined });
});
