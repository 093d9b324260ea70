import { elementCount, isDatatype, type Datatype } from '../protocol/datatypes.js';
import { decodeJsonData } from '../protocol/json-tensor-codec.js';
import { writeBytesElements } from '../protocol/bytes-elements.js';
import { toFloat16Bits } from '../protocol/float16.js';
import type { TypedArray } from '../protocol/typed-view.js';
import { invalidClientArgument } from './gantry-error.js';
import type { EncodedInput, TensorData, TensorInput } from './tensor-types.js';

/** The datatype a typed array holds when no datatype is given. */
function naturalDatatype(array: TypedArray): Datatype {
  if (array instanceof Float32Array) return 'FP32';
  if (array instanceof Float64Array) return 'FP64';
  if (array instanceof Int32Array) return 'INT32';
  if (array instanceof BigInt64Array) return 'INT64';
  if (array instanceof BigUint64Array) return 'UINT64';
  if (array instanceof Int8Array) return 'INT8';
  if (array instanceof Int16Array) return 'INT16';
  if (array instanceof Uint16Array) return 'UINT16';
  if (array instanceof Uint32Array) return 'UINT32';
  return 'UINT8';
}

function isTypedArray(value: unknown): value is TypedArray {
  return ArrayBuffer.isView(value) && !(value instanceof DataView);
}

/** Whether the array's bytes are already the datatype's layout (a 1-byte BOOL, FP16 bit patterns in a Uint16Array). */
function holdsLayoutOf(array: TypedArray, datatype: Datatype): boolean {
  const natural = naturalDatatype(array);
  if (natural === datatype) return true;
  if (datatype === 'BOOL') return array instanceof Uint8Array;
  if (datatype === 'FP16') return array instanceof Uint16Array;
  return false;
}

function defaultDatatype(data: TensorData): Datatype {
  if (isTypedArray(data)) return naturalDatatype(data);
  const first: unknown = data[0];
  if (typeof first === 'string' || first instanceof Uint8Array) return 'BYTES';
  if (typeof first === 'boolean') return 'BOOL';
  if (typeof first === 'bigint') return 'INT64';
  return 'FP32';
}

/** Plain values as decodeJsonData reads them: bigints as decimal strings (exact), other numbers as they are. */
function plainValues(data: ArrayLike<unknown>, datatype: Datatype): unknown[] {
  const sixtyFour = datatype === 'INT64' || datatype === 'UINT64';
  return Array.from(data, (value) => (typeof value === 'bigint' ? (sixtyFour ? value.toString() : Number(value)) : value));
}

function checkShape(name: string, shape: unknown): number[] {
  if (!Array.isArray(shape) || !shape.every((dimension) => Number.isSafeInteger(dimension) && (dimension as number) >= 0)) {
    throw invalidClientArgument(`Input '${name}': shape must be an array of non-negative integers.`);
  }
  return shape as number[];
}

/**
 * Turns one client input into Gantry's raw tensor layout. A typed array of the datatype's layout is used as it
 * is (a view, no copy); anything else is converted element by element with the server's own JSON codec, so the
 * client refuses exactly what the server would (wrong type, out of range, wrong count) before sending.
 * @throws GantryError(status 0, INVALID_ARGUMENT) naming the input.
 */
export function encodeInput(name: string, input: TensorInput): EncodedInput {
  const spec = isTypedArray(input) ? { data: input } : input;
  if (typeof spec !== 'object' || spec === null || (!isTypedArray(spec.data) && !Array.isArray(spec.data))) {
    throw invalidClientArgument(`Input '${name}': give a typed array, or {data, shape?, datatype?} with data a typed array or an array.`);
  }
  const { data } = spec;
  const datatype = spec.datatype ?? defaultDatatype(data);
  if (!isDatatype(datatype)) throw invalidClientArgument(`Input '${name}': unknown datatype '${String(datatype).slice(0, 40)}'.`);
  const shape = checkShape(name, spec.shape ?? [data.length]);
  const count = elementCount(shape);
  if (data.length !== count) {
    throw invalidClientArgument(`Input '${name}': shape [${shape.join(',')}] needs ${count} elements but data has ${data.length}.`);
  }
  if (datatype === 'BYTES') {
    if (isTypedArray(data)) throw invalidClientArgument(`Input '${name}': BYTES data is an array of strings or of Uint8Arrays, not a typed array.`);
    const elements = (data as unknown[]).map((element, index) => {
      if (typeof element === 'string') return Buffer.from(element, 'utf8');
      if (element instanceof Uint8Array) return element;
      throw invalidClientArgument(`Input '${name}' (BYTES): element ${index} is neither a string nor a Uint8Array.`);
    });
    return { name, datatype, shape, bytes: writeBytesElements(elements), binaryOnly: (data as unknown[]).some((element) => element instanceof Uint8Array) };
  }
  if (isTypedArray(data) && holdsLayoutOf(data, datatype)) {
    return { name, datatype, shape, bytes: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), binaryOnly: false };
  }
  if (datatype === 'FP16' && (data instanceof Float32Array || data instanceof Float64Array)) {
    const bits = new Uint16Array(data.length);
    for (let index = 0; index < data.length; index++) bits[index] = toFloat16Bits(data[index]!);
    return { name, datatype, shape, bytes: new Uint8Array(bits.buffer), binaryOnly: false };
  }
  try {
    const bytes = decodeJsonData(name, datatype, shape, plainValues(data as ArrayLike<unknown>, datatype));
    return { name, datatype, shape, bytes, binaryOnly: false };
  } catch (error) {
    throw invalidClientArgument(error instanceof Error ? error.message : `Input '${name}': data does not fit ${datatype}.`);
  }
}

/** Bytes of tensor data in the inputs (what decides the binary extension in 'auto'). */
export function tensorBytes(inputs: readonly EncodedInput[]): number {
  let total = 0;
  for (const input of inputs) total += input.bytes.byteLength;
  return total;
}
