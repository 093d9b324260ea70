/**
 * The Open Inference Protocol datatypes and how each is laid out in memory. Inside Gantry every tensor is raw
 * little-endian bytes in row-major order; BYTES tensors use the binary extension's layout (each element a 4-byte
 * little-endian length followed by its bytes), so one representation serves JSON, binary bodies and the queue.
 */
export const datatypes = ['BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64', 'BYTES'] as const;

export type Datatype = (typeof datatypes)[number];

/** onnxruntime-node's names for the same element types. */
export type OrtElementType =
  'bool' | 'uint8' | 'uint16' | 'uint32' | 'uint64' | 'int8' | 'int16' | 'int32' | 'int64' | 'float16' | 'float32' | 'float64' | 'string';

interface DatatypeInfo {
  /** Bytes per element; 0 for BYTES, whose elements vary in length. */
  byteSize: number;
  ortType: OrtElementType;
}

const infoByDatatype: Record<Datatype, DatatypeInfo> = {
  BOOL: { byteSize: 1, ortType: 'bool' },
  UINT8: { byteSize: 1, ortType: 'uint8' },
  UINT16: { byteSize: 2, ortType: 'uint16' },
  UINT32: { byteSize: 4, ortType: 'uint32' },
  UINT64: { byteSize: 8, ortType: 'uint64' },
  INT8: { byteSize: 1, ortType: 'int8' },
  INT16: { byteSize: 2, ortType: 'int16' },
  INT32: { byteSize: 4, ortType: 'int32' },
  INT64: { byteSize: 8, ortType: 'int64' },
  FP16: { byteSize: 2, ortType: 'float16' },
  FP32: { byteSize: 4, ortType: 'float32' },
  FP64: { byteSize: 8, ortType: 'float64' },
  BYTES: { byteSize: 0, ortType: 'string' },
};

const datatypeByOrtType = new Map<string, Datatype>(Object.entries(infoByDatatype).map(([datatype, info]) => [info.ortType, datatype as Datatype]));

export function isDatatype(value: unknown): value is Datatype {
  return typeof value === 'string' && value in infoByDatatype;
}

export function byteSizeOf(datatype: Datatype): number {
  return infoByDatatype[datatype].byteSize;
}

export function ortTypeOf(datatype: Datatype): OrtElementType {
  return infoByDatatype[datatype].ortType;
}

/** Maps an onnxruntime type name to its OIP datatype, or undefined for types OIP cannot carry. */
export function datatypeOfOrtType(ortType: string): Datatype | undefined {
  return datatypeByOrtType.get(ortType);
}

/** Number of elements of a shape; [] (a scalar) has one. */
export function elementCount(shape: readonly number[]): number {
  let count = 1;
  for (const dimension of shape) count *= dimension;
  return count;
}
