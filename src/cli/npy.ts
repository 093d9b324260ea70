/**
 * NumPy's .npy format (https://numpy.org/devdocs/reference/generated/numpy.lib.format.html), read and written for
 * the CLI's `--input name=@file.npy` and `--output name=@file.npy`. A file is the magic `\x93NUMPY`, a version
 * (1.0, 2.0 or 3.0), a header length (2 bytes for 1.0, 4 after), a Python dict literal naming `descr`,
 * `fortran_order` and `shape`, padded with spaces to a multiple of 64 bytes and ended by a newline, then the data.
 * Arrays come out as the project's tensors: raw little-endian bytes in row-major (C) order.
 */
import { byteSizeOf, elementCount, type Datatype } from '../protocol/datatypes.js';
import { InputFileError } from './input-file-error.js';

const magic = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);

/** A .npy array: its OIP datatype, shape and little-endian C-order bytes. */
export interface NpyArray {
  datatype: Exclude<Datatype, 'BYTES'>;
  shape: number[];
  data: Uint8Array;
}

/** A file that is not a .npy array this reader takes; the message says what is wrong and what to do instead. */
export class NpyFormatError extends InputFileError {
  override name = 'NpyFormatError';
}

/** NumPy type codes (kind + bytes, `descr` without its byte-order mark) and the OIP datatypes they carry. */
const datatypeByCode: Record<string, Exclude<Datatype, 'BYTES'>> = {
  b1: 'BOOL',
  i1: 'INT8',
  i2: 'INT16',
  i4: 'INT32',
  i8: 'INT64',
  u1: 'UINT8',
  u2: 'UINT16',
  u4: 'UINT32',
  u8: 'UINT64',
  f2: 'FP16',
  f4: 'FP32',
  f8: 'FP64',
};
const codeByDatatype = new Map(Object.entries(datatypeByCode).map(([code, datatype]) => [datatype, code]));

/** The values of a header dict this reader understands: strings, booleans and tuples of integers. */
type HeaderValue = string | boolean | number[];

/**
 * Parses the header's Python dict literal (`{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`). Only
 * what numpy writes: quoted keys; string, True/False and int-tuple values. Anything else (a structured dtype's list
 * of fields) is refused by name.
 */
function parseHeaderDict(text: string): Map<string, HeaderValue> {
  let at = 0;
  const skipSpace = () => {
    while (at < text.length && /\s/.test(text[at]!)) at++;
  };
  const fail = (what: string): never => {
    throw new NpyFormatError(`The .npy header is not a dict numpy writes (${what} at character ${at}): ${JSON.stringify(text.slice(0, 120))}.`);
  };
  const expect = (character: string) => {
    skipSpace();
    if (text[at] !== character) fail(`expected '${character}'`);
    at++;
  };
  const readString = (): string => {
    skipSpace();
    const quote = text[at];
    if (quote !== "'" && quote !== '"') return fail('expected a quoted string');
    const end = text.indexOf(quote, at + 1);
    if (end < 0) return fail('unterminated string');
    const value = text.slice(at + 1, end);
    at = end + 1;
    return value;
  };
  const readValue = (key: string): HeaderValue => {
    skipSpace();
    const character = text[at];
    if (character === "'" || character === '"') return readString();
    if (text.startsWith('True', at)) {
      at += 4;
      return true;
    }
    if (text.startsWith('False', at)) {
      at += 5;
      return false;
    }
    if (character === '(') {
      at++;
      const dimensions: number[] = [];
      for (;;) {
        skipSpace();
        if (text[at] === ')') {
          at++;
          return dimensions;
        }
        const match = /^\d+L?/.exec(text.slice(at));
        if (match === null) return fail('expected a dimension');
        dimensions.push(Number(match[0].replace('L', '')));
        at += match[0].length;
        skipSpace();
        if (text[at] === ',') at++;
        else if (text[at] !== ')') fail("expected ',' or ')'");
      }
    }
    if (character === '[' && key === 'descr')
      throw new NpyFormatError('Structured arrays (a dtype with fields) are not supported: save one plain array per input.');
    return fail(`unexpected value for '${key}'`);
  };

  const entries = new Map<string, HeaderValue>();
  expect('{');
  for (;;) {
    skipSpace();
    if (text[at] === '}') break;
    const key = readString();
    expect(':');
    entries.set(key, readValue(key));
    skipSpace();
    if (text[at] === ',') at++;
    else if (text[at] !== '}') fail("expected ',' or '}'");
  }
  return entries;
}

/** The datatype and byte order of a `descr` such as `<f4`, `>i8`, `|b1`; refuses object, string and other arrays. */
function parseDescr(descr: string): { datatype: Exclude<Datatype, 'BYTES'>; bigEndian: boolean } {
  const order = descr[0];
  const code = order === '<' || order === '>' || order === '|' || order === '=' ? descr.slice(1) : descr;
  if (code === 'O') throw new NpyFormatError("Object arrays (dtype 'O') are not supported: save a numeric or boolean array (np.asarray(x, dtype=np.float32)).");
  const datatype = datatypeByCode[code];
  if (datatype === undefined) {
    throw new NpyFormatError(
      `The dtype '${descr.slice(0, 20)}' is not supported: use one of bool, int8..int64, uint8..uint64, float16, float32, float64 (for example np.float32).`,
    );
  }
  // '=' is the writer's native order; every platform Node runs on here is little-endian.
  return { datatype, bigEndian: order === '>' && byteSizeOf(datatype) > 1 };
}

