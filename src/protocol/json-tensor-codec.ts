import { byteSizeOf, type Datatype, elementCount } from './datatypes.js';
import { typedView } from './typed-view.js';
import { fromFloat16Bits, toFloat16Bits } from './float16.js';
import { ErrorCode, GantryError, describeValue, errors, isErrorCode } from '../errors.js';
import { readBytesStrings, writeBytesElements } from './bytes-elements.js';
import { formatShape } from './shape-text.js';

type JsonScalar = number | string | boolean;

const nestingErrors = new WeakSet<Error>();

/** Whether `error` is flattenData's refusal of too deep a nesting (the API counts it as a limit that tripped). */
export function isNestingTooDeep(error: unknown): boolean {
  return error instanceof Error && nestingErrors.has(error);
}

/**
 * How deeply `data` may nest for a tensor of `rank` dimensions: nested exactly as the shape (rank levels), flat
 * (one level), plus a small margin for clients that wrap a batch once more. Anything deeper is a mistake or an
 * attack (a 200,000-deep array), refused with a 400 before any code could recurse through it.
 */
export function maxNestingDepth(rank: number): number {
  return Math.max(rank, 1) + 2;
}

/** A decodeJsonData error as it crosses a thread boundary (a JSON parse thread decodes, the route throws it). */
export interface WireDecodeError {
  code: ErrorCode;
  message: string;
  /** It was flattenData's nesting refusal (isNestingTooDeep stays true once it is rebuilt). */
  nestingTooDeep: boolean;
}

/** The wire form of an error thrown by decodeJsonData; anything that is not a GantryError becomes INTERNAL. */
export function decodeErrorToWire(error: unknown): WireDecodeError {
  if (error instanceof GantryError) return { code: error.code, message: error.message, nestingTooDeep: isNestingTooDeep(error) };
  return { code: ErrorCode.Internal, message: 'Internal error while decoding tensor data.', nestingTooDeep: false };
}

/** Rebuilds a decode error from its wire form, as decodeJsonData would have thrown it here. */
export function decodeErrorFromWire(wire: WireDecodeError): GantryError {
  const error = new GantryError(isErrorCode(wire.code) ? wire.code : ErrorCode.Internal, wire.message);
  if (wire.nestingTooDeep) nestingErrors.add(error);
  return error;
}

/**
 * Flattens nested `data` arrays into one row-major list; the spec allows both forms. Iterative, so no depth can
 * overflow the stack.
 * @param maxDepth most levels of arrays allowed (the outermost array is level 1); default unlimited.
 * @param inputName named in the error.
 * @throws GantryError(INVALID_ARGUMENT) when `data` nests deeper than `maxDepth`.
 */
export function flattenData(data: unknown, maxDepth = Number.POSITIVE_INFINITY, inputName = 'tensor'): unknown[] {
  if (!Array.isArray(data)) return [data];
  if (!data.some(Array.isArray)) return data;
  const flat: unknown[] = [];
  const stack: unknown[][] = [data];
  const positions: number[] = [0];
  while (stack.length > 0) {
    if (stack.length > maxDepth) {
      const error = errors.nestingTooDeep(inputName, maxDepth);
      nestingErrors.add(error);
      throw error;
    }
    const top = stack[stack.length - 1]!;
    const position = positions[positions.length - 1]!;
    if (position >= top.length) {
      stack.pop();
      positions.pop();
      continue;
    }
    positions[positions.length - 1] = position + 1;
    const item = top[position];
    if (Array.isArray(item)) {
      stack.push(item);
      positions.push(0);
    } else flat.push(item);
  }
  return flat;
}

const integerRanges: Partial<Record<Datatype, [number, number]>> = {
  UINT8: [0, 0xff],
  UINT16: [0, 0xffff],
  UINT32: [0, 0xffffffff],
  INT8: [-0x80, 0x7f],
  INT16: [-0x8000, 0x7fff],
  INT32: [-0x80000000, 0x7fffffff],
};

/** Largest magnitudes that round to a finite value of each float type. */
const floatLimits = { FP16: 65504, FP32: 3.4028234663852886e38, FP64: Number.MAX_VALUE } as const;

const decimalInteger = /^-?\d{1,20}$/;

const sixtyFourBitRanges = { INT64: '-9223372036854775808 to 9223372036854775807', UINT64: '0 to 18446744073709551615' } as const;

function toBigInteger(value: unknown, datatype: 'INT64' | 'UINT64'): bigint | undefined {
  let big: bigint;
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) return undefined;
    big = BigInt(value);
  } else if (typeof value === 'string' && decimalInteger.test(value)) big = BigInt(value);
  else return undefined;
  const inRange = datatype === 'INT64' ? big >= -(2n ** 63n) && big < 2n ** 63n : big >= 0n && big < 2n ** 64n;
  return inRange ? big : undefined;
}

