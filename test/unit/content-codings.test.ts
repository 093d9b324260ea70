/**
 * Content codings of inference bodies: which Content-Encoding a request may carry, how a compressed body is read
 * (bounded while it inflates), and which coding an answer gets for an Accept-Encoding header.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import { ErrorCode, GantryError } from '../../src/errors.js';
import { InflightBytes } from '../../src/limits/inflight-bytes.js';
import { readDecompressedBody, requestCodingOf, type RequestCoding } from '../../src/api/request-decompression.js';
import { responseCodingFor } from '../../src/api/response-compression.js';

const tooLarge = () => new Error('too large as sent');
const decompressedTooLarge = () => new Error('too large decompressed');
const busy = () => new Error('busy');

/** Reads `chunks` as a request stream would deliver them. */
function read(chunks: Buffer[], coding: Exclude<RequestCoding, 'identity'>, limitBytes: number, budget = new InflightBytes(1024 ** 3)) {
  const reservation = budget.open();
  return {
    reservation,
    body: readDecompressedBody(Readable.from(chunks, { objectMode: false }), { coding, limitBytes, reservation, tooLarge, decompressedTooLarge, busy }),
  };
}

describe('requestCodingOf', () => {
  test('none, identity, gzip, x-gzip and deflate, in any case, with identity around one compressing coding', () => {
    assert.equal(requestCodingOf(undefined), 'identity');
    assert.equal(requestCodingOf('identity'), 'identity');
    assert.equal(requestCodingOf('GZip'), 'gzip');
    assert.equal(requestCodingOf('x-gzip'), 'gzip');
    assert.equal(requestCodingOf('deflate'), 'deflate');
    assert.equal(requestCodingOf('identity, deflate , identity'), 'deflate');
    assert.equal(requestCodingOf(''), 'identity');
  });

  test('any other coding, or two compressing ones, is a 415 naming the supported codings', () => {
    for (const header of ['br', 'compress', 'zstd', 'gzip, br', 'gzip, deflate', 'gzip, gzip']) {
      assert.throws(
        () => requestCodingOf(header),
        (error: unknown) =>
          error instanceof GantryError &&
          error.code === ErrorCode.InvalidArgument &&
          (error as GantryError & { statusCode: number }).statusCode === 415 &&
          /gzip/.test(error.message),
        header,
      );
    }
  });

  test('a long unknown coding is not echoed whole', () => {
    assert.throws(
      () => requestCodingOf('x'.repeat(10_000)),
      (error: Error) => error.message.length < 300,
    );
  });
});

describe('readDecompressedBody', () => {
  const original = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] }));

  test('gzip, zlib-wrapped deflate and bare deflate bodies come back whole, even sent a byte at a time', async () => {
    for (const [coding, compressed] of [
      ['gzip', gzipSync(original)],
      ['deflate', deflateSync(original)],
      ['deflate', deflateRawSync(original)],
    ] as const) {
      assert.deepEqual(await read([compressed], coding, 1024).body, original);
      const bytes = Array.from(compressed, (byte) => Buffer.from([byte]));
      assert.deepEqual(await read(bytes, coding, 1024).body, original);
    }
  });

  test('a body inflating past the limit is refused as soon as it passes, holding at most the limit and one chunk', async () => {
    const budget = new InflightBytes(1024 ** 3);
    let heldAtRefusal = -1;
    const reservation = budget.open();
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024));
    const body = readDecompressedBody(Readable.from([bomb], { objectMode: false }), {
      coding: 'gzip',
      limitBytes: 1024 * 1024,
      reservation,
      tooLarge,
      busy,
      decompressedTooLarge: () => {
        heldAtRefusal = reservation.heldBytes;
        return decompressedTooLarge();
      },
    });
    await assert.rejects(body, /too large decompressed/);
    assert.ok(heldAtRefusal >= 0 && heldAtRefusal <= 1024 * 1024, `held ${heldAtRefusal} bytes when refused`);
  });

  test('the in-flight budget counts decompressed bytes: a body that fits the budget compressed but not inflated is busy', async () => {
    const budget = new InflightBytes(100 * 1024);
    const refused = read([gzipSync(Buffer.alloc(512 * 1024))], 'gzip', 1024 * 1024, budget);
    await assert.rejects(refused.body, /busy/);
    // The caller releases a refused body's reservation (inference-body.ts does).
    refused.reservation.release();
    const fits = read([gzipSync(Buffer.alloc(64 * 1024))], 'gzip', 1024 * 1024, budget);
    assert.equal((await fits.body).byteLength, 64 * 1024);
    assert.equal(fits.reservation.heldBytes, 64 * 1024);
  });

  test('a body longer than the limit as sent is refused too', async () => {
    const incompressible = gzipSync(randomBytes(4096));
    assert.ok(incompressible.byteLength > 4096);
    await assert.rejects(read([incompressible], 'gzip', 1024).body, /too large as sent/);
  });

  test('corrupt, truncated and empty bodies are a 400 that says the body could not be decompressed', async () => {
    const compressed = gzipSync(original);
    const corrupt = Buffer.from(compressed);
    corrupt.fill(0x55, 10, 30);
    for (const [name, chunks, coding] of [
      ['corrupt', [corrupt], 'gzip'],
      ['truncated', [compressed.subarray(0, compressed.byteLength - 10)], 'gzip'],
      ['not gzip', [original], 'gzip'],
      ['one byte of deflate', [Buffer.from([0x78])], 'deflate'],
    ] as const) {
      await assert.rejects(
        read([...chunks], coding, 1024).body,
        (error: unknown) => error instanceof GantryError && error.code === ErrorCode.InvalidArgument && /could not be decompressed/.test(error.message),
        name,
      );
    }
    await assert.rejects(read([], 'gzip', 1024).body, (error: unknown) => error instanceof GantryError && /empty/.test(error.message));
  });
});

describe('responseCodingFor', () => {
  test('the acceptable coding the client weighs highest, gzip on a tie; none for q=0 or no header', () => {
    const cases: Array<[string | undefined, string | undefined]> = [
      [undefined, undefined],
      ['gzip', 'gzip'],
      ['deflate', 'deflate'],
      ['gzip, deflate', 'gzip'],
      ['deflate, gzip', 'gzip'],
      ['gzip;q=0.5, deflate', 'deflate'],
      ['gzip;q=0, deflate;q=0', undefined],
      ['identity', undefined],
      ['br', undefined],
      ['*', 'gzip'],
      ['*;q=0', undefined],
      ['gzip;q=0, *', 'deflate'],
      ['x-gzip', 'gzip'],
      ['GZIP ; Q=1', 'gzip'],
      ['gzip;q=abc', 'gzip'],
      ['br;q=1.0, gzip;q=0.8, *;q=0.1', 'gzip'],
    ];
    for (const [header, expected] of cases) assert.equal(responseCodingFor(header), expected, String(header));
  });
});
