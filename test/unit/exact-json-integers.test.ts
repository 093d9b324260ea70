import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { splitBinaryBody } from '../../src/protocol/binary-extension.js';
import { exactIntegerText, restoreExactIntegers } from '../../src/protocol/exact-json-integers.js';
import { decodeJsonData, isNestingTooDeep } from '../../src/protocol/json-tensor-codec.js';
import { ErrorCode, GantryError } from '../../src/errors.js';

/** The input's data decoded as the route decodes it, read back as bigints. */
function decodedValues(datatype: 'INT64' | 'UINT64', shape: number[], data: unknown): bigint[] {
  const bytes = decodeJsonData('x', datatype, shape, data);
  const View = datatype === 'INT64' ? BigInt64Array : BigUint64Array;
  return [...new View(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength / 8)];
}

/** A request body with one input whose `data` is written as raw JSON text (numbers JSON.stringify would round). */
function bodyWithData(datatype: string, shape: number[], dataText: string): string {
  return `{"inputs":[{"name":"x","datatype":"${datatype}","shape":${JSON.stringify(shape)},"data":${dataText}}]}`;
}

function inputData(bodyText: string, index = 0): unknown {
  const { header } = splitBinaryBody(Buffer.from(bodyText), undefined);
  return (header as { inputs: Array<{ data: unknown }> }).inputs[index]!.data;
}

function assertRefused(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof GantryError, String(error));
    assert.equal(error.code, ErrorCode.InvalidArgument);
    assert.match(error.message, pattern);
    assert.ok(error.message.length < 300, `message too long: ${error.message.length}`);
    return true;
  });
}

describe('exactIntegerText', () => {
  test('integers in any JSON number form, exactly', () => {
    const cases: Array<[string, string]> = [
      ['9007199254740993', '9007199254740993'],
      ['-9223372036854775808', '-9223372036854775808'],
      ['18446744073709551615', '18446744073709551615'],
      ['-0', '0'],
      ['0e99999', '0'],
      ['1e3', '1000'],
      ['1E+3', '1000'],
      ['1.5e1', '15'],
      ['12300e-2', '123'],
      ['9007199254740993.000', '9007199254740993'],
      ['1e19', '10000000000000000000'],
      ['0.00018446744073709551615e23', '18446744073709551615'],
    ];
    for (const [text, expected] of cases) assert.equal(exactIntegerText(text), expected, text);
  });

  test('not an integer, or more than 20 digits: undefined', () => {
    for (const text of ['0.5', '1.25e1', '123e-2', '9007199254740993.5', '1e20', '123456789012345678901', '1e999999999', '1e-999999999', 'abc', '']) {
      assert.equal(exactIntegerText(text), undefined, text);
    }
  });
});