/** An element as an error names it: JSON.parse reads a number too large for a double (1e400) as Infinity, which JSON would show as null. */
function describeElement(value: unknown): string {
  if (typeof value === 'number' && !Number.isFinite(value)) return 'a number too large for a double';
  return describeValue(value);
}

/**
 * Decodes a JSON `data` field into raw tensor bytes. INT64/UINT64 elements are numbers below 2^53 or decimal
 * strings; a number of 2^53 or more is refused, since JSON.parse may have rounded it (splitBinaryBody has already
 * replaced the exact ones by their decimal strings: exact-json-integers.ts).
 * @throws GantryError(INVALID_ARGUMENT) naming the input when `data` nests deeper than maxNestingDepth(rank), an
 * element has the wrong type or range, or the
 * element count does not match the shape.
 */
export function decodeJsonData(inputName: string, datatype: Datatype, shape: number[], data: unknown): Uint8Array {
  const flat = flattenData(data, maxNestingDepth(shape.length), inputName);
  const expected = elementCount(shape);
  if (flat.length !== expected) {
    throw errors.invalidArgument(`Input '${inputName.slice(0, 100)}': shape ${formatShape(shape)} needs ${expected} elements but data has ${flat.length}.`);
  }
  const bad = (index: number, what: string) =>
    errors.invalidArgument(`Input '${inputName.slice(0, 100)}' (${datatype}): element ${index} is ${describeElement(flat[index])}, expected ${what}.`);

  if (datatype === 'BYTES') {
    const elements: Uint8Array[] = new Array(flat.length);
    for (let index = 0; index < flat.length; index++) {
      const value = flat[index];
      if (typeof value !== 'string') throw bad(index, 'a string');
      elements[index] = Buffer.from(value, 'utf8');
    }
    return writeBytesElements(elements);
  }

  // A fresh buffer is aligned, so typedView wraps it without a copy.
  const target = typedView(datatype, new Uint8Array(flat.length * byteSizeOf(datatype))) as ArrayBufferView & { [index: number]: number | bigint };
  if (datatype === 'BOOL') {
    for (let index = 0; index < flat.length; index++) {
      const value = flat[index];
      if (typeof value !== 'boolean') throw bad(index, 'true or false');
      target[index] = value ? 1 : 0;
    }
  } else if (datatype === 'INT64' || datatype === 'UINT64') {
    for (let index = 0; index < flat.length; index++) {
      const big = toBigInteger(flat[index], datatype);
      if (big === undefined) throw bad(index, `an integer in ${datatype} range (${sixtyFourBitRanges[datatype]}), as a JSON number or a decimal string`);
      target[index] = big;
    }
  } else if (datatype === 'FP32' || datatype === 'FP64' || datatype === 'FP16') {
    // A finite JSON number beyond the type's range would silently become Infinity: refuse it instead.
    const limit = floatLimits[datatype];
    for (let index = 0; index < flat.length; index++) {
      const value = flat[index];
      if (typeof value !== 'number' || Math.abs(value) > limit) throw bad(index, `a number within ±${limit}`);
      target[index] = datatype === 'FP16' ? toFloat16Bits(value) : value;
    }
  } else {
    const [low, high] = integerRanges[datatype]!;
    for (let index = 0; index < flat.length; index++) {
      const value = flat[index];
      if (typeof value !== 'number' || !Number.isInteger(value) || value < low || value > high) {
        throw bad(index, `an integer from ${low} to ${high}`);
      }
      target[index] = value;
    }
  }
  return new Uint8Array(target.buffer, target.byteOffset, target.byteLength);
}

/**
 * Encodes raw tensor bytes as a flat JSON `data` array. 64-bit integers stay numbers while they are exact
 * (|v| ≤ 2^53 − 1) and become decimal strings beyond, so no value is ever silently rounded. (Inference responses
 * write them as exact JSON numbers instead: encodeInferResponseParts' `serialized`, exact-json-response.ts.)
 */
export function encodeJsonData(datatype: Datatype, bytes: Uint8Array): JsonScalar[] {
  if (datatype === 'BYTES') return readBytesStrings(bytes);
  const view = typedView(datatype, bytes);
  const out: JsonScalar[] = new Array(view.length);
  if (datatype === 'BOOL') {
    for (let index = 0; index < view.length; index++) out[index] = view[index] !== 0;
  } else if (datatype === 'INT64' || datatype === 'UINT64') {
    for (let index = 0; index < view.length; index++) {
      const big = view[index] as bigint;
      const asNumber = Number(big);
      out[index] = Number.isSafeInteger(asNumber) ? asNumber : big.toString();
    }
  } else if (datatype === 'FP16') {
    for (let index = 0; index < view.length; index++) out[index] = fromFloat16Bits(view[index] as number);
  } else {
    for (let index = 0; index < view.length; index++) out[index] = view[index] as number;
  }
  return out;
}
