import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, GantryError } from '../../src/errors.js';
import { readBytesElements } from '../../src/protocol/bytes-elements.js';
import { datatypes, type Datatype } from '../../src/protocol/datatypes.js';
import { toFloat16Bits } from '../../src/protocol/float16.js';
import { contentsFieldOf, decodeTypedContents, type TypedContents } from '../../src/protocol/typed-contents.js';
import { typedView } from '../../src/protocol/typed-view.js';

/** The values a decoded numeric tensor holds, read back through the same views the rest of Gantry uses. */
function valuesOf(datatype: Exclude<Datatype, 'BYTES'>, bytes: Uint8Array): Array<number | bigint> {
  return Array.from(typedView(datatype, bytes) as ArrayLike<number | bigint>);
}

function refusal(run: () => unknown): GantryError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof GantryError);
    assert.equal(error.code, ErrorCode.InvalidArgument);
    return error;
  }
  assert.fail('not refused');
}

describe('gRPC typed tensor contents (InferTensorContents)', () => {
  test('each datatype reads its own field, as the protocol lists them', () => {
    const expected: Record<Datatype, keyof TypedContents> = {
      BOOL: 'bool_contents',
      INT8: 'int_contents',
      INT16: 'int_contents',
      INT32: 'int_contents',
      INT64: 'int64_contents',
      UINT8: 'uint_contents',
      UINT16: 'uint_contents',
      UINT32: 'uint_contents',
      UINT64: 'uint64_contents',
      FP16: 'fp32_contents',
      FP32: 'fp32_contents',
      FP64: 'fp64_contents',
      BYTES: 'bytes_contents',
    };
    for (const datatype of datatypes) assert.equal(contentsFieldOf(datatype), expected[datatype], datatype);
  });

  test('32-bit and smaller integers at the ends of their ranges', () => {
    const cases: Array<[Exclude<Datatype, 'BYTES'>, number[]]> = [
      ['INT8', [-128, 0, 127]],
      ['INT16', [-32768, 1, 32767]],
      ['INT32', [-2147483648, -1, 2147483647]],
      ['UINT8', [0, 1, 255]],
      ['UINT16', [0, 2, 65535]],
      ['UINT32', [0, 3, 4294967295]],
    ];
    for (const [datatype, values] of cases) {
      const field = contentsFieldOf(datatype);
      const bytes = decodeTypedContents('x', datatype, [3], { [field]: values });
      assert.deepEqual(valuesOf(datatype, bytes), values, datatype);
    }
  });

  test('64-bit integers stay exact from decimal strings, bigints and safe numbers', () => {
    const int64 = decodeTypedContents('x', 'INT64', [4], { int64_contents: ['-9223372036854775808', '9223372036854775807', 9007199254740993n, -5] });
    assert.deepEqual(valuesOf('INT64', int64), [-(2n ** 63n), 2n ** 63n - 1n, 9007199254740993n, -5n]);
    const uint64 = decodeTypedContents('x', 'UINT64', [2], { uint64_contents: ['18446744073709551615', '0'] });
    assert.deepEqual(valuesOf('UINT64', uint64), [2n ** 64n - 1n, 0n]);
  });

  test('floats: FP32 and FP64 as given, FP16 rounded to half precision from fp32_contents', () => {
    assert.deepEqual(valuesOf('FP32', decodeTypedContents('x', 'FP32', [2], { fp32_contents: [1.5, -0.25] })), [1.5, -0.25]);
    assert.deepEqual(valuesOf('FP64', decodeTypedContents('x', 'FP64', [2], { fp64_contents: [0.1, 1e300] })), [0.1, 1e300]);
    assert.deepEqual(valuesOf('FP16', decodeTypedContents('x', 'FP16', [3], { fp32_contents: [1, -2.5, 65504] })), [
      toFloat16Bits(1),
      toFloat16Bits(-2.5),
      toFloat16Bits(65504),
    ]);
  });

  test('BOOL as one byte each, BYTES as length-prefixed elements', () => {
    assert.deepEqual([...decodeTypedContents('x', 'BOOL', [3], { bool_contents: [true, false, true] })], [1, 0, 1]);
    const bytes = decodeTypedContents('x', 'BYTES', [2], { bytes_contents: [Buffer.from('héllo'), Buffer.alloc(0)] });
    assert.deepEqual(
      readBytesElements(bytes).map((element) => Buffer.from(element).toString()),
      ['héllo', ''],
    );
  });

  test('a scalar takes one element; empty fields of other datatypes are ignored (protobuf cannot tell them from absent)', () => {
    const bytes = decodeTypedContents('x', 'INT32', [], { int_contents: [7], fp32_contents: [], bytes_contents: [] });
    assert.deepEqual(valuesOf('INT32', bytes), [7]);
  });

  test("another datatype's field is refused naming the input and the right field", () => {
    const error = refusal(() => decodeTypedContents('pixels', 'FP32', [2], { int_contents: [1, 2] }));
    assert.equal(error.message, "Input 'pixels': FP32 elements go in 'fp32_contents', but 'int_contents' holds 2 elements.");
  });

  test('a count that differs from the shape is refused', () => {
    assert.equal(
      refusal(() => decodeTypedContents('x', 'INT32', [2, 2], { int_contents: [1, 2, 3] })).message,
      "Input 'x': shape [2,2] needs 4 elements but 'int_contents' holds 3.",
    );
    assert.equal(refusal(() => decodeTypedContents('x', 'FP32', [1], {})).message, "Input 'x': shape [1] needs 1 elements but 'fp32_contents' holds 0.");
  });

  test('values out of range or not exact are refused naming the element', () => {
    assert.match(
      refusal(() => decodeTypedContents('x', 'INT8', [1], { int_contents: [128] })).message,
      /^Input 'x': element 0 of 'int_contents' .*outside INT8's range -128\.\.127\.$/,
    );
    assert.match(
      refusal(() => decodeTypedContents('x', 'UINT16', [2], { uint_contents: [1, -1] })).message,
      /element 1 of 'uint_contents'.*outside UINT16's range/,
    );
    assert.match(refusal(() => decodeTypedContents('x', 'INT32', [1], { int_contents: [1.5] })).message, /is not an integer/);
    assert.match(refusal(() => decodeTypedContents('x', 'INT64', [1], { int64_contents: ['9223372036854775808'] })).message, /outside INT64's range/);
    assert.match(refusal(() => decodeTypedContents('x', 'UINT64', [1], { uint64_contents: ['-1'] })).message, /outside UINT64's range/);
    assert.match(refusal(() => decodeTypedContents('x', 'INT64', [1], { int64_contents: [2 ** 60] })).message, /not an exact integer/);
    assert.match(refusal(() => decodeTypedContents('x', 'INT64', [1], { int64_contents: ['12abc'] })).message, /not an exact integer/);
    assert.match(refusal(() => decodeTypedContents('x', 'BOOL', [1], { bool_contents: [1 as unknown as boolean] })).message, /not true or false/);
    assert.match(refusal(() => decodeTypedContents('x', 'BYTES', [1], { bytes_contents: ['text' as unknown as Uint8Array] })).message, /not bytes/);
  });
});
