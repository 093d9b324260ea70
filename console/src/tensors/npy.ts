// NumPy .npy files (format versions 1-3) read into an input tensor: the header's dtype, shape and C order.
import { elementCount, type InputTensor } from './tensor';

const datatypes: Record<string, { datatype: string; bytes: number; read: (view: DataView, offset: number) => number | boolean }> = {
  b1: { datatype: 'BOOL', bytes: 1, read: (view, offset) => view.getUint8(offset) !== 0 },
  u1: { datatype: 'UINT8', bytes: 1, read: (view, offset) => view.getUint8(offset) },
  u2: { datatype: 'UINT16', bytes: 2, read: (view, offset) => view.getUint16(offset, true) },
  u4: { datatype: 'UINT32', bytes: 4, read: (view, offset) => view.getUint32(offset, true) },
  u8: { datatype: 'UINT64', bytes: 8, read: (view, offset) => Number(view.getBigUint64(offset, true)) },
  i1: { datatype: 'INT8', bytes: 1, read: (view, offset) => view.getInt8(offset) },
  i2: { datatype: 'INT16', bytes: 2, read: (view, offset) => view.getInt16(offset, true) },
  i4: { datatype: 'INT32', bytes: 4, read: (view, offset) => view.getInt32(offset, true) },
  i8: { datatype: 'INT64', bytes: 8, read: (view, offset) => Number(view.getBigInt64(offset, true)) },
  f2: { datatype: 'FP16', bytes: 2, read: (view, offset) => halfToNumber(view.getUint16(offset, true)) },
  f4: { datatype: 'FP32', bytes: 4, read: (view, offset) => view.getFloat32(offset, true) },
  f8: { datatype: 'FP64', bytes: 8, read: (view, offset) => view.getFloat64(offset, true) },
};

function halfToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 0x1f) return fraction === 0 ? sign * Infinity : NaN;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

/** Reads a .npy file's bytes; throws a message saying what is wrong with it. */
export function readNpy(buffer: ArrayBuffer): InputTensor {
  const bytes = new Uint8Array(buffer);
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (bytes.length < 10 || magic.some((byte, index) => bytes[index] !== byte)) throw new Error('Not a NumPy .npy file (its first bytes are not \\x93NUMPY).');
  const view = new DataView(buffer);
  const major = bytes[6]!;
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const headerStart = major === 1 ? 10 : 12;
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(headerStart, headerStart + headerLength));
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) throw new Error('The .npy header has no descr, fortran_order or shape.');
  if (fortran === 'True') throw new Error('The .npy array is in Fortran order; save it in C order (numpy.ascontiguousarray).');
  if (descr.startsWith('>')) throw new Error(`The .npy array is big-endian (${descr}); save it little-endian.`);
  const type = datatypes[descr.replace(/^[<|=]/, '')];
  if (type === undefined) throw new Error(`The .npy dtype ${descr} has no Open Inference Protocol datatype here.`);
  const shape = shapeText
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '')
    .map(Number);
  const count = elementCount(shape);
  const dataStart = headerStart + headerLength;
  if (buffer.byteLength - dataStart < count * type.bytes) throw new Error(`The .npy file is shorter than its shape [${shape.join(', ')}] says.`);
  const data: Array<number | boolean> = new Array(count);
  for (let index = 0; index < count; index++) data[index] = type.read(view, dataStart + index * type.bytes);
  return { datatype: type.datatype, shape, data };
}
