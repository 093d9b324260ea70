import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { countBytesElements, readBytesElements, readBytesStrings, writeBytesElements, writeBytesStrings } from '../../src/protocol/bytes-elements.js';
import { GantryError } from '../../src/errors.js';

const sample = ['', 'a', 'héllo', '', '日本語', 'x'.repeat(300)];

describe('BYTES elements without one object per element', () => {
  test('writeBytesStrings packs exactly like writeBytesElements of the UTF-8 encodings', () => {
    const expected = writeBytesElements(sample.map((text) => Buffer.from(text, 'utf8')));
    assert.deepEqual(Buffer.from(writeBytesStrings(sample)), Buffer.from(expected));
  });

  test('readBytesStrings and countBytesElements read back what was written', () => {
    const packed = writeBytesStrings(sample);
    assert.deepEqual(readBytesStrings(packed), sample);
    assert.equal(countBytesElements(packed), sample.length);
    assert.deepEqual(
      readBytesElements(packed).map((element) => Buffer.from(element).toString('utf8')),
      sample,
    );
  });

  test('a view at an offset inside a larger buffer reads only its own bytes', () => {
    const packed = Buffer.from(writeBytesStrings(['ab', 'c']));
    const padded = Buffer.concat([Buffer.from([9, 9, 9]), packed, Buffer.from([7])]);
    assert.deepEqual(readBytesStrings(padded.subarray(3, 3 + packed.byteLength)), ['ab', 'c']);
  });

  test('countBytesElements stops once past stopAfter (25 M empty elements are not all walked)', () => {
    const manyEmpty = Buffer.alloc(4 * 1000);
    assert.equal(countBytesElements(manyEmpty), 1000);
    assert.equal(countBytesElements(manyEmpty, 't', 10), 11);
  });

  test('a length past the end, or a cut length, is a 400 naming the tensor', () => {
    const broken = Buffer.from([5, 0, 0, 0, 1, 2]);
    assert.throws(
      () => countBytesElements(broken, 'text'),
      (error: unknown) => error instanceof GantryError && /'text' declares a 5-byte element past the end/.test(error.message),
    );
    assert.throws(() => readBytesStrings(Buffer.from([1, 0]), 'text'), /'text' ends inside an element length/);
  });
});
