/**
 * The try-it form's tensor helpers (console/src/tensors/), bundled for Node with esbuild as the console build
 * bundles them for the browser: the .npy reader over files laid out per the NumPy format, image layouts, shapes.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import * as esbuild from 'esbuild';
import { repositoryRoot } from '../../helpers/gantry-process.js';

interface InputTensor {
  datatype: string;
  shape: number[];
  data: Array<number | boolean | string>;
}
interface Tensors {
  readNpy: (buffer: ArrayBuffer) => InputTensor;
  imageLayout: (input: {
    name: string;
    datatype: string;
    shape: number[];
  }) => { channelsFirst: boolean; batched: boolean; channels: number; height: number; width: number } | undefined;
  parseShape: (text: string) => number[];
  flatten: (value: unknown) => unknown[];
  concreteShape: (shape: number[]) => number[];
}

let tensors: Tensors;

before(async () => {
  const entry = "export * from './npy'; export * from './image-tensor'; export * from './tensor';";
  const result = await esbuild.build({
    stdin: { contents: entry, resolveDir: path.join(repositoryRoot, 'console/src/tensors'), loader: 'ts' },
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'neutral',
  });
  tensors = (await import(`data:text/javascript;base64,${Buffer.from(result.outputFiles[0]!.text).toString('base64')}`)) as Tensors;
});

/** A .npy file: the magic, version, header length, the header dict padded to 64 bytes, then `body`. */
function npy(descr: string, shape: string, body: Buffer, options: { major?: number; fortran?: boolean } = {}): ArrayBuffer {
  const major = options.major ?? 1;
  const preambleLength = major === 1 ? 10 : 12;
  let header = `{'descr': '${descr}', 'fortran_order': ${options.fortran === true ? 'True' : 'False'}, 'shape': ${shape}, }`;
  header += ' '.repeat(63 - ((preambleLength + header.length) % 64)) + '\n';
  const length = Buffer.alloc(major === 1 ? 2 : 4);
  if (major === 1) length.writeUInt16LE(header.length);
  else length.writeUInt32LE(header.length);
  const file = Buffer.concat([Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]), length, Buffer.from(header, 'latin1'), body]);
  return file.buffer.slice(file.byteOffset, file.byteOffset + file.byteLength);
}

test('.npy: every numeric dtype and bool, little-endian, versions 1 and 2, scalars and vectors', () => {
  assert.deepEqual(tensors.readNpy(npy('<f4', '(2, 2)', Buffer.from(Float32Array.from([1.5, -2, 0.25, 3]).buffer))), {
    datatype: 'FP32',
    shape: [2, 2],
    data: [1.5, -2, 0.25, 3],
  });
  assert.deepEqual(tensors.readNpy(npy('<f8', '(3,)', Buffer.from(Float64Array.from([0.1, 0.2, 0.3]).buffer), { major: 2 })).data, [0.1, 0.2, 0.3]);
  assert.deepEqual(tensors.readNpy(npy('<i8', '(2,)', Buffer.from(BigInt64Array.from([-5n, 7n]).buffer))), { datatype: 'INT64', shape: [2], data: [-5, 7] });
  assert.deepEqual(tensors.readNpy(npy('|u1', '(3,)', Buffer.from([0, 128, 255]))).data, [0, 128, 255]);
  assert.deepEqual(tensors.readNpy(npy('|i1', '(2,)', Buffer.from([0xff, 0x01]))).data, [-1, 1]);
  assert.deepEqual(tensors.readNpy(npy('<u2', '(1,)', Buffer.from([0x34, 0x12]))).data, [0x1234]);
  assert.deepEqual(tensors.readNpy(npy('|b1', '(3,)', Buffer.from([1, 0, 1]))), { datatype: 'BOOL', shape: [3], data: [true, false, true] });
  // FP16: 1.0 (0x3c00), -2.0 (0xc000), 0.5 (0x3800).
  assert.deepEqual(tensors.readNpy(npy('<f2', '(3,)', Buffer.from([0x00, 0x3c, 0x00, 0xc0, 0x00, 0x38]))).data, [1, -2, 0.5]);
  assert.deepEqual(tensors.readNpy(npy('<f4', '()', Buffer.from(Float32Array.from([4]).buffer))), { datatype: 'FP32', shape: [], data: [4] });
});

test('.npy: what cannot be read is refused with a message saying why', () => {
  const four = Buffer.from(Float32Array.from([1, 2, 3, 4]).buffer);
  assert.throws(() => tensors.readNpy(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]).buffer), /Not a NumPy \.npy file/);
  assert.throws(() => tensors.readNpy(npy('<f4', '(2, 2)', four, { fortran: true })), /Fortran order/);
  assert.throws(() => tensors.readNpy(npy('>f4', '(4,)', four)), /big-endian/);
  assert.throws(() => tensors.readNpy(npy('|O', '(4,)', four)), /dtype \|O/);
  assert.throws(() => tensors.readNpy(npy('<f4', '(2, 4)', four)), /shorter than its shape \[2, 4\]/);
});

test('image layouts: NCHW, NHWC, CHW, HWC with 1 or 3 channels; anything else is no image', () => {
  const layout = (shape: number[]) => tensors.imageLayout({ name: 'x', datatype: 'FP32', shape });
  assert.deepEqual(layout([-1, 3, 224, 224]), { channelsFirst: true, batched: true, channels: 3, height: 224, width: 224 });
  assert.deepEqual(layout([1, 64, 32, 3]), { channelsFirst: false, batched: true, channels: 3, height: 64, width: 32 });
  assert.deepEqual(layout([1, 28, 28]), { channelsFirst: true, batched: false, channels: 1, height: 28, width: 28 });
  assert.deepEqual(layout([-1, -1, 1]), { channelsFirst: false, batched: false, channels: 1, height: -1, width: -1 });
  assert.equal(layout([-1, 256]), undefined);
  assert.equal(layout([1, 4, 8, 8]), undefined);
});

test('shapes and data: variable dimensions start at 1, shapes parse loosely, nested data is flattened row-major', () => {
  assert.deepEqual(tensors.concreteShape([-1, 256]), [1, 256]);
  assert.deepEqual(tensors.parseShape('1, 256'), [1, 256]);
  assert.deepEqual(tensors.parseShape('[2,3]'), [2, 3]);
  assert.deepEqual(tensors.parseShape(''), []);
  assert.throws(() => tensors.parseShape('1, -1'), /whole numbers/);
  assert.throws(() => tensors.parseShape('a'), /whole numbers/);
  assert.deepEqual(
    tensors.flatten([
      [1, 2],
      [3, [4]],
    ]),
    [1, 2, 3, 4],
  );
  assert.deepEqual(tensors.flatten(5), [5]);
});
