/**
 * The .npy reader and writer (src/cli/npy.ts) against bytes built here by hand, as the NumPy format document
 * describes them (numpy.lib.format): magic "\x93NUMPY", major and minor version bytes, a little-endian header
 * length (uint16 for 1.0, uint32 for 2.0 and 3.0), the header dict padded with spaces and ended by '\n' so the data
 * starts on a 64-byte boundary, then the data in C order.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { NpyFormatError, readNpy, writeNpy } from '../../src/cli/npy.js';

/** A .npy file as the format document lays it out, from its parts. */
function npyBytes(options: { version?: 1 | 2 | 3; header: string; data: Uint8Array | number[]; pad?: boolean }): Buffer {
  const version = options.version ?? 1;
  const lengthBytes = version === 1 ? 2 : 4;
  let header = options.header;
  if (options.pad !== false) {
    const unpadded = 6 + 2 + lengthBytes + Buffer.byteLength(header) + 1;
    header = header + ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  }
  const headerBytes = Buffer.from(header, version === 3 ? 'utf8' : 'latin1');
  const prefix = Buffer.alloc(8 + lengthBytes);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]).copy(prefix);
  if (version === 1) prefix.writeUInt16LE(headerBytes.length, 8);
  else prefix.writeUInt32LE(headerBytes.length, 8);
  return Buffer.concat([prefix, headerBytes, Buffer.from(options.data)]);
}

function float32Bytes(values: number[], bigEndian = false): Buffer {
  const buffer = Buffer.alloc(values.length * 4);
  values.forEach((value, index) => (bigEndian ? buffer.writeFloatBE(value, index * 4) : buffer.writeFloatLE(value, index * 4)));
  return buffer;
}

describe('readNpy', () => {
  test('version 1.0, little-endian float32, shape (2, 3)', () => {
    const file = npyBytes({ header: "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", data: float32Bytes([1, 2, 3, 4, 5, 6.5]) });
    assert.equal((file.length - 6 * 4) % 64, 0, 'the test builds aligned headers as numpy does');
    const array = readNpy(file);
    assert.equal(array.datatype, 'FP32');
    assert.deepEqual(array.shape, [2, 3]);
    assert.deepEqual([...new Float32Array(array.data.buffer, array.data.byteOffset, 6)], [1, 2, 3, 4, 5, 6.5]);
  });

  test('big-endian data comes out little-endian', () => {
    const file = npyBytes({ header: "{'descr': '>f4', 'fortran_order': False, 'shape': (3,), }", data: float32Bytes([1.5, -2, 1e6], true) });
    const array = readNpy(file);
    assert.deepEqual([...new Float32Array(array.data.buffer, 0, 3)], [1.5, -2, 1e6]);

    const int64 = Buffer.alloc(16);
    int64.writeBigInt64BE(-5n, 0);
    int64.writeBigInt64BE(2n ** 62n + 1n, 8);
    const integers = readNpy(npyBytes({ header: "{'descr': '>i8', 'fortran_order': False, 'shape': (2,), }", data: int64 }));
    assert.equal(integers.datatype, 'INT64');
    assert.deepEqual([...new BigInt64Array(integers.data.buffer, 0, 2)], [-5n, 2n ** 62n + 1n]);
  });

  test('versions 2.0 (uint32 header length) and 3.0 (UTF-8 header) read the same array', () => {
    for (const version of [2, 3] as const) {
      const array = readNpy(npyBytes({ version, header: "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }", data: float32Bytes([7, 8]) }));
      assert.deepEqual(array.shape, [1, 2], `version ${version}.0`);
      assert.deepEqual([...new Float32Array(array.data.buffer, 0, 2)], [7, 8]);
    }
  });

  test('every supported dtype maps to its OIP datatype, and |u1 / |i1 / |b1 byte orders', () => {
    const cases: Array<[string, string, number]> = [
      ['|b1', 'BOOL', 1],
      ['|i1', 'INT8', 1],
      ['<i2', 'INT16', 2],
      ['<i4', 'INT32', 4],
      ['<i8', 'INT64', 8],
      ['|u1', 'UINT8', 1],
      ['<u2', 'UINT16', 2],
      ['<u4', 'UINT32', 4],
      ['<u8', 'UINT64', 8],
      ['<f2', 'FP16', 2],
      ['<f4', 'FP32', 4],
      ['<f8', 'FP64', 8],
    ];
    for (const [descr, datatype, size] of cases) {
      const array = readNpy(npyBytes({ header: `{'descr': '${descr}', 'fortran_order': False, 'shape': (2,), }`, data: new Uint8Array(2 * size).fill(1) }));
      assert.equal(array.datatype, datatype, descr);
      assert.equal(array.data.length, 2 * size, descr);
    }
  });

  test('a scalar (shape ()), an empty array and keys in another order with double quotes', () => {
    const scalar = readNpy(npyBytes({ header: "{'descr': '<f8', 'fortran_order': False, 'shape': (), }", data: Buffer.from(new Float64Array([3.25]).buffer) }));
    assert.deepEqual(scalar.shape, []);
    assert.equal(new Float64Array(scalar.data.buffer, 0, 1)[0], 3.25);
    const empty = readNpy(npyBytes({ header: "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4), }", data: [] }));
    assert.deepEqual(empty.shape, [0, 4]);
    const reordered = readNpy(npyBytes({ header: '{"shape": (1,), "fortran_order": False, "descr": "<i4"}', data: [5, 0, 0, 0] }));
    assert.equal(reordered.datatype, 'INT32');
  });

  test('refuses Fortran order, object and structured arrays with a message saying what to do', () => {
    assert.throws(
      () => readNpy(npyBytes({ header: "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", data: float32Bytes([1, 2, 3, 4]) })),
      (error: Error) => error instanceof NpyFormatError && /Fortran-order/.test(error.message) && /ascontiguousarray/.test(error.message),
    );
    assert.throws(
      () => readNpy(npyBytes({ header: "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", data: new Uint8Array(16) })),
      /Object arrays \(dtype 'O'\) are not supported/,
    );
    assert.throws(
      () => readNpy(npyBytes({ header: "{'descr': [('x', '<f4'), ('y', '<i4')], 'fortran_order': False, 'shape': (1,), }", data: new Uint8Array(8) })),
      /Structured arrays/,
    );
    assert.throws(
      () => readNpy(npyBytes({ header: "{'descr': '<U3', 'fortran_order': False, 'shape': (1,), }", data: new Uint8Array(12) })),
      /dtype '<U3' is not supported/,
    );
    assert.throws(() => readNpy(npyBytes({ header: "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", data: new Uint8Array(8) })), /dtype '<c8'/);
  });

  test('refuses what is not a whole .npy file', () => {
    assert.throws(() => readNpy(Buffer.from('PK\u0003\u0004 this is a zip')), /Not a \.npy file/);
    const good = npyBytes({ header: "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", data: float32Bytes([1, 2, 3, 4]) });
    assert.throws(() => readNpy(good.subarray(0, good.length - 3)), /truncated/);
    assert.throws(() => readNpy(good.subarray(0, 20)), /truncated inside its header/);
    assert.throws(() => readNpy(Buffer.concat([good, Buffer.from([0])])), /longer than its header says/);
    const future = Buffer.from(good);
    future[6] = 4;
    assert.throws(() => readNpy(future), /version 4\.0/);
    assert.throws(
      () => readNpy(npyBytes({ header: "{'descr': '<f4', 'shape': (1,), }", data: float32Bytes([1]) })),
      /lacks 'descr', 'fortran_order' or 'shape'/,
    );
    assert.throws(
      () => readNpy(npyBytes({ header: "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,), }", data: float32Bytes([1]) })),
      /not a dict numpy writes/,
    );
  });
});

