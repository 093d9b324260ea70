import { maxNestingDepth } from './json-tensor-codec.js';

/**
 * Exact 64-bit integers in JSON request bodies. JSON.parse reads every number as a double, so an INT64 or UINT64
 * element sent as a JSON number beyond 2^53 (as tritonclient.http sends them, and as Triton reads them) arrives
 * rounded: 9007199254740993 becomes 9007199254740992. Instead of a slower parser for every body, JSON.parse stays
 * the only parse; only when an INT64/UINT64 input's `data` holds a number of magnitude 2^53 or more (where every
 * rounded value lands) is that input's `data` read again from the source text, by a scanner that walks the
 * already-validated JSON to it and keeps each such number's digits. The exact values replace the rounded ones as
 * decimal strings, which decodeJsonData reads exactly; nothing else in the body changes.
 *
 * Rules (docs/protocol.md): a number is accepted when its exact decimal value is an integer in the datatype's
 * range, whatever its form (`1e3`, `9007199254740993.0`, `-0` are 1000, 9007199254740993 and 0). A number whose
 * exact value is not an integer, or needs more than 20 digits, is left as JSON.parse read it, and decodeJsonData
 * refuses it naming the input and the element.
 */

/** Below this magnitude a double is exact for every integer, so nothing needs to be read again. */
const exactLimit = 2 ** 53;

const sixtyFourBit = new Set(['INT64', 'UINT64']);

/** Most digits a 64-bit integer has (18446744073709551615); a longer value is out of range whatever it is. */
const maxDigits = 20;

const jsonNumber = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/;

/**
 * The exact value of a JSON number's text as a decimal integer string ("-0" and "0e5" give "0").
 * @returns undefined when the value is not an integer or has more than 20 digits.
 */
export function exactIntegerText(numberText: string): string | undefined {
  const match = jsonNumber.exec(numberText);
  if (match === null) return undefined;
  const [, sign, integerPart, fractionPart = '', exponentText = '0'] = match;
  let digits = integerPart! + fractionPart;
  // The value is digits × 10^scale.
  const scale = Number(exponentText) - fractionPart.length;
  const firstNonZero = digits.search(/[1-9]/);
  if (firstNonZero === -1) return '0';
  digits = digits.slice(firstNonZero);
  if (scale >= 0) {
    if (digits.length + scale > maxDigits) return undefined;
    return `${sign}${digits}${'0'.repeat(scale)}`;
  }
  // A negative scale drops digits: all of them must be zeros for the value to be an integer.
  const kept = digits.length + scale;
  if (kept <= 0 || !/^0+$/.test(digits.slice(kept))) return undefined;
  return kept > maxDigits ? undefined : `${sign}${digits.slice(0, kept)}`;
}

/**
 * Whether `data` (nested arrays of elements, as JSON.parse gave them) holds a number JSON.parse may have rounded.
 * Walks at most `maxDepth` levels: deeper data is refused when it is decoded, so it is not worth reading again.
 */
function holdsUnsafeNumber(data: unknown, maxDepth: number): boolean {
  if (!Array.isArray(data)) return typeof data === 'number' && Math.abs(data) >= exactLimit;
  const arrays: unknown[][] = [data];
  const depths: number[] = [1];
  while (arrays.length > 0) {
    const array = arrays.pop()!;
    const depth = depths.pop()!;
    for (let index = 0; index < array.length; index++) {
      const item = array[index];
      if (typeof item === 'number') {
        if (Math.abs(item) >= exactLimit) return true;
      } else if (Array.isArray(item)) {
        if (depth + 1 > maxDepth) return false;
        arrays.push(item);
        depths.push(depth + 1);
      }
    }
  }
  return false;
}

interface ParsedInput {
  datatype?: unknown;
  shape?: unknown;
  data?: unknown;
}

/**
 * Replaces, in a parsed request, the `data` of every INT64/UINT64 input that holds a possibly rounded number
 * by the same data read exactly from `text` (the JSON the request was parsed from). A request with no such
 * input (every FP32 one, every 64-bit one with values below 2^53) costs one look at each input's datatype.
 * @param header what JSON.parse(text) returned; changed in place.
 */
