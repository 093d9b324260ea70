/**
 * The pure tensor helpers behind dynamic batching (src/worker/batch-tensors.ts, and canBatch of src/registry/batching-support.ts): which signatures may batch, which
 * requests may share a batch, and stacking/cutting tensors along dimension 0 without changing a byte.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { canBatch } from '../../src/registry/batching-support.js';
import { batchCompatibilityKey, batchRows, concatenateInputs, splitOutput } from '../../src/worker/batch-tensors.js';
import { readBytesElements, writeBytesElements } from '../../src/protocol/bytes-elements.js';
import type { ModelSignature } from '../../src/protocol/signature.js';
import type { Tensor } from '../../src/protocol/tensor.js';

function fp32(name: string, shape: number[], values: number[]): Tensor {
  const data = new Uint8Array(Float32Array.from(values).buffer);
  return { name, datatype: 'FP32', shape, data };
}

function floatsOf(tensor: Tensor): number[] {
  return Array.from(new Float32Array(tensor.data.slice().buffer));
}

function strings(name: string, shape: number[], values: string[]): Tensor {
  return { name, datatype: 'BYTES', shape, data: writeBytesElements(values.map((value) => new TextEncoder().encode(value))) };
}

function stringsOf(tensor: Tensor): string[] {
  return readBytesElements(tensor.data).map((element) => new TextDecoder().decode(element));
}

describe('canBatch', () => {
  test('every input and output with a dynamic leading dimension: batchable', () => {
    const signature: ModelSignature = {
      inputs: [
        { name: 'a', datatype: 'FP32', shape: [-1, 4] },
        { name: 'b', datatype: 'INT64', shape: [-1, -1, 3] },
      ],
      outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 16] }],
    };
    assert.equal(canBatch(signature), true);
  });

  test('a scalar input (rank 0) is not batchable', () => {
    const signature: ModelSignature = {
      inputs: [
        { name: 'x', datatype: 'FP32', shape: [] },
        { name: 'y', datatype: 'FP32', shape: [-1, 3] },
      ],
      outputs: [{ name: 'scaled', datatype: 'FP32', shape: [-1, 3] }],
    };
    assert.equal(canBatch(signature), false);
  });

  test('a scalar output is not batchable', () => {
    const signature: ModelSignature = {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3] }],
      outputs: [{ name: 'total', datatype: 'FP32', shape: [] }],
    };
    assert.equal(canBatch(signature), false);
  });

  test('a fixed batch size ([1, 4]) is not batchable', () => {
    const signature: ModelSignature = {
      inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4] }],
      outputs: [{ name: 'output', datatype: 'FP32', shape: [1, 4] }],
    };
    assert.equal(canBatch(signature), false);
  });

  test('a fixed output leading dimension alone is enough to refuse', () => {
    const signature: ModelSignature = {
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 4] }],
      outputs: [{ name: 'output', datatype: 'FP32', shape: [1, 4] }],
    };
    assert.equal(canBatch(signature), false);
  });

  test('state batched on axis 1 ([2, batch, 8], like Silero VAD) is not batchable', () => {
    const signature: ModelSignature = {
      inputs: [
        { name: 'x', datatype: 'FP32', shape: [-1, 8] },
        { name: 'state', datatype: 'FP32', shape: [2, -1, 8] },
      ],
      outputs: [
        { name: 'y', datatype: 'FP32', shape: [-1, 8] },
        { name: 'stateN', datatype: 'FP32', shape: [2, -1, 8] },
      ],
    };
    assert.equal(canBatch(signature), false);
  });
});

describe('batchCompatibilityKey', () => {
  const row = (width: number, rows = 1) => fp32('input', [rows, width], new Array<number>(rows * width).fill(0));

  test('equal for requests differing only in the batch dimension', () => {
    assert.equal(batchCompatibilityKey([row(4, 1)], ['output']), batchCompatibilityKey([row(4, 3)], ['output']));
  });

  test('differs for different trailing shapes', () => {
    assert.notEqual(batchCompatibilityKey([row(3)], ['output']), batchCompatibilityKey([row(5)], ['output']));
    const rank3 = fp32('input', [1, 2, 2], [0, 0, 0, 0]);
    assert.notEqual(batchCompatibilityKey([row(4)], ['output']), batchCompatibilityKey([rank3], ['output']));
  });

  test('differs for different requested outputs', () => {
    const inputs = [fp32('a', [1, 4], [1, 2, 3, 4]), fp32('b', [1, 4], [1, 2, 3, 4])];
    const keys = new Set([
      batchCompatibilityKey(inputs, ['sum']),
      batchCompatibilityKey(inputs, ['product']),
      batchCompatibilityKey(inputs, ['sum', 'product']),
    ]);
    assert.equal(keys.size, 3);
  });

  test('differs for different datatypes', () => {
    const float = fp32('input', [1, 2], [1, 2]);
    const int: Tensor = { name: 'input', datatype: 'INT32', shape: [1, 2], data: new Uint8Array(8) };
    assert.notEqual(batchCompatibilityKey([float], ['output']), batchCompatibilityKey([int], ['output']));
  });

  test('does not depend on the order the inputs were sent in', () => {
    const a = fp32('a', [1, 4], [1, 2, 3, 4]);
    const b = fp32('b', [2, 4], [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.equal(batchCompatibilityKey([a, b], ['sum']), batchCompatibilityKey([b, a], ['sum']));
  });

  test("batchRows is the first input's leading dimension", () => {
    assert.equal(batchRows([row(4, 3)]), 3);
  });
});

describe('concatenateInputs and splitOutput', () => {
  const rows = [1, 3, 2];

  test("FP32 round trip with uneven rows [1, 3, 2] keeps every byte and every request's rows", () => {
    const width = 3;
    let counter = 0;
    const requests = rows.map((count) => [
      fp32(
        'input',
        [count, width],
        Array.from({ length: count * width }, () => counter++ * 1.25 - 7.5),
      ),
    ]);
    const [stacked] = concatenateInputs(requests);
    assert.ok(stacked !== undefined);
    assert.deepEqual(stacked.shape, [6, width]);
    assert.equal(stacked.datatype, 'FP32');
    assert.deepEqual(
      floatsOf(stacked),
      Array.from({ length: 18 }, (_, index) => index * 1.25 - 7.5),
    );

    const pieces = splitOutput({ ...stacked, name: 'output' }, rows);
    assert.ok(pieces !== undefined);
    assert.equal(pieces.length, 3);
    pieces.forEach((piece, index) => {
      assert.equal(piece.name, 'output');
      assert.deepEqual(piece.shape, [rows[index], width]);
      assert.deepEqual(Buffer.from(piece.data), Buffer.from(requests[index]![0]!.data));
    });
  });

  test('several inputs are stacked by name even when requests list them in different orders', () => {
    const first = [fp32('a', [1, 2], [1, 2]), fp32('b', [1, 2], [10, 20])];
    const second = [fp32('b', [2, 2], [30, 40, 50, 60]), fp32('a', [2, 2], [3, 4, 5, 6])];
    const stacked = concatenateInputs([first, second]);
    const a = stacked.find((tensor) => tensor.name === 'a')!;
    const b = stacked.find((tensor) => tensor.name === 'b')!;
    assert.deepEqual(a.shape, [3, 2]);
    assert.deepEqual(floatsOf(a), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(floatsOf(b), [10, 20, 30, 40, 50, 60]);
  });

  test('BYTES round trip with variable-length strings and uneven rows [1, 3, 2]', () => {
    const width = 2;
    const values = [
      ['', 'a'],
      ['héllo', 'wörld', 'x'.repeat(300), '', '🙂', 'tab\there'],
      ['last', 'one\u0000with nul', 'z', 'zz'],
    ];
    const requests = rows.map((count, index) => [strings('input', [count, width], values[index]!)]);
    const [stacked] = concatenateInputs(requests);
    assert.ok(stacked !== undefined);
    assert.deepEqual(stacked.shape, [6, width]);
    assert.deepEqual(stringsOf(stacked), values.flat());

    const pieces = splitOutput({ ...stacked, name: 'output' }, rows);
    assert.ok(pieces !== undefined);
    pieces.forEach((piece, index) => {
      assert.equal(piece.datatype, 'BYTES');
      assert.deepEqual(piece.shape, [rows[index], width]);
      assert.deepEqual(stringsOf(piece), values[index]);
      assert.deepEqual(Buffer.from(piece.data), Buffer.from(requests[index]![0]!.data));
    });
  });

  test('rank-1 tensors (one element per row) round trip too', () => {
    const requests = rows.map((count, index) => [
      fp32(
        'input',
        [count],
        Array.from({ length: count }, (_, element) => index * 10 + element),
      ),
    ]);
    const [stacked] = concatenateInputs(requests);
    assert.deepEqual(stacked!.shape, [6]);
    const pieces = splitOutput(stacked!, rows)!;
    assert.deepEqual(pieces.map(floatsOf), [[0], [10, 11, 12], [20, 21]]);
  });

  test('splitOutput returns undefined when dimension 0 is not the total rows', () => {
    const output = fp32('output', [5, 2], new Array<number>(10).fill(1));
    assert.equal(splitOutput(output, rows), undefined);
    const bigger = fp32('output', [7, 2], new Array<number>(14).fill(1));
    assert.equal(splitOutput(bigger, rows), undefined);
    const bytes = strings('output', [2, 2], ['a', 'b', 'c', 'd']);
    assert.equal(splitOutput(bytes, rows), undefined);
    const scalar = fp32('output', [], [1]);
    assert.equal(splitOutput(scalar, rows), undefined);
  });
});
