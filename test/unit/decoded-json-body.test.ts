import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJsonBody, decodedDataMarker, jsonPartLength } from '../../src/protocol/decoded-json-body.js';
import { jsonCostBounds } from '../../src/protocol/json-cost.js';
import { decodeErrorFromWire, decodeJsonData, isNestingTooDeep } from '../../src/protocol/json-tensor-codec.js';
import { ErrorCode, GantryError } from '../../src/errors.js';

const options = { headerLength: undefined, maxJsonBytes: 64 * 1024 ** 2, bounds: jsonCostBounds(1_000_000) };

describe('decodeJsonBody', () => {
  test('decodes each input as decodeJsonData does and leaves a marker in place of its data', () => {
    const request = {
      id: 'r1',
      inputs: [
        {
          name: 'a',
          datatype: 'FP32',
          shape: [2, 2],
          data: [
            [1, 2],
            [3, 4.5],
          ],
        },
        { name: 'b', datatype: 'BYTES', shape: [2], data: ['x', 'héllo'] },
        { name: 'c', datatype: 'INT64', shape: [1], data: ['9223372036854775807'] },
      ],
    };
    const decoded = decodeJsonBody(Buffer.from(JSON.stringify(request)), options);
    const header = decoded.header as typeof request;
    assert.equal(header.id, 'r1');
    for (const [index, input] of request.inputs.entries()) {
      assert.equal(header.inputs[index]!.data, decodedDataMarker);
      assert.deepEqual(header.inputs[index]!.shape, input.shape);
      const expected = decodeJsonData(input.name, input.datatype as never, input.shape, input.data);
      assert.deepEqual(Buffer.from(decoded.inputs[index]!.bytes!), Buffer.from(expected));
    }
    assert.equal(decoded.binaryOffset, Buffer.byteLength(JSON.stringify(request)));
  });

  test('a decode error is returned for that input, not thrown, and rebuilds as the same error (nesting flag included)', () => {
    const deep = `${'['.repeat(10)}1${']'.repeat(10)}`;
    const text = `{"inputs":[{"name":"ok","datatype":"UINT8","shape":[1],"data":[1]},{"name":"bad","datatype":"UINT8","shape":[1],"data":[300]},{"name":"deep","datatype":"FP32","shape":[1],"data":${deep}}]}`;
    const decoded = decodeJsonBody(Buffer.from(text), options);
    assert.deepEqual([...decoded.inputs[0]!.bytes!], [1]);
    const bad = decodeErrorFromWire(decoded.inputs[1]!.error!);
    assert.ok(bad instanceof GantryError);
    assert.equal(bad.code, ErrorCode.InvalidArgument);
    assert.match(bad.message, /Input 'bad' \(UINT8\): element 0 is 300, expected an integer from 0 to 255/);
    assert.equal(isNestingTooDeep(bad), false);
    const deepError = decodeErrorFromWire(decoded.inputs[2]!.error!);
    assert.match(deepError.message, /'data' is nested more than 3 levels deep/);
    assert.ok(isNestingTooDeep(deepError));
  });

  test('inputs the route refuses before decoding (unknown datatype, bad shape, no name) are left undecoded', () => {
    const text = JSON.stringify({
      inputs: [
        { name: 'x', datatype: 'BF16', shape: [1], data: [1] },
        { name: 'y', datatype: 'FP32', shape: 'wide', data: [1] },
        { datatype: 'FP32', shape: [1], data: [1] },
      ],
    });
    const decoded = decodeJsonBody(Buffer.from(text), options);
    assert.deepEqual([decoded.inputs[0], decoded.inputs[1], decoded.inputs[2]], [undefined, undefined, undefined]);
    assert.deepEqual(
      (decoded.header as { inputs: Array<{ data: unknown }> }).inputs.map((input) => input.data),
      [[1], [1], [1]],
    );
  });

  test('absent or null data stays absent or null (the binary extension tells them from given data)', () => {
    const text = JSON.stringify({
      inputs: [
        { name: 'x', datatype: 'FP32', shape: [1], parameters: { binary_data_size: 4 } },
        { name: 'y', datatype: 'FP32', shape: [1], data: null },
      ],
    });
    const decoded = decodeJsonBody(Buffer.from(text), options);
    const inputs = (decoded.header as { inputs: Array<{ data?: unknown }> }).inputs;
    assert.equal('data' in inputs[0]!, false);
    assert.equal(inputs[1]!.data, null);
    assert.ok(decoded.inputs[0]!.error !== undefined, 'decoding no data is the error the route would meet');
  });

  test('a binary-extension body: only the JSON header is parsed, the binary part starts after it', () => {
    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1], parameters: { binary_data_size: 4 } }] }));
    const body = Buffer.concat([header, Buffer.from([0x5b, 0x5b, 0x7b, 0x22])]);
    const decoded = decodeJsonBody(body, { ...options, headerLength: String(header.byteLength) });
    assert.equal(decoded.binaryOffset, header.byteLength);
  });

  test('too costly or invalid JSON throws (the whole body is refused), before any parse for the cost', () => {
    assert.throws(
      () => decodeJsonBody(Buffer.from('[[],[],[]]'), { ...options, bounds: { maxContainers: 2, maxStrings: 10, maxValues: 10 } }),
      /more than 2 arrays and objects/,
    );
    assert.throws(() => decodeJsonBody(Buffer.from('{"inputs": ['), options), /The request body is not valid JSON/);
    const header = '[[],[],[]]';
    assert.throws(
      () =>
        decodeJsonBody(Buffer.from(header + 'rest'), {
          ...options,
          headerLength: String(header.length),
          bounds: { maxContainers: 2, maxStrings: 10, maxValues: 10 },
        }),
      /The JSON header \(first 10 bytes of the body\) is too costly/,
    );
  });
});