export function restoreExactIntegers(header: unknown, text: string): void {
  const inputs = (header as { inputs?: unknown } | null)?.inputs;
  if (typeof header !== 'object' || header === null || !Array.isArray(inputs)) return;
  let flagged: Set<number> | undefined;
  for (let index = 0; index < inputs.length; index++) {
    const input = inputs[index] as ParsedInput | null;
    if (typeof input !== 'object' || input === null || !sixtyFourBit.has(input.datatype as string)) continue;
    const rank = Array.isArray(input.shape) ? input.shape.length : 1;
    if (holdsUnsafeNumber(input.data, maxNestingDepth(rank))) (flagged ??= new Set()).add(index);
  }
  if (flagged === undefined) return;
  for (const [index, data] of new JsonTextScanner(text).inputData(flagged)) (inputs[index] as ParsedInput).data = data;
}

const space = 0x20;
const tab = 0x09;
const newline = 0x0a;
const carriageReturn = 0x0d;
const quote = 0x22;
const backslash = 0x5c;
const comma = 0x2c;
const colon = 0x3a;
const openBracket = 0x5b;
const closeBracket = 0x5d;
const openBrace = 0x7b;
const closeBrace = 0x7d;
const minus = 0x2d;
const digitZero = 0x30;
const digitNine = 0x39;

const plainInteger = /^-?\d{1,20}$/;

/**
 * Walks JSON text that JSON.parse has already accepted (so it checks nothing), by character positions in the
 * string. Duplicate keys resolve as in JSON.parse: the last one wins.
 */
class JsonTextScanner {
  constructor(private readonly text: string) {}

  /**
   * The `data` of the request's inputs at `indices`, with 64-bit numbers exact; by input index. One pass over the
   * text: each member is read where it is met, and a later duplicate key reads its value again and replaces it.
   */
  inputData(indices: ReadonlySet<number>): Map<number, unknown> {
    let found = new Map<number, unknown>();
    const rootAt = this.skipSpace(0);
    if (this.text.charCodeAt(rootAt) !== openBrace) return found;
    this.readMembers(rootAt, (key, valueAt) => {
      if (key !== 'inputs' || this.text.charCodeAt(valueAt) !== openBracket) return undefined;
      found = new Map();
      return this.readInputs(valueAt, indices, found);
    });
    return found;
  }

  /** Reads the inputs array starting at `arrayAt` into `found`; returns the position after it. */
  private readInputs(arrayAt: number, indices: ReadonlySet<number>, found: Map<number, unknown>): number {
    let position = this.skipSpace(arrayAt + 1);
    for (let index = 0; this.text.charCodeAt(position) !== closeBracket; index++) {
      if (indices.has(index) && this.text.charCodeAt(position) === openBrace) {
        position = this.readMembers(position, (key, valueAt) => {
          if (key !== 'data') return undefined;
          const { value, end } = this.readElements(valueAt);
          found.set(index, value);
          return end;
        });
      } else position = this.skipValue(position);
      position = this.skipSpace(position);
      if (this.text.charCodeAt(position) === comma) position = this.skipSpace(position + 1);
    }
    return position + 1;
  }

  /**
   * Walks the members of the object starting at `objectAt`, in order, calling `read` with each key and where its
   * value starts; `read` returns the position after the value when it read it, undefined to have it skipped.
   * @returns the position after the object.
   */
  private readMembers(objectAt: number, read: (key: string, valueAt: number) => number | undefined): number {
    let position = this.skipSpace(objectAt + 1);
    while (this.text.charCodeAt(position) === quote) {
      const keyEnd = this.skipString(position);
      const key = this.stringValue(position, keyEnd);
      position = this.skipSpace(this.skipSpace(keyEnd) + 1); // past the colon
      position = this.skipSpace(read(key, position) ?? this.skipValue(position));
      if (this.text.charCodeAt(position) === comma) position = this.skipSpace(position + 1);
    }
    return position + 1;
  }