describe('splitBinaryBody reads INT64/UINT64 JSON numbers exactly', () => {
  test('the extremes and 2^53 + 1, as Triton and tritonclient write them', () => {
    const int64 = inputData(bodyWithData('INT64', [1, 5], '[[-9223372036854775808, 9223372036854775807, 9007199254740993, -9007199254740993, -0]]'));
    assert.deepEqual(decodedValues('INT64', [1, 5], int64), [-(2n ** 63n), 2n ** 63n - 1n, 2n ** 53n + 1n, -(2n ** 53n) - 1n, 0n]);
    const uint64 = inputData(bodyWithData('UINT64', [3], '[18446744073709551615, 9007199254740993, 0]'));
    assert.deepEqual(decodedValues('UINT64', [3], uint64), [2n ** 64n - 1n, 2n ** 53n + 1n, 0n]);
  });

  test('nesting is kept, strings and numbers mix, exponent forms of integers are read as those integers', () => {
    const data = inputData(bodyWithData('INT64', [2, 3], '[["-42", 9007199254740993, 1e3], [7, "9223372036854775807", 9.007199254740993e15]]'));
    assert.deepEqual(data, [
      ['-42', '9007199254740993', 1000],
      [7, '9223372036854775807', '9007199254740993'],
    ]);
    assert.deepEqual(decodedValues('INT64', [2, 3], data), [-42n, 2n ** 53n + 1n, 1000n, 7n, 2n ** 63n - 1n, 2n ** 53n + 1n]);
  });

  test('a scalar data value (not in an array) is read exactly too', () => {
    assert.equal(inputData(bodyWithData('UINT64', [], '18446744073709551615')), '18446744073709551615');
  });

  test('only 64-bit inputs holding a number of 2^53 or more change; everything else is what JSON.parse gave', () => {
    const text =
      '{"id":"9007199254740993","inputs":[' +
      '{"name":"f","datatype":"FP32","shape":[2],"data":[1e20, 9007199254740993]},' +
      '{"name":"small","datatype":"INT64","shape":[2],"data":[1, 2]},' +
      '{"name":"big","datatype":"UINT64","shape":[1],"data":[9007199254740993]}]}';
    const { header } = splitBinaryBody(Buffer.from(text), undefined);
    const parsed = JSON.parse(text);
    parsed.inputs[2].data = ['9007199254740993'];
    assert.deepEqual(header, parsed);
  });

  test('JSON layout the scanner must walk: whitespace, escaped keys and strings, duplicate keys (the last wins)', () => {
    const text = [
      '{ "parameters" : { "note" : "a \\"quoted\\" ] } [ { value", "path": "C:\\\\" } ,',
      '  "inputs" : [ { "name": "decoy", "datatype": "INT64", "shape": [1], "data": [1] } ],',
      '  "inputs" :',
      '  [',
      '    { "name" : "s\\"]}", "datatype" : "BYTES", "shape" : [ 1 ], "data" : [ "[9007199254740993]" ] } ,',
      '    { "name" : "x", "datatype" : "INT64", "shape" : [ 2 ],',
      '      "data" : [ 1, 2 ], "d\\u0061ta" : [ 9007199254740993 ,\r\n\t-9007199254740995 ] }',
      '  ]',
      '}',
    ].join('\n');
    const { header } = splitBinaryBody(Buffer.from(text), undefined);
    const inputs = (header as { inputs: Array<{ name: string; data: unknown }> }).inputs;
    assert.equal(inputs.length, 2);
    assert.deepEqual(inputs[0]!.data, ['[9007199254740993]']);
    assert.deepEqual(inputs[1]!.data, ['9007199254740993', '-9007199254740995']);
  });

  test('a binary-extension body: only the JSON part is read, whatever bytes follow', () => {
    const json = Buffer.from(bodyWithData('INT64', [1], '[9223372036854775807]'));
    const tail = Buffer.from(',"data":[1],"inputs":[]}]} 12345678901234567890');
    const { header, binary } = splitBinaryBody(Buffer.concat([json, tail]), String(json.byteLength));
    assert.deepEqual((header as { inputs: Array<{ data: unknown }> }).inputs[0]!.data, ['9223372036854775807']);
    assert.equal(binary.byteLength, tail.byteLength);
  });

  test('out of range, fractions and huge values are refused naming the input and the element, without echoing the value', () => {
    const decode = (datatype: 'INT64' | 'UINT64', shape: number[], dataText: string) => () =>
      decodeJsonData('x', datatype, shape, inputData(bodyWithData(datatype, shape, dataText)));
    assertRefused(
      decode('UINT64', [2, 2], '[[1, 2], [3, 18446744073709551616]]'),
      /Input 'x' \(UINT64\): element 3 is .*expected an integer in UINT64 range \(0 to 18446744073709551615\)/,
    );
    assertRefused(decode('INT64', [1], '[9223372036854775808]'), /element 0 .*INT64 range/);
    assertRefused(decode('INT64', [2], '[0, -9223372036854775809]'), /element 1 .*INT64 range/);
    assertRefused(decode('UINT64', [1], '[-9007199254740993]'), /element 0 .*UINT64 range/);
    assertRefused(decode('INT64', [1], '[9007199254740993.5]'), /element 0 .*INT64 range/);
    assertRefused(decode('INT64', [1], '[1.5e300]'), /element 0 .*INT64 range/);
    assertRefused(decode('INT64', [1], `[1${'0'.repeat(5000)}]`), /element 0 .*INT64 range/);
    assertRefused(decode('INT64', [1], '[1.5]'), /element 0 .*INT64 range/);
  });

  test('data nested deeper than allowed is not read again: decoding refuses its nesting', () => {
    const deep = `${'['.repeat(8)}9007199254740993${']'.repeat(8)}`;
    const data = inputData(bodyWithData('INT64', [1], deep));
    assert.throws(
      () => decodeJsonData('x', 'INT64', [1], data),
      (error: unknown) => isNestingTooDeep(error),
    );
  });
});

describe('restoreExactIntegers', () => {
  test('leaves requests that are not inference requests alone', () => {
    for (const text of ['null', '[]', '{"inputs":{}}', '{"inputs":[null, 3, {"datatype":"INT64"}]}', '5']) {
      const header = JSON.parse(text);
      restoreExactIntegers(header, text);
      assert.deepEqual(header, JSON.parse(text), text);
    }
  });
});
