/**
 * The CLI's input readers and output printing: JSON inputs (src/cli/json-input.ts), PNG images laid out per the
 * declared input (src/cli/png-input.ts), `--input` arguments (src/cli/input-arguments.ts) and how outputs print
 * (src/cli/tensor-text.ts).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { PNG } from 'pngjs';
import { InputFileError } from '../../src/cli/input-file-error.js';
import { parseInputArgument, toClientInput } from '../../src/cli/input-arguments.js';
import { readJsonInput, shapeOfNested } from '../../src/cli/json-input.js';
import { planImage, readPngInput } from '../../src/cli/png-input.js';
import { formatOutput, formatValues } from '../../src/cli/tensor-text.js';
import { UsageError } from '../../src/cli/usage-error.js';
import { fromFloat16Bits } from '../../src/protocol/float16.js';

describe('JSON inputs', () => {
  test('nested arrays: the shape from the nesting, the datatype from the model', () => {
    const tensor = readJsonInput('x', '[[1, 2, 3], [4, 5, 6]]', 'INT32');
    assert.equal(tensor.datatype, 'INT32');
    assert.deepEqual(tensor.shape, [2, 3]);
    assert.deepEqual([...new Int32Array(tensor.data.buffer, tensor.data.byteOffset, 6)], [1, 2, 3, 4, 5, 6]);
    assert.equal(readJsonInput('x', '[[0.5]]').datatype, 'FP32', 'numbers default to FP32 when the model says nothing');
    assert.equal(readJsonInput('x', '[true, false]').datatype, 'BOOL');
    assert.deepEqual(readJsonInput('x', '2.5').shape, [], 'a bare number is a scalar');
  });

  test('the object form: data with shape and datatype; exact 64-bit integers as strings', () => {
    const tensor = readJsonInput('ids', '{"data": [1, "9007199254740993"], "shape": [1, 2], "datatype": "INT64"}', 'FP32');
    assert.equal(tensor.datatype, 'INT64', "the file's datatype wins over the model's");
    assert.deepEqual([...new BigInt64Array(tensor.data.buffer, 0, 2)], [1n, 9007199254740993n]);
    const flat = readJsonInput('x', '{"data": [1, 2, 3, 4], "shape": [2, 2]}', 'FP64');
    assert.deepEqual(flat.shape, [2, 2], 'flat data with a shape');
    const words = readJsonInput('text', '{"data": ["héllo", "world"]}');
    assert.equal(words.datatype, 'BYTES');
    assert.deepEqual(toClientInput(words), { data: ['héllo', 'world'], shape: [2], datatype: 'BYTES' });
  });

  test('refuses what the server would refuse, saying what is wrong', () => {
    assert.throws(
      () => readJsonInput('x', '[[1, 2], [3]]'),
      (error: Error) => error instanceof InputFileError && /not rectangular: data\[1\] has 1 elements where the first has 2/.test(error.message),
    );
    assert.throws(() => readJsonInput('x', '[[1, 2], 3]'), /not rectangular/);
    assert.throws(() => readJsonInput('x', '[300]', 'UINT8'), /element 0 is 300, expected an integer from 0 to 255/);
    assert.throws(() => readJsonInput('x', '{"data": [1, 2, 3], "shape": [2, 2]}'), /shape \[2,2\] needs 4 elements but data has 3/);
    assert.throws(() => readJsonInput('x', '{"values": [1]}'), /needs a "data" field/);
    assert.throws(() => readJsonInput('x', '{"data": [1], "datatype": "FLOAT"}'), /"datatype" "FLOAT" is not an OIP datatype/);
    assert.throws(() => readJsonInput('x', '{"data": [1], "shape": [-1]}'), /"shape" must be an array of non-negative integers/);
    assert.throws(() => readJsonInput('x', '[1, 2'), /It is not JSON/);
    assert.deepEqual(shapeOfNested([[[]]]), [1, 1, 0]);
  });
});

/** A PNG of `width`×`height` whose pixel i is (i, 2i, 3i, 255 - i) mod 256. */
function testPng(width: number, height: number): Buffer {
  const png = new PNG({ width, height });
  for (let pixel = 0; pixel < width * height; pixel++) png.data.set([pixel % 256, (2 * pixel) % 256, (3 * pixel) % 256, 255 - (pixel % 256)], pixel * 4);
  return PNG.sync.write(png);
}