  /**
   * Reads a `data` value: arrays rebuilt as they are nested, numbers of 2^53 and more as exact decimal strings
   * (or as JSON.parse reads them when they are not integers of at most 20 digits), everything else as JSON.parse
   * reads it. Iterative: no nesting can overflow the stack.
   */
  private readElements(valueAt: number): { value: unknown; end: number } {
    if (this.text.charCodeAt(valueAt) !== openBracket) {
      const end = this.skipValue(valueAt);
      return { value: this.readScalar(valueAt, end), end };
    }
    const root: unknown[] = [];
    const stack: unknown[][] = [root];
    let position = this.skipSpace(valueAt + 1);
    for (;;) {
      const code = this.text.charCodeAt(position);
      if (code === closeBracket) {
        stack.pop();
        position++;
        if (stack.length === 0) return { value: root, end: position };
        position = this.skipSpace(position);
      } else if (code === comma) {
        position = this.skipSpace(position + 1);
      } else if (code === openBracket) {
        const nested: unknown[] = [];
        stack[stack.length - 1]!.push(nested);
        stack.push(nested);
        position = this.skipSpace(position + 1);
      } else {
        const end = this.skipValue(position);
        stack[stack.length - 1]!.push(this.readScalar(position, end));
        position = this.skipSpace(end);
      }
    }
  }

  private readScalar(start: number, end: number): unknown {
    const source = this.text.slice(start, end);
    const first = this.text.charCodeAt(start);
    const isNumber = first === minus || (first >= digitZero && first <= digitNine);
    // Strings and literals as JSON.parse reads them; Number() reads a JSON number's text exactly as it does.
    if (!isNumber) return JSON.parse(source) as unknown;
    const value = Number(source);
    if (Math.abs(value) < exactLimit) return value;
    // Plain digits are already the exact decimal text (valid JSON has no leading zeros).
    if (plainInteger.test(source)) return source;
    return exactIntegerText(source) ?? value;
  }

  private stringValue(start: number, end: number): string {
    const raw = this.text.slice(start + 1, end - 1);
    return raw.includes('\\') ? (JSON.parse(this.text.slice(start, end)) as string) : raw;
  }

  private skipSpace(position: number): number {
    let at = position;
    for (;;) {
      const code = this.text.charCodeAt(at);
      if (code !== space && code !== newline && code !== carriageReturn && code !== tab) return at;
      at++;
    }
  }

  /** The position just after the string starting at `start` (its opening quote). */
  private skipString(start: number): number {
    let at = start + 1;
    for (;;) {
      const end = this.text.indexOf('"', at);
      // A quote preceded by an odd number of backslashes is escaped.
      let backslashes = 0;
      while (this.text.charCodeAt(end - 1 - backslashes) === backslash) backslashes++;
      if (backslashes % 2 === 0) return end + 1;
      at = end + 1;
    }
  }

  /** The position just after the value starting at `start`. */
  private skipValue(start: number): number {
    const code = this.text.charCodeAt(start);
    if (code === quote) return this.skipString(start);
    if (code === openBracket || code === openBrace) {
      let depth = 0;
      let at = start;
      do {
        const current = this.text.charCodeAt(at);
        if (current === quote) {
          at = this.skipString(at);
          continue;
        }
        if (current === openBracket || current === openBrace) depth++;
        else if (current === closeBracket || current === closeBrace) depth--;
        at++;
      } while (depth > 0);
      return at;
    }
    // A number or a literal: it ends where a separator, a closing bracket or space begins.
    let at = start + 1;
    for (;;) {
      const current = this.text.charCodeAt(at);
      if (
        Number.isNaN(current) ||
        current === comma ||
        current === closeBracket ||
        current === closeBrace ||
        current === colon ||
        current === space ||
        current === newline ||
        current === carriageReturn ||
        current === tab
      ) {
        return at;
      }
      at++;
    }
  }
}
