import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJsonData, encodeJsonData, flattenData, isNestingTooDeep, maxNestingDepth } from '../../src/protocol/json-tensor-codec.js';
import { typedView } from '../../src/protocol/typed-view.js';
import { ErrorCode, GantryError } from '../../src/errors.js';
import type { Datatype } from '../../src/protocol/datatypes.js';

function assertInvalid(fn: () => unknown, inputName: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof GantryError, `expected GantryError, got ${String(error)}`);
    assert.equal(error.code, ErrorCode.InvalidArgument);
    assert.match(error.message, new RegExp(`'${inputName}'`));
    return true;
  });
}

/** Values that survive a JSON round trip exactly for each datatype, plus the little-endian bytes expected. */
const roundTrips: { datatype: Datatype; values: unknown[]; expectedBytes?: number[] }[] = [
  { datatype: 'BOOL', values: [true, false, true, true], expectedBytes: [1, 0, 1, 1] },
  { datatype: 'UINT8', values: [0, 1, 128, 255], expectedBytes: [0, 1, 128, 255] },
  { datatype: 'UINT16', values: [0, 1, 0x1234, 65535], expectedBytes: [0, 0, 1, 0, 0x34, 0x12, 0xff, 0xff] },
  { datatype: 'UINT32', values: [0, 1, 0x12345678, 4294967295] },
  { datatype: 'UINT64', values: [0, 1, Number.MAX_SAFE_INTEGER, '18446744073709551615'] },
  { datatype: 'INT8', values: [-128, -1, 0, 127], expectedBytes: [0x80, 0xff, 0, 0x7f] },
  { datatype: 'INT16', values: [-32768, -1, 0, 32767], expectedBytes: [0, 0x80, 0xff, 0xff, 0, 0, 0xff, 0x7f] },
  { datatype: 'INT32', values: [-2147483648, -1, 0, 2147483647] },
  { datatype: 'INT64', values: [Number.MIN_SAFE_INTEGER, -1, 0, '9223372036854775807'] },
  { datatype: 'FP16', values: [1, -2, 65504, 0.5], expectedBytes: [0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x00, 0x38] },
  { datatype: 'FP32', values: [1.5, -0.25, 0, 3.4028234663852886e38] },
  { datatype: 'FP64', values: [Math.PI, -1e300, 0, Number.MIN_VALUE] },
  { datatype: 'BYTES', values: ['hello', '', 'żółw 🐢', 'x'.repeat(300)] },
];

describe('decodeJsonData / encodeJsonData round trip', () => {
  for (const { datatype, values, expectedBytes } of roundTrips) {
    test(datatype, () => {
      const bytes = decodeJsonData('in0', datatype, [2, 2], values);
      if (expectedBytes !== undefined) assert.deepEqual([...bytes], expectedBytes);
      assert.deepEqual(encodeJsonData(datatype, bytes), values);
    });
  }

  test('byte layout of BYTES is 4-byte little-endian length then bytes', () => {
    const bytes = decodeJsonData('s', 'BYTES', [2], ['ab', 'é']);
    assert.deepEqual([...bytes], [2, 0, 0, 0, 0x61, 0x62, 2, 0, 0, 0, 0xc3, 0xa9]);
  });

  test('FP32 rounds to float32 on the way in', () => {
    const bytes = decodeJsonData('f', 'FP32', [1], [0.1]);
    assert.deepEqual(encodeJsonData('FP32', bytes), [Math.fround(0.1)]);
  });

  test('scalar shape [] takes exactly one element', () => {
    assert.deepEqual(encodeJsonData('INT32', decodeJsonData('s', 'INT32', [], [7])), [7]);
    assert.deepEqual(encodeJsonData('INT32', decodeJsonData('s', 'INT32', [], 7)), [7]);
    assertInvalid(() => decodeJsonData('s', 'INT32', [], [7, 8]), 's');
  });

  test('zero-sized shape takes an empty list', () => {
    assert.equal(decodeJsonData('z', 'FP32', [0, 4], []).byteLength, 0);
    assert.deepEqual(encodeJsonData('FP32', new Uint8Array(0)), []);
  });
});