describe('PNG inputs', () => {
  const image = testPng(4, 2);

  test('NCHW float32 for a [1,3,H,W] input: channel planes, values 0..1', () => {
    const plan = planImage({ name: 'image', datatype: 'FP32', shape: [1, 3, 2, 4] });
    assert.deepEqual({ layout: plan.layout, channels: plan.channels, batchAxis: plan.batchAxis }, { layout: 'nchw', channels: 3, batchAxis: true });
    const tensor = readPngInput('image', image, plan);
    assert.deepEqual(tensor.shape, [1, 3, 2, 4]);
    const values = new Float32Array(tensor.data.buffer, 0, 24);
    // Pixel 5 (row 1, column 1): red 5, green 10, blue 15.
    assert.ok(Math.abs(values[5]! - 5 / 255) < 1e-7);
    assert.ok(Math.abs(values[8 + 5]! - 10 / 255) < 1e-7);
    assert.ok(Math.abs(values[16 + 5]! - 15 / 255) < 1e-7);
  });

  test('NHWC uint8 for a [1,H,W,3] input: interleaved RGB, values 0..255', () => {
    const tensor = readPngInput('image', image, planImage({ name: 'image', datatype: 'UINT8', shape: [-1, -1, -1, 3] }));
    assert.deepEqual(tensor.shape, [1, 2, 4, 3]);
    assert.deepEqual([...tensor.data.subarray(5 * 3, 5 * 3 + 3)], [5, 10, 15]);
  });

  test('RGBA, grey [H,W], no batch axis, FP16, and the defaults when the shape does not tell', () => {
    const rgba = readPngInput('image', image, planImage({ name: 'image', datatype: 'UINT8', shape: [2, 4, 4] }));
    assert.deepEqual(rgba.shape, [2, 4, 4], 'HWC without a batch axis, 4 channels');
    assert.deepEqual([...rgba.data.subarray(4, 8)], [1, 2, 3, 254]);
    const grey = readPngInput('image', image, planImage({ name: 'image', datatype: 'UINT8', shape: [-1, -1] }));
    assert.deepEqual(grey.shape, [2, 4]);
    assert.equal(grey.data[5], Math.round(0.299 * 5 + 0.587 * 10 + 0.114 * 15));
    const half = readPngInput('image', image, planImage({ name: 'image', datatype: 'FP16', shape: [1, 3, -1, -1] }));
    assert.ok(Math.abs(fromFloat16Bits(new Uint16Array(half.data.buffer, 0, 24)[1]!) - 1 / 255) < 1e-3);
    assert.equal(planImage({ name: 'x', datatype: 'FP32', shape: [-1, -1, -1, -1] }).layout, 'nchw', 'dynamic float: NCHW');
    assert.equal(planImage({ name: 'x', datatype: 'UINT8', shape: [-1, -1, -1, -1] }).layout, 'nhwc', 'dynamic uint8: NHWC');
    assert.equal(planImage({ name: 'x', datatype: 'FP32', shape: [-1, -1, -1, -1] }, 'nhwc').layout, 'nhwc', '--image-layout decides');
    assert.deepEqual(readPngInput('x', image, planImage(undefined)).shape, [1, 2, 4, 3], 'no signature: UINT8 NHWC RGB');
  });

  test('refuses an image of another size, inputs an image cannot fill, and bytes that are not a PNG', () => {
    assert.throws(
      () => readPngInput('image', image, planImage({ name: 'image', datatype: 'FP32', shape: [1, 3, 224, 224] })),
      /The image is 4×2 \(width×height\) but input 'image' takes 224×224: resize it first/,
    );
    assert.throws(() => planImage({ name: 'ids', datatype: 'INT64', shape: [1, 3, 2, 4] }), /Input 'ids' is INT64: an image fills UINT8/);
    assert.throws(() => planImage({ name: 'v', datatype: 'FP32', shape: [1, 2, 3, 4, 5] }), /shape \[1,2,3,4,5\]: an image fills/);
    assert.throws(() => planImage({ name: 'v', datatype: 'FP32', shape: [1, 2, 8, 8] }, 'nchw'), /2 channels in NCHW layout/);
    assert.throws(() => readPngInput('image', Buffer.from('not a png at all'), planImage(undefined)), /not a readable PNG/);
  });
});

describe('--input arguments', () => {
  test('the extension chooses the reader; no @ means inline JSON', () => {
    assert.deepEqual(parseInputArgument('input=@data/x.npy'), { name: 'input', source: { kind: 'npy', file: 'data/x.npy' } });
    assert.deepEqual(parseInputArgument('image=@cat.PNG'), { name: 'image', source: { kind: 'png', file: 'cat.PNG' } });
    assert.deepEqual(parseInputArgument('x=@a=b.json'), { name: 'x', source: { kind: 'json', file: 'a=b.json' } });
    assert.deepEqual(parseInputArgument('x=[[1,2]]'), { name: 'x', source: { kind: 'inline', text: '[[1,2]]' } });
    assert.throws(
      () => parseInputArgument('x=@data.csv'),
      (error: Error) => error instanceof UsageError && /must end in \.npy, \.json or \.png/.test(error.message),
    );
    assert.throws(() => parseInputArgument('@x.npy'), /--input takes name=@file\.npy/);
  });
});

describe('printing outputs', () => {
  test('nested as the shape says, floats with 6 significant digits', () => {
    assert.equal(formatValues(new Float32Array([0.1, 2, 3.5, 4]), [2, 2]), '[[0.1, 2],\n [3.5, 4]]');
    assert.equal(formatValues(new BigInt64Array([2n ** 62n]), []), '4611686018427387904');
    assert.equal(formatValues(['a', 'b'], [2]), '["a", "b"]');
    assert.equal(formatValues([true, false], [1, 2]), '[[true, false]]');
    assert.equal(
      formatOutput({ name: 'out', datatype: 'FP64', shape: [3], data: new Float64Array([1 / 3, 2, 1e-9]) }),
      'out  FP64  [3]\n[0.333333, 2, 1e-9]\n',
    );
    assert.equal(formatValues(new Float32Array([]), [0, 4]), '[]');
  });

  test('past 1000 values each axis shows its first and last three entries', () => {
    const values = Float32Array.from({ length: 2 * 1000 }, (_, index) => index);
    assert.equal(formatValues(values, [2, 1000]), '[[0, 1, 2, ..., 997, 998, 999],\n [1000, 1001, 1002, ..., 1997, 1998, 1999]]');
    const cube = formatValues(
      Float32Array.from({ length: 10 * 10 * 11 }, (_, index) => index),
      [10, 10, 11],
    );
    assert.equal(
      cube.split('\n').filter((line) => line.trim() === '...,' || line.trim() === '...').length,
      1 + 6,
      'one elided block on axis 0, one per shown block on axis 1',
    );
    assert.ok(cube.length < 2000, 'a summary stays short');
  });
});
