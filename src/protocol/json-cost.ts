import { errors } from '../errors.js';

/**
 * What a JSON text will cost once parsed, counted from its bytes without parsing it. Numbers are cheap for
 * JSON.parse (a 64 MiB body of FP32 numbers: 1.2 s, +26 MB of heap); containers and strings are not (64 MiB of
 * empty arrays: 17 s and +917 MB; of short strings: +166 MB), so those two are what is bounded.
 */
export interface JsonCost {
  /** Arrays and objects: one '[' or '{' outside a string each. */
  containers: number;
  /** Strings, object keys included. */
  strings: number;
  /** Array elements and object members after the first of each: the commas outside strings. */
  values: number;
}

/** Most containers and strings one JSON body may hold. */
export interface JsonCostBounds {
  maxContainers: number;
  maxStrings: number;
  maxValues: number;
}

/**
 * Most arrays and objects in one JSON inference body. A tensor nested as its shape says has one array per row of
 * its innermost dimension ([1,3,640,640]: 1,924), so only data nested around a tiny innermost dimension comes near
 * it (1,000,000 rows of [x, y]); flat data never does. At the bound JSON.parse spends ~0.1 s and ~50 MB.
 */
export const maxJsonContainers = 1_000_000;

/**
 * Most values (counted by their commas) in one JSON inference body. A parsed number costs 8 bytes in an array of
 * numbers but 24 once numbers of both kinds (small integers and doubles) share one, and flattening nested data
 * copies each once more: 8 M values are at most ~300 MB of parse heap. A 64 MiB body of full-precision FP32
 * numbers holds ~6.7 M; only short values (UINT8 pixels, zeros) reach the bound, and those belong in the binary
 * extension, where they cost a byte each.
 */
export const maxJsonValues = 8_000_000;

/** Strings allowed beyond the BYTES elements themselves: object keys, names, datatypes, parameters. */
export const jsonStringMargin = 100_000;

/**
 * The bounds for a JSON inference body: a JSON string is either a BYTES element (at most `maxBytesElements`,
 * GANTRY_MAX_BYTES_ELEMENTS) or one of a few keys and names per input.
 */
export function jsonCostBounds(maxBytesElements: number): JsonCostBounds {
  return { maxContainers: maxJsonContainers, maxStrings: maxBytesElements + jsonStringMargin, maxValues: maxJsonValues };
}

/**
 * Whether a JSON text of `byteLength` bytes could hold more than the bounds at all: every container takes two
 * bytes ('[' and ']'), every string two quotes and every counted value a comma and a character, so a text shorter than twice the smaller bound never needs
 * the scan.
 */
export function couldExceedJsonCost(byteLength: number, bounds: JsonCostBounds): boolean {
  return byteLength / 2 > Math.min(bounds.maxContainers, bounds.maxStrings, bounds.maxValues);
}

/**
 * Counts the containers, strings and values of a JSON text in one pass over its UTF-8 bytes, skipping string contents
 * (brackets and quotes inside strings, escaped quotes included, are not counted). Multi-byte UTF-8 sequences
 * never contain ASCII bytes, so scanning bytes is exact. Text that is not valid JSON is counted all the same
 * (JSON.parse refuses it afterwards). With `bounds`, the scan stops at the first container or string past one
 * of them (a bomb is refused after a few MB, not after all of it) and `scannedBytes` says where.
 * Measured on a 2-core development machine under load: 120-260 ms for 64 MiB, whatever the content.
 */
export function countJsonCost(bytes: Uint8Array, bounds?: JsonCostBounds): JsonCost & { scannedBytes: number } {
  const maxContainers = bounds?.maxContainers ?? Number.POSITIVE_INFINITY;
  const maxStrings = bounds?.maxStrings ?? Number.POSITIVE_INFINITY;
  const maxValues = bounds?.maxValues ?? Number.POSITIVE_INFINITY;
  let containers = 0;
  let strings = 0;
  let values = 0;
  const length = bytes.length;
  let index = 0;
  while (index < length) {
    const byte = bytes[index++]!;
    if (byte === 0x22) {
      if (++strings > maxStrings) break;
      // The string's contents, to its closing quote; a backslash escapes the next byte whatever it is (\" and
      // \\ included; \uXXXX's digits are plain bytes).
      while (index < length) {
        const inner = bytes[index++]!;
        if (inner === 0x5c) index++;
        else if (inner === 0x22) break;
      }
    } else if (byte === 0x2c) {
      if (++values > maxValues) break;
    } else if (byte === 0x5b || byte === 0x7b) {
      if (++containers > maxContainers) break;
    }
  }
  return { containers, strings, values, scannedBytes: Math.min(index, length) };
}

const costErrors = new WeakSet<Error>();

/** Whether `error` is checkJsonCost's refusal (the API counts it as a limit that tripped). */
export function isJsonTooCostly(error: unknown): boolean {
  return error instanceof Error && costErrors.has(error);
}

/**
 * Refuses a JSON text that would cost more than the bounds to parse, before it is parsed.
 * @param what names the text in the message ('The request body', 'The JSON header').
 * @throws GantryError(INVALID_ARGUMENT) naming the bound, where it was passed and the fix (flat data, the binary
 * extension).
 */
export function checkJsonCost(bytes: Uint8Array, bounds: JsonCostBounds, what = 'The request body'): JsonCost {
  const cost = countJsonCost(bytes, bounds);
  const refuse = (excess: string) => {
    const error = errors.jsonTooComplex(what, excess);
    costErrors.add(error);
    return error;
  };
  const where = `within its first ${cost.scannedBytes} of ${bytes.length} bytes`;
  if (cost.containers > bounds.maxContainers) {
    throw refuse(`it holds more than ${bounds.maxContainers} arrays and objects (the most allowed), ${where}`);
  }
  if (cost.strings > bounds.maxStrings) {
    throw refuse(
      `it holds more than ${bounds.maxStrings} strings (the most allowed: GANTRY_MAX_BYTES_ELEMENTS + ${jsonStringMargin} for names and keys), ${where}`,
    );
  }
  if (cost.values > bounds.maxValues) throw refuse(`it holds more than ${bounds.maxValues} values (the most allowed), ${where}`);
  return { containers: cost.containers, strings: cost.strings, values: cost.values };
}