/** Swaps every element's bytes in place (big-endian to little-endian). */
function swapBytes(data: Uint8Array, elementBytes: number): void {
  for (let start = 0; start < data.length; start += elementBytes) data.subarray(start, start + elementBytes).reverse();
}

/**
 * Reads a .npy file's bytes. Versions 1.0, 2.0 and 3.0 (UTF-8 header); little- and big-endian (converted to
 * little-endian); C order only. Throws NpyFormatError saying what is wrong: not a .npy file, truncated, Fortran
 * order, an object or structured dtype, a data size that does not match the shape.
 */
export function readNpy(bytes: Uint8Array): NpyArray {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buffer.length < 10 || !buffer.subarray(0, 6).equals(magic))
    throw new NpyFormatError('Not a .npy file: it does not start with the NumPy magic "\\x93NUMPY".');
  const major = buffer[6]!;
  const minor = buffer[7]!;
  if (![1, 2, 3].includes(major) || minor !== 0)
    throw new NpyFormatError(`Unsupported .npy format version ${major}.${minor}: versions 1.0, 2.0 and 3.0 are read.`);
  const lengthBytes = major === 1 ? 2 : 4;
  if (buffer.length < 8 + lengthBytes) throw new NpyFormatError('The .npy file is truncated inside its header.');
  const headerLength = major === 1 ? buffer.readUInt16LE(8) : buffer.readUInt32LE(8);
  const dataStart = 8 + lengthBytes + headerLength;
  if (buffer.length < dataStart) throw new NpyFormatError(`The .npy file is truncated inside its header (it declares ${headerLength} header bytes).`);
  const header = buffer.subarray(8 + lengthBytes, dataStart).toString(major === 3 ? 'utf8' : 'latin1');

  const entries = parseHeaderDict(header);
  const descr = entries.get('descr');
  const fortranOrder = entries.get('fortran_order');
  const shape = entries.get('shape');
  if (typeof descr !== 'string' || typeof fortranOrder !== 'boolean' || !Array.isArray(shape)) {
    throw new NpyFormatError("The .npy header lacks 'descr', 'fortran_order' or 'shape'.");
  }
  if (fortranOrder && shape.length > 1) {
    throw new NpyFormatError('Fortran-order arrays are not supported: save a C-order copy (np.save(path, np.ascontiguousarray(x))).');
  }
  const { datatype, bigEndian } = parseDescr(descr);
  const elementBytes = byteSizeOf(datatype);
  const expectedBytes = elementCount(shape) * elementBytes;
  const actualBytes = buffer.length - dataStart;
  if (actualBytes !== expectedBytes) {
    throw new NpyFormatError(
      `The .npy data is ${actualBytes} bytes but its shape (${shape.join(', ')}) of '${descr}' needs ${expectedBytes}: the file is ${actualBytes < expectedBytes ? 'truncated' : 'longer than its header says'}.`,
    );
  }
  // A copy: the caller's bytes stay as they were, and the array starts at offset 0 (aligned for typed views).
  const data = new Uint8Array(expectedBytes);
  data.set(buffer.subarray(dataStart));
  if (bigEndian) swapBytes(data, elementBytes);
  return { datatype, shape: [...shape], data };
}

/**
 * Writes an array as a .npy file: version 1.0 (2.0 when the header needs more than 65535 bytes), little-endian,
 * C order, the header padded so the data starts on a 64-byte boundary.
 */
export function writeNpy(array: NpyArray): Buffer {
  const code = codeByDatatype.get(array.datatype);
  if (code === undefined) throw new NpyFormatError(`The datatype ${String(array.datatype)} has no .npy form here.`);
  const descr = code === 'b1' || code.endsWith('1') ? `|${code}` : `<${code}`;
  const shapeText = array.shape.length === 1 ? `(${array.shape[0]},)` : `(${array.shape.join(', ')})`;
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const version = dict.length + 1 + 12 > 0xffff ? 2 : 1;
  const prefixBytes = version === 1 ? 10 : 12;
  const padded = dict.padEnd(Math.ceil((prefixBytes + dict.length + 1) / 64) * 64 - prefixBytes - 1, ' ') + '\n';
  const prefix = Buffer.alloc(prefixBytes);
  magic.copy(prefix, 0);
  prefix[6] = version;
  prefix[7] = 0;
  if (version === 1) prefix.writeUInt16LE(padded.length, 8);
  else prefix.writeUInt32LE(padded.length, 8);
  return Buffer.concat([prefix, Buffer.from(padded, 'latin1'), array.data]);
}
