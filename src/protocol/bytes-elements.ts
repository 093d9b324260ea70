import { errors } from '../errors.js';

/** Packs BYTES elements in the binary extension's layout: a 4-byte little-endian length, then the bytes. */
export function writeBytesElements(elements: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const element of elements) total += 4 + element.byteLength;
  const out = Buffer.allocUnsafe(total);
  let offset = 0;
  for (const element of elements) {
    out.writeUInt32LE(element.byteLength, offset);
    out.set(element, offset + 4);
    offset += 4 + element.byteLength;
  }
  return out;
}

/**
 * Calls `visit(start, end)` for each element's byte range, walking the lengths only: no object is made per
 * element, so a 100 MB body of empty elements (25 M of them) costs no memory to check. Stops early once more
 * than `stopAfter` elements were seen (the caller refuses the tensor then anyway).
 * @returns how many elements there are (or `stopAfter + 1` when it stopped early).
 * @throws GantryError(INVALID_ARGUMENT) naming the tensor when a length runs past the end of the data.
 */
function walkBytesElements(bytes: Uint8Array, tensorName: string, stopAfter: number, visit?: (start: number, end: number) => void): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let count = 0;
  let offset = 0;
  while (offset < bytes.byteLength) {
    if (count > stopAfter) return count;
    if (offset + 4 > bytes.byteLength) throw errors.invalidArgument(`BYTES tensor '${tensorName.slice(0, 100)}' ends inside an element length.`);
    const length = view.getUint32(offset, true);
    offset += 4;
    if (offset + length > bytes.byteLength) {
      throw errors.invalidArgument(`BYTES tensor '${tensorName.slice(0, 100)}' declares a ${length}-byte element past the end of its data.`);
    }
    visit?.(offset, offset + length);
    offset += length;
    count += 1;
  }
  return count;
}

/**
 * Counts the elements of a BYTES tensor's raw form without allocating anything per element.
 * @param stopAfter stop walking once more than this many were seen (default: walk everything).
 * @throws GantryError(INVALID_ARGUMENT) when the layout is broken.
 */
export function countBytesElements(bytes: Uint8Array, tensorName = 'tensor', stopAfter = Number.MAX_SAFE_INTEGER): number {
  return walkBytesElements(bytes, tensorName, stopAfter);
}

/** Splits a BYTES tensor's raw form into its elements (views, no copies). One object per element: small tensors only. */
export function readBytesElements(bytes: Uint8Array, tensorName = 'tensor'): Uint8Array[] {
  const elements: Uint8Array[] = [];
  walkBytesElements(bytes, tensorName, Number.MAX_SAFE_INTEGER, (start, end) => elements.push(bytes.subarray(start, end)));
  return elements;
}

/**
 * Decodes a BYTES tensor's elements as UTF-8 strings (what onnxruntime's string tensors and JSON need), one
 * string per element and nothing else: no intermediate view per element, and empty elements all share the one
 * empty string.
 */
export function readBytesStrings(bytes: Uint8Array, tensorName = 'tensor'): string[] {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const strings: string[] = [];
  walkBytesElements(bytes, tensorName, Number.MAX_SAFE_INTEGER, (start, end) => strings.push(start === end ? '' : buffer.toString('utf8', start, end)));
  return strings;
}

/**
 * Packs strings as BYTES elements (UTF-8) in the binary extension's layout, writing each straight into one
 * buffer: no encoded copy per element (the inverse of readBytesStrings, for onnxruntime's string outputs).
 */
export function writeBytesStrings(strings: readonly string[]): Uint8Array {
  let total = 0;
  for (const text of strings) total += 4 + Buffer.byteLength(text, 'utf8');
  const out = Buffer.allocUnsafe(total);
  let offset = 0;
  for (const text of strings) {
    const length = text.length === 0 ? 0 : out.write(text, offset + 4, 'utf8');
    out.writeUInt32LE(length, offset);
    offset += 4 + length;
  }
  return out;
}
