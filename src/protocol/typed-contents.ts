import { describeValue, errors } from '../errors.js';
import { writeBytesElements } from './bytes-elements.js';
import { elementCount, type Datatype } from './datatypes.js';
import { toFloat16Bits } from './float16.js';
import { formatShape } from './shape-text.js';

/**
 * The Open Inference Protocol's gRPC typed tensor contents (`InferTensorContents`), as @grpc/proto-loader gives
 * them with `keepCase: true`, `longs: String`, `bytes: Buffer`: 64-bit integers arrive as decimal strings (numbers
 * and bigints are taken too, numbers only while they are exact). Each datatype has one field: BOOL
 * `bool_contents`; INT8, INT16, INT32 `int_contents`; INT64 `int64_contents`; UINT8, UINT16, UINT32
 * `uint_contents`; UINT64 `uint64_contents`; FP16 and FP32 `fp32_contents`; FP64 `fp64_contents`; BYTES
 * `bytes_contents`.
 */
export interface TypedContents {
  bool_contents?: boolean[];
  int_contents?: number[];
  int64_contents?: Array<string | number | bigint>;
  uint_contents?: number[];
  uint64_contents?: Array<string | number | bigint>;
  fp32_contents?: number[];
  fp64_contents?: number[];
  bytes_contents?: Uint8Array[];
}

type ContentsField = keyof TypedContents;

const contentsFields: readonly ContentsField[] = [
  'bool_contents',
  'int_contents',
  'int64_contents',
  'uint_contents',
  'uint64_contents',
  'fp32_contents',
  'fp64_contents',
  'bytes_contents',
];

/** The one field a datatype's elements travel in. */
export function contentsFieldOf(datatype: Datatype): ContentsField {
  switch (datatype) {
    case 'BOOL':
      return 'bool_contents';
    case 'INT8':
    case 'INT16':
    case 'INT32':
      return 'int_contents';
    case 'INT64':
      return 'int64_contents';
    case 'UINT8':
    case 'UINT16':
    case 'UINT32':
      return 'uint_contents';
    case 'UINT64':
      return 'uint64_contents';
    case 'FP16':
    case 'FP32':
      return 'fp32_contents';
    case 'FP64':
      return 'fp64_contents';
    case 'BYTES':
      return 'bytes_contents';
  }
}

/** Integer ranges of the datatypes that travel in the 32-bit fields. */
const smallIntegerRanges: Partial<Record<Datatype, readonly [number, number]>> = {
  INT8: [-128, 127],
  INT16: [-32_768, 32_767],
  INT32: [-2_147_483_648, 2_147_483_647],
  UINT8: [0, 255],
  UINT16: [0, 65_535],
  UINT32: [0, 4_294_967_295],
};

const int64Range = [-(2n ** 63n), 2n ** 63n - 1n] as const;
const uint64Range = [0n, 2n ** 64n - 1n] as const;
const decimalInteger = /^-?\d{1,20}$/;

/**
 * Decodes an input's typed contents into Gantry's raw tensor layout (little-endian, BOOL one byte, BYTES as
 * 4-byte length + bytes). Empty fields count as absent, as protobuf cannot tell them apart.
 * @throws GantryError(INVALID_ARGUMENT) naming the input when another datatype's field holds elements, the count
 * differs from the shape's, or a value is not in the datatype's range (or, for 64-bit integers, not an exact
 * integer).
 */
export function decodeTypedContents(inputName: string, datatype: Datatype, shape: readonly number[], contents: TypedContents): Uint8Array {
  const field = contentsFieldOf(datatype);
  for (const other of contentsFields) {
    if (other !== field && (contents[other]?.length ?? 0) > 0) {
      throw errors.invalidArgument(`Input '${inputName}': ${datatype} elements go in '${field}', but '${other}' holds ${contents[other]!.length} elements.`);
    }
  }
  const values: readonly unknown[] = contents[field] ?? [];
  const count = elementCount(shape);
  if (values.length !== count) {
    throw errors.invalidArgument(`Input '${inputName}': shape ${formatShape(shape)} needs ${count} elements but '${field}' holds ${values.length}.`);
  }
  const bad = (index: number, why: string) =>
    errors.invalidArgument(`Input '${inputName}': element ${index} of '${field}' (${describeValue(values[index])}) ${why}.`);

  switch (datatype) {
    case 'BOOL': {
      const out = new Uint8Array(count);
      values.forEach((value, index) => {
        if (typeof value !== 'boolean') throw bad(index, 'is not true or false');
        out[index] = value ? 1 : 0;
      });
      return out;
    }
    case 'INT8':
    case 'INT16':
    case 'INT32':
    case 'UINT8':
    case 'UINT16':
    case 'UINT32': {
      const [minimum, maximum] = smallIntegerRanges[datatype]!;
      const out = newIntegerArray(datatype, count);
      values.forEach((value, index) => {
        if (typeof value !== 'number' || !Number.isInteger(value)) throw bad(index, 'is not an integer');
        if (value < minimum || value > maximum) throw bad(index, `is outside ${datatype}'s range ${minimum}..${maximum}`);
        out[index] = value;
      });
      return bytesOf(out);
    }
    case 'INT64':
    case 'UINT64': {
      const [minimum, maximum] = datatype === 'INT64' ? int64Range : uint64Range;
      const out = datatype === 'INT64' ? new BigInt64Array(count) : new BigUint64Array(count);
      values.forEach((value, index) => {
        const exact = exactInteger(value);
        if (exact === undefined) throw bad(index, 'is not an exact integer (send 64-bit integers as decimal strings)');
        if (exact < minimum || exact > maximum) throw bad(index, `is outside ${datatype}'s range ${minimum}..${maximum}`);
        out[index] = exact;
      });
      return bytesOf(out);
    }
    case 'FP16':
    case 'FP32':
    case 'FP64': {
      const out = datatype === 'FP16' ? new Uint16Array(count) : datatype === 'FP32' ? new Float32Array(count) : new Float64Array(count);
      values.forEach((value, index) => {
        if (typeof value !== 'number') throw bad(index, 'is not a number');
        out[index] = datatype === 'FP16' ? toFloat16Bits(value) : value;
      });
      return bytesOf(out);
    }
    case 'BYTES': {
      values.forEach((value, index) => {
        if (!(value instanceof Uint8Array)) throw bad(index, 'is not bytes');
      });
      return writeBytesElements(values as Uint8Array[]);
    }
  }
}

function newIntegerArray(datatype: Datatype, count: number): Int8Array | Int16Array | Int32Array | Uint8Array | Uint16Array | Uint32Array {
  switch (datatype) {
    case 'INT8':
      return new Int8Array(count);
    case 'INT16':
      return new Int16Array(count);
    case 'INT32':
      return new Int32Array(count);
    case 'UINT8':
      return new Uint8Array(count);
    case 'UINT16':
      return new Uint16Array(count);
    default:
      return new Uint32Array(count);
  }
}

/** A 64-bit field's element as a bigint: decimal strings and bigints as they are, numbers only while exact. */
function exactInteger(value: unknown): bigint | undefined {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number') return Number.isSafeInteger(value) ? BigInt(value) : undefined;
  if (typeof value === 'string' && decimalInteger.test(value)) return BigInt(value);
  return undefined;
}

function bytesOf(array: ArrayBufferView): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}