describe('nested vs flat data', () => {
  const cases: { datatype: Datatype; flat: unknown[] }[] = [
    { datatype: 'FP32', flat: [1, 2, 3, 4, 5, 6] },
    { datatype: 'INT64', flat: [1, -2, '9223372036854775807', 4, 5, 6] },
    { datatype: 'BOOL', flat: [true, false, false, true, true, false] },
    { datatype: 'BYTES', flat: ['a', 'bb', 'ccc', '', 'e', 'f'] },
    { datatype: 'FP16', flat: [0.5, 1, 2, 4, 8, 16] },
  ];
  for (const { datatype, flat } of cases) {
    test(`${datatype}: [[a,b,c],[d,e,f]] gives the same bytes as [a..f]`, () => {
      const nested = [flat.slice(0, 3), flat.slice(3)];
      const fromFlat = decodeJsonData('x', datatype, [2, 3], flat);
      const fromNested = decodeJsonData('x', datatype, [2, 3], nested);
      assert.ok(fromFlat.byteLength > 0);
      assert.deepEqual(Buffer.from(fromNested), Buffer.from(fromFlat));
    });
  }

  test('3-level nesting equals flat', () => {
    const nested = [
      [
        [1, 2],
        [3, 4],
      ],
      [
        [5, 6],
        [7, 8],
      ],
    ];
    assert.deepEqual(
      Buffer.from(decodeJsonData('x', 'INT16', [2, 2, 2], nested)),
      Buffer.from(decodeJsonData('x', 'INT16', [2, 2, 2], [1, 2, 3, 4, 5, 6, 7, 8])),
    );
  });
});

describe('64-bit integers', () => {
  test('INT64 beyond 2^53 accepted as strings and returned exactly as strings', () => {
    const values = ['9223372036854775807', '-9223372036854775808', '9007199254740993', '-9007199254740993'];
    const bytes = decodeJsonData('big', 'INT64', [4], values);
    assert.deepEqual([...new BigInt64Array(bytes.buffer, bytes.byteOffset, 4)], values.map(BigInt));
    assert.deepEqual(encodeJsonData('INT64', bytes), values);
  });

  test('UINT64 beyond 2^53 accepted as strings and returned exactly as strings', () => {
    const values = ['18446744073709551615', '9007199254740993', '9223372036854775808'];
    const bytes = decodeJsonData('big', 'UINT64', [3], values);
    assert.deepEqual([...new BigUint64Array(bytes.buffer, bytes.byteOffset, 3)], values.map(BigInt));
    assert.deepEqual(encodeJsonData('UINT64', bytes), values);
  });

  test('safe values come back as numbers, even when sent as strings', () => {
    const bytes = decodeJsonData('n', 'INT64', [4], ['42', -7, Number.MAX_SAFE_INTEGER, '-9007199254740991']);
    const out = encodeJsonData('INT64', bytes);
    assert.deepEqual(out, [42, -7, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER]);
    for (const value of out) assert.equal(typeof value, 'number');
    const unsigned = encodeJsonData('UINT64', decodeJsonData('n', 'UINT64', [2], [0, '12345']));
    assert.deepEqual(unsigned, [0, 12345]);
  });

  test('2^53 itself is returned as a string (not exactly representable as a safe integer)', () => {
    const out = encodeJsonData('INT64', decodeJsonData('n', 'INT64', [1], ['9007199254740992']));
    assert.deepEqual(out, ['9007199254740992']);
  });

  test('negative zero is 0, and exact decimal strings of the extremes are read exactly', () => {
    const signed = decodeJsonData('z', 'INT64', [3], [-0, '-9223372036854775808', '9223372036854775807']);
    assert.deepEqual([...new BigInt64Array(signed.buffer, signed.byteOffset, 3)], [0n, -(2n ** 63n), 2n ** 63n - 1n]);
    const unsigned = decodeJsonData('z', 'UINT64', [2], [-0, '18446744073709551615']);
    assert.deepEqual([...new BigUint64Array(unsigned.buffer, unsigned.byteOffset, 2)], [0n, 2n ** 64n - 1n]);
  });

  test('a 64-bit refusal names the element and the range, and says both forms are accepted', () => {
    assert.throws(
      () => decodeJsonData('ids', 'UINT64', [2], [1, '18446744073709551616']),
      /^GantryError: Input 'ids' \(UINT64\): element 1 is "18446744073709551616", expected an integer in UINT64 range \(0 to 18446744073709551615\), as a JSON number or a decimal string\.$/,
    );
    assert.throws(
      () => decodeJsonData('ids', 'INT64', [1], [2 ** 64]),
      /element 0 is 18446744073709552000, expected an integer in INT64 range \(-9223372036854775808 to 9223372036854775807\)/,
    );
  });

  test('a number JSON.parse read as Infinity (1e400) is named as too large, not as null', () => {
    const body = JSON.parse('[1e400]') as unknown[];
    assert.throws(() => decodeJsonData('big', 'INT64', [1], body), /element 0 is a number too large for a double, expected an integer in INT64 range/);
    assert.throws(() => decodeJsonData('big', 'FP32', [1], body), /element 0 is a number too large for a double, expected a number within/);
  });

  test('out-of-range and unsafe 64-bit values are rejected', () => {
    assertInvalid(() => decodeJsonData('i64', 'INT64', [1], ['9223372036854775808']), 'i64');
    assertInvalid(() => decodeJsonData('i64', 'INT64', [1], ['-9223372036854775809']), 'i64');
    assertInvalid(() => decodeJsonData('u64', 'UINT64', [1], ['18446744073709551616']), 'u64');
    assertInvalid(() => decodeJsonData('u64', 'UINT64', [1], [-1]), 'u64');
    assertInvalid(() => decodeJsonData('u64', 'UINT64', [1], ['-1']), 'u64');
    // 2^53 as a JSON number may already be rounded: refuse rather than guess.
    assertInvalid(() => decodeJsonData('i64', 'INT64', [1], [2 ** 53]), 'i64');
    assertInvalid(() => decodeJsonData('i64', 'INT64', [1], [1.5]), 'i64');
    assertInvalid(() => decodeJsonData('i64', 'INT64', [1], ['1.5']), 'i64');
    assertInvalid(() => decodeJsonData('i64', 'INT64', [1], ['0x10']), 'i64');
    assertInvalid(() => decodeJsonData('i64', 'INT64', [1], [' 1']), 'i64');
    assertInvalid(() => decodeJsonData('i64', 'INT64', [1], [true]), 'i64');
  });
});

