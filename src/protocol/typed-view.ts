import { byteSizeOf, type Datatype } from './datatypes.js';

/** Views raw bytes as the datatype's typed array, copying once only when the offset is misaligned. */
export function typedView(datatype: Exclude<Datatype, 'BYTES'>, bytes: Uint8Array): TypedArray {
  const size = byteSizeOf(datatype);
  let source = bytes;
  if (bytes.byteOffset % size !== 0) {
    // Buffer#slice is a view, not a copy: copy explicitly into a fresh, aligned buffer.
    source = new Uint8Array(bytes.byteLength);
    source.set(bytes);
  }
  const { buffer, byteOffset } = source;
  const count = source.byteLength / size;
  switch (datatype) {
    case 'BOOL':
    case 'UINT8':
      return new Uint8Array(buffer, byteOffset, count);
    case 'UINT16':
    case 'FP16':
      return new Uint16Array(buffer, byteOffset, count);
    case 'UINT32':
      return new Uint32Array(buffer, byteOffset, count);
    case 'UINT64':
      return new BigUint64Array(buffer, byteOffset, count);
    case 'INT8':
      return new Int8Array(buffer, byteOffset, count);
    case 'INT16':
      return new Int16Array(buffer, byteOffset, count);
    case 'INT32':
      return new Int32Array(buffer, byteOffset, count);
    case 'INT64':
      return new BigInt64Array(buffer, byteOffset, count);
    case 'FP32':
      return new Float32Array(buffer, byteOffset, count);
    case 'FP64':
      return new Float64Array(buffer, byteOffset, count);
  }
}

export type TypedArray =
  Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | BigUint64Array | BigInt64Array | Float32Array | Float64Array;