describe("decodeJsonBody: INT64/UINT64 JSON numbers exact (the parse thread's path)", () => {
  const text =
    '{"inputs":[{"name":"s","datatype":"INT64","shape":[2,2],"data":[[-9223372036854775808,9223372036854775807],["9007199254740993",-0]]},' +
    '{"name":"u","datatype":"UINT64","shape":[2],"data":[18446744073709551615,9007199254740993]},' +
    '{"name":"f","datatype":"FP32","shape":[1],"data":[1e20]}]}';

  function bigints(decoded: ReturnType<typeof decodeJsonBody>, index: number, View: BigInt64ArrayConstructor | BigUint64ArrayConstructor): bigint[] {
    const bytes = Buffer.from(decoded.inputs[index]!.bytes!);
    return [...new View(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength / 8)];
  }

  test('a JSON body: the extremes decode exactly, and the data is replaced by the marker as for any input', () => {
    const decoded = decodeJsonBody(Buffer.from(text), options);
    assert.deepEqual(bigints(decoded, 0, BigInt64Array), [-(2n ** 63n), 2n ** 63n - 1n, 2n ** 53n + 1n, 0n]);
    assert.deepEqual(bigints(decoded, 1, BigUint64Array), [2n ** 64n - 1n, 2n ** 53n + 1n]);
    assert.deepEqual(Buffer.from(decoded.inputs[2]!.bytes!), Buffer.from(decodeJsonData('f', 'FP32', [1], [1e20])));
    for (const input of (decoded.header as { inputs: Array<{ data: unknown }> }).inputs) assert.equal(input.data, decodedDataMarker);
  });

  test('a binary-extension body: the JSON header is read exactly, the binary part is left as it is', () => {
    const header = Buffer.from(text.replace(']}]}', ']},{"name":"b","datatype":"UINT8","shape":[2],"parameters":{"binary_data_size":2}}]}'));
    const decoded = decodeJsonBody(Buffer.concat([header, Buffer.from([0x39, 0x5d])]), { ...options, headerLength: String(header.byteLength) });
    assert.deepEqual(bigints(decoded, 1, BigUint64Array), [2n ** 64n - 1n, 2n ** 53n + 1n]);
    assert.equal(decoded.binaryOffset, header.byteLength);
  });

  test("an out-of-range number is that input's decode error, naming the element", () => {
    const decoded = decodeJsonBody(Buffer.from(text.replace('18446744073709551615', '18446744073709551616')), options);
    assert.match(decodeErrorFromWire(decoded.inputs[1]!.error!).message, /Input 'u' \(UINT64\): element 0 is .*UINT64 range/);
    assert.ok(decoded.inputs[0]!.bytes !== undefined);
  });

  test('the cost check still comes first: a too costly body is refused before anything is parsed or read again', () => {
    assert.throws(
      () => decodeJsonBody(Buffer.from(text), { ...options, bounds: { maxContainers: 3, maxStrings: 100, maxValues: 100 } }),
      /more than 3 arrays and objects/,
    );
  });
});

describe('jsonPartLength', () => {
  test('the whole body, or a valid header length; undefined for what splitBinaryBody must refuse', () => {
    assert.equal(jsonPartLength(100, undefined, 50), 100);
    assert.equal(jsonPartLength(100, ' 40 ', 50), 40);
    for (const bad of ['0', '-1', '1.5', 'x', '101', '60', '99999999999999999999']) assert.equal(jsonPartLength(100, bad, 50), undefined, bad);
  });
});
