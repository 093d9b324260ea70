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

/** Splits a BYTES tensor's raw form into its elements (views, no copies). */
export function readBytesElements(bytes: Uint8Array, tensorName = 'tensor'): Uint8Array[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const elements: Uint8Array[] = [];
  let offset = 0;
  while (offset < bytes.byteLength) {
    if (offset + 4 > bytes.byteLength) throw errors.invalidArgument(`BYTES tensor '${tensorName}' ends inside an element length.`);
    const length = view.getUint32(offset, true);
    offset += 4;
    if (offset + length > bytes.byteLength) {
      throw errors.invalidArgument(`BYTES tensor '${tensorName}' declares a ${length}-byte element past the end of its data.`);
    }
    elements.push(bytes.subarray(offset, offset + length));
    offset += length;
  }
  return elements;
}
