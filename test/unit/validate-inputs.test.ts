import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { maxElementsPerTensor, resolveRequestedOutputs, validateInputs } from '../../src/protocol/validate-inputs.js';
import { ErrorCode, GantryError } from '../../src/errors.js';
import type { ModelSignature } from '../../src/protocol/signature.js';
import type { TensorDescriptor } from '../../src/protocol/tensor.js';

const signature: ModelSignature = {
  inputs: [
    { name: 'image', datatype: 'FP32', shape: [-1, 3, 4] },
    { name: 'mask', datatype: 'BOOL', shape: [-1, -1] },
  ],
  outputs: [
    { name: 'scores', datatype: 'FP32', shape: [-1, 10] },
    { name: 'labels', datatype: 'INT64', shape: [-1] },
  ],
};

const scalarSignature: ModelSignature = {
  inputs: [
    { name: 'x', datatype: 'FP32', shape: [] },
    { name: 'y', datatype: 'FP32', shape: [3] },
  ],
  outputs: [{ name: 'scaled', datatype: 'FP32', shape: [3] }],
};

function good(): TensorDescriptor[] {
  return [
    { name: 'image', datatype: 'FP32', shape: [2, 3, 4] },
    { name: 'mask', datatype: 'BOOL', shape: [5, 7] },
  ];
}

function assertInvalid(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof GantryError, `expected GantryError, got ${String(error)}`);
    assert.equal(error.code, ErrorCode.InvalidArgument);
    for (const pattern of patterns) assert.match(error.message, pattern);
    return true;
  });
}

describe('validateInputs', () => {
  test('accepts valid inputs in any order', () => {
    validateInputs(signature, good());
    validateInputs(signature, good().reverse());
  });

  test('unknown input is named, with the expected ones', () => {
    assertInvalid(() => validateInputs(signature, [...good(), { name: 'extra', datatype: 'FP32', shape: [1] }]), /'extra'/, /'image'/, /'mask'/);
  });

  test('missing input is named', () => {
    assertInvalid(() => validateInputs(signature, [good()[0]!]), /Missing input 'mask'/);
    assertInvalid(() => validateInputs(signature, []), /Missing input 'image'/);
  });

  test('duplicate input', () => {
    assertInvalid(() => validateInputs(signature, [...good(), good()[0]!]), /'image'/, /more than once/);
  });

  test('datatype mismatch', () => {
    const inputs = good();
    inputs[0] = { ...inputs[0]!, datatype: 'FP64' };
    assertInvalid(() => validateInputs(signature, inputs), /'image'/, /FP32/, /FP64/);
  });

  test('wrong rank', () => {
    const inputs = good();
    inputs[0] = { ...inputs[0]!, shape: [2, 12] };
    assertInvalid(() => validateInputs(signature, inputs), /'image'/, /rank 3/);
    inputs[0] = { ...inputs[0]!, shape: [1, 2, 3, 4] };
    assertInvalid(() => validateInputs(signature, inputs), /'image'/, /rank/);
  });

  test('fixed dimension mismatch', () => {
    const inputs = good();
    inputs[0] = { ...inputs[0]!, shape: [2, 4, 3] };
    assertInvalid(() => validateInputs(signature, inputs), /'image'/, /dimension 1 must be 3/);
  });

  test('negative and non-integer dimensions', () => {
    for (const bad of [
      [-1, 3, 4],
      [2.5, 3, 4],
      [NaN, 3, 4],
      [Infinity, 3, 4],
      [2 ** 60, 3, 4],
    ]) {
      const inputs = good();
      inputs[0] = { ...inputs[0]!, shape: bad };
      assertInvalid(() => validateInputs(signature, inputs), /'image'/, /invalid dimension/);
    }
  });

  test('element count over 2^31-1 is refused, exactly at the limit is allowed', () => {
    assert.equal(maxElementsPerTensor, 2 ** 31 - 1);
    const inputs = good();
    inputs[1] = { name: 'mask', datatype: 'BOOL', shape: [65536, 32768] }; // 2^31
    assertInvalid(() => validateInputs(signature, inputs), /'mask'/, /2147483647/);
    inputs[1] = { name: 'mask', datatype: 'BOOL', shape: [1, 2 ** 31 - 1] };
    validateInputs(signature, inputs);
  });

  test('element count is checked even when the rank is wrong (product overflow)', () => {
    const inputs = good();
    inputs[1] = { name: 'mask', datatype: 'BOOL', shape: [2 ** 20, 2 ** 20, 2 ** 20] };
    assertInvalid(() => validateInputs(signature, inputs), /'mask'/);
  });

  test('dynamic dimensions accept any size, including 0', () => {
    for (const [batch, rows, cols] of [
      [0, 0, 0],
      [1, 1, 1],
      [1000, 1, 99999],
    ]) {
      validateInputs(signature, [
        { name: 'image', datatype: 'FP32', shape: [batch!, 3, 4] },
        { name: 'mask', datatype: 'BOOL', shape: [rows!, cols!] },
      ]);
    }
  });

  test('scalar [] spec accepts [] and refuses [1]', () => {
    validateInputs(scalarSignature, [
      { name: 'x', datatype: 'FP32', shape: [] },
      { name: 'y', datatype: 'FP32', shape: [3] },
    ]);
    assertInvalid(
      () =>
        validateInputs(scalarSignature, [
          { name: 'x', datatype: 'FP32', shape: [1] },
          { name: 'y', datatype: 'FP32', shape: [3] },
        ]),
      /'x'/,
      /rank 0/,
    );
    assertInvalid(
      () =>
        validateInputs(scalarSignature, [
          { name: 'x', datatype: 'FP32', shape: [] },
          { name: 'y', datatype: 'FP32', shape: [4] },
        ]),
      /'y'/,
    );
  });
});

describe('resolveRequestedOutputs', () => {
  test('none requested → all declared outputs in order', () => {
    assert.deepEqual(resolveRequestedOutputs(signature, undefined), ['scores', 'labels']);
    assert.deepEqual(resolveRequestedOutputs(signature, []), ['scores', 'labels']);
  });

  test('a subset is returned in the requested order', () => {
    assert.deepEqual(resolveRequestedOutputs(signature, ['labels']), ['labels']);
    assert.deepEqual(resolveRequestedOutputs(signature, ['labels', 'scores']), ['labels', 'scores']);
  });

  test('unknown output is named', () => {
    assertInvalid(() => resolveRequestedOutputs(signature, ['scores', 'nope']), /'nope'/, /'scores'/, /'labels'/);
  });

  test('duplicates are removed', () => {
    assert.deepEqual(resolveRequestedOutputs(signature, ['scores', 'scores', 'labels', 'scores']), ['scores', 'labels']);
  });
});