describe('writeNpy', () => {
  test('writes version 1.0 with the header numpy writes, the data on a 64-byte boundary', () => {
    const file = writeNpy({ datatype: 'FP32', shape: [2, 2], data: new Uint8Array(float32Bytes([1, 2, 3, 4])) });
    assert.deepEqual([...file.subarray(0, 8)], [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
    const headerLength = file.readUInt16LE(8);
    assert.equal((10 + headerLength) % 64, 0);
    const header = file.subarray(10, 10 + headerLength).toString('latin1');
    assert.match(header, /^\{'descr': '<f4', 'fortran_order': False, 'shape': \(2, 2\), \} *\n$/);
    assert.equal(file.length, 10 + headerLength + 16);
  });

  test('a 1-D shape is written as a one-element tuple, bool and bytes as |b1 / |u1', () => {
    const file = writeNpy({ datatype: 'BOOL', shape: [3], data: new Uint8Array([1, 0, 1]) });
    assert.match(file.toString('latin1', 10, 10 + file.readUInt16LE(8)), /'descr': '\|b1'.*'shape': \(3,\)/);
    assert.match(writeNpy({ datatype: 'UINT8', shape: [1], data: new Uint8Array([9]) }).toString('latin1'), /'\|u1'/);
  });

  test('round trips every datatype through readNpy', () => {
    for (const datatype of ['BOOL', 'INT8', 'INT16', 'INT32', 'INT64', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'FP16', 'FP32', 'FP64'] as const) {
      const size = { BOOL: 1, INT8: 1, UINT8: 1, INT16: 2, UINT16: 2, FP16: 2, INT32: 4, UINT32: 4, FP32: 4, INT64: 8, UINT64: 8, FP64: 8 }[datatype];
      const data = Uint8Array.from({ length: 6 * size }, (_, index) => (datatype === 'BOOL' ? index % 2 : (index * 37) % 256));
      const back = readNpy(writeNpy({ datatype, shape: [2, 3], data }));
      assert.equal(back.datatype, datatype);
      assert.deepEqual(back.shape, [2, 3]);
      assert.deepEqual([...back.data], [...data], datatype);
    }
  });
});
