import type { Datatype } from '../protocol/datatypes.js';
import type { TypedArray } from '../protocol/typed-view.js';

export type { Datatype } from '../protocol/datatypes.js';
export type { TypedArray } from '../protocol/typed-view.js';

/**
 * An input tensor's elements: a typed array (sent as its bytes, without conversion, when it matches the
 * datatype), or plain values. BYTES elements are strings (sent as UTF-8) or byte arrays.
 */
export type TensorData = TypedArray | number[] | string[] | boolean[] | bigint[] | Uint8Array[];

/**
 * One input of client.infer(). A bare typed array is a 1-D tensor of its natural datatype (Float32Array → FP32,
 * BigInt64Array → INT64, Uint8Array → UINT8, ...). With an object, `shape` defaults to `[data.length]` and
 * `datatype` to the typed array's, or FP32 for numbers, INT64 for bigints, BOOL for booleans and BYTES for
 * strings and byte arrays.
 */
export type TensorInput = TypedArray | { data: TensorData; shape?: number[] | undefined; datatype?: Datatype | undefined };

/**
 * An output tensor's elements: the typed array of its datatype (INT64/UINT64 as BigInt64Array/BigUint64Array,
 * exact; FP16 widened to Float32Array), booleans for BOOL, strings (UTF-8) for BYTES.
 */
export type TensorValues =
  | Float32Array
  | Float64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array
  | string[]
  | boolean[];

/** An output of an inference, decoded. */
export interface Tensor {
  name: string;
  datatype: Datatype;
  shape: number[];
  data: TensorValues;
  /** The output's parameters, as the server sent them (binary_data_size removed). */
  parameters?: Record<string, unknown> | undefined;
}

/** An input ready to encode: Gantry's raw layout (little-endian, row-major; BYTES as 4-byte length + bytes). */
export interface EncodedInput {
  name: string;
  datatype: Datatype;
  shape: number[];
  bytes: Uint8Array;
  /** A BYTES input given as byte arrays: JSON would have to read them as UTF-8, so it is always sent binary. */
  binaryOnly: boolean;
}