describe('rejections name the input and use INVALID_ARGUMENT', () => {
  const integerBounds: [Datatype, number, number][] = [
    ['UINT8', 0, 255],
    ['UINT16', 0, 65535],
    ['UINT32', 0, 4294967295],
    ['INT8', -128, 127],
    ['INT16', -32768, 32767],
    ['INT32', -2147483648, 2147483647],
  ];
  for (const [datatype, low, high] of integerBounds) {
    test(`${datatype} range [${low}, ${high}]`, () => {
      decodeJsonData('ok', datatype, [2], [low, high]);
      assertInvalid(() => decodeJsonData('below', datatype, [1], [low - 1]), 'below');
      assertInvalid(() => decodeJsonData('above', datatype, [1], [high + 1]), 'above');
      assertInvalid(() => decodeJsonData('frac', datatype, [1], [1.5]), 'frac');
      assertInvalid(() => decodeJsonData('str', datatype, [1], ['1']), 'str');
      assertInvalid(() => decodeJsonData('nan', datatype, [1], [null]), 'nan');
    });
  }

  test('strings in FP32/FP64/FP16', () => {
    assertInvalid(() => decodeJsonData('f32', 'FP32', [2], [1, '2']), 'f32');
    assertInvalid(() => decodeJsonData('f64', 'FP64', [1], ['NaN']), 'f64');
    assertInvalid(() => decodeJsonData('f16', 'FP16', [1], [true]), 'f16');
  });

  test('numbers in BOOL', () => {
    assertInvalid(() => decodeJsonData('flag', 'BOOL', [2], [true, 1]), 'flag');
    assertInvalid(() => decodeJsonData('flag', 'BOOL', [1], ['true']), 'flag');
  });

  test('non-strings in BYTES', () => {
    assertInvalid(() => decodeJsonData('text', 'BYTES', [1], [5]), 'text');
  });

  test('wrong element count, too few and too many, flat and nested', () => {
    assertInvalid(() => decodeJsonData('count', 'FP32', [2, 3], [1, 2, 3, 4, 5]), 'count');
    assertInvalid(() => decodeJsonData('count', 'FP32', [2, 3], [1, 2, 3, 4, 5, 6, 7]), 'count');
    assertInvalid(
      () =>
        decodeJsonData(
          'count',
          'FP32',
          [2, 3],
          [
            [1, 2, 3],
            [4, 5],
          ],
        ),
      'count',
    );
    assertInvalid(() => decodeJsonData('count', 'BYTES', [2], ['a']), 'count');
  });

  test('the message says which element is wrong', () => {
    assert.throws(() => decodeJsonData('pos', 'INT8', [3], [1, 2, 300]), /element 2/);
  });
});

describe('flattenData', () => {
  test('non-array becomes a single-element list', () => {
    assert.deepEqual(flattenData(5), [5]);
  });

  test('flat array passes through', () => {
    assert.deepEqual(flattenData([1, 2, 3]), [1, 2, 3]);
  });

  test('mixed nesting flattens row-major', () => {
    assert.deepEqual(flattenData([1, [2, [3, [4]], 5], [], [[6]]]), [1, 2, 3, 4, 5, 6]);
  });

  test('very deep nesting (100 000 levels) does not overflow the stack', () => {
    let deep: unknown = [42];
    for (let level = 0; level < 100_000; level++) deep = [deep];
    assert.deepEqual(flattenData(deep), [42]);
  });

  test('wide nested array keeps order', () => {
    const rows = Array.from({ length: 1000 }, (_, row) => [row * 2, row * 2 + 1]);
    const flat = flattenData(rows);
    assert.equal(flat.length, 2000);
    assert.deepEqual(
      flat,
      Array.from({ length: 2000 }, (_, index) => index),
    );
  });
});

describe('typedView', () => {
  test('misaligned Buffer (subarray(1)) gives the correct values', () => {
    const floats = new Float32Array([1.5, -2.25, 1e10, 0]);
    const backing = Buffer.alloc(1 + floats.byteLength);
    Buffer.from(floats.buffer).copy(backing, 1);
    const misaligned = backing.subarray(1);
    assert.notEqual(misaligned.byteOffset % 4, 0);
    const view = typedView('FP32', misaligned);
    assert.deepEqual([...view], [...floats]);
  });

  test('misaligned INT64/FP64/UINT16 views', () => {
    const int64 = new BigInt64Array([-1n, 9223372036854775807n, 5n]);
    const backing = Buffer.alloc(3 + int64.byteLength);
    Buffer.from(int64.buffer).copy(backing, 3);
    assert.deepEqual([...typedView('INT64', backing.subarray(3))], [...int64]);

    const doubles = new Float64Array([Math.E, -0.5]);
    const backing2 = Buffer.alloc(5 + doubles.byteLength);
    Buffer.from(doubles.buffer).copy(backing2, 5);
    assert.deepEqual([...typedView('FP64', backing2.subarray(5))], [...doubles]);

    const shorts = Buffer.from([0xff, 0x34, 0x12, 0xcd, 0xab]).subarray(1);
    assert.deepEqual([...typedView('UINT16', shorts)], [0x1234, 0xabcd]);
  });

  test('misaligned view does not alias or read outside its window', () => {
    // A pooled Buffer.from(...) may share memory with neighbours; the view must cover only its own bytes.
    const bytes = Buffer.from([9, 1, 0, 0, 0, 2, 0, 0, 0, 9]).subarray(1, 9);
    const view = typedView('INT32', bytes);
    assert.deepEqual([...view], [1, 2]);
  });

  test('aligned views are not copied (share memory)', () => {
    const floats = new Float32Array([1, 2]);
    const bytes = new Uint8Array(floats.buffer);
    const view = typedView('FP32', bytes);
    floats[0] = 7;
    assert.equal(view[0], 7);
  });

  test('encodeJsonData on misaligned bytes', () => {
    const ints = new Int32Array([-5, 6, 2147483647]);
    const backing = Buffer.alloc(2 + ints.byteLength);
    Buffer.from(ints.buffer).copy(backing, 2);
    assert.deepEqual(encodeJsonData('INT32', backing.subarray(2)), [-5, 6, 2147483647]);
  });
});

test("finite JSON numbers beyond a float type's range are refused instead of becoming Infinity", () => {
  for (const [datatype, tooLarge] of [
    ['FP32', 1e39],
    ['FP16', 70000],
    ['FP32', -1e39],
  ] as const) {
    assert.throws(
      () => decodeJsonData('x', datatype, [1], [tooLarge]),
      (error: unknown) => error instanceof GantryError && error.code === ErrorCode.InvalidArgument && /Input 'x'/.test(error.message),
    );
  }
  assert.doesNotThrow(() => decodeJsonData('x', 'FP32', [1], [3.4e38]));
  assert.doesNotThrow(() => decodeJsonData('x', 'FP64', [1], [1e300]));
});

describe('nesting depth of data', () => {
  const deepArray = (levels: number, leaf: unknown): unknown => {
    let value = leaf;
    for (let level = 0; level < levels; level++) value = [value];
    return value;
  };

  test('nested as the shape, or flat, or with two more levels, is accepted', () => {
    assert.equal(maxNestingDepth(2), 4);
    assert.equal(maxNestingDepth(0), 3);
    assert.equal(decodeJsonData('x', 'INT32', [1, 1], deepArray(4, 7)).byteLength, 4);
  });

  test('200,000 levels deep is a 400 naming the input and the limit, never a stack overflow', () => {
    const data = deepArray(200_000, 1);
    assert.throws(
      () => decodeJsonData('x', 'FP32', [1, 1], data),
      (error: unknown) => error instanceof GantryError && isNestingTooDeep(error) && /Input 'x': 'data' is nested more than 4 levels deep/.test(error.message),
    );
  });

  test('a deep element among correct ones is refused too (it flattened to the right count before)', () => {
    const data = [deepArray(10, 1), 2, 3];
    assert.throws(
      () => decodeJsonData('x', 'FP32', [3], data),
      (error: unknown) => isNestingTooDeep(error),
    );
  });
});
