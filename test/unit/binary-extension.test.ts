import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  bf16Message,
  encodeInferResponseParts,
  inferenceHeaderContentLength,
  splitBinaryBody,
  takeBinaryInputs,
  wantsBinaryOutput,
  type BinaryCapableInput,
  type EncodedInferResponse,
} from '../../src/protocol/binary-extension.js';
import { writeBytesElements } from '../../src/protocol/bytes-elements.js';
import { decodeJsonData, encodeJsonData } from '../../src/protocol/json-tensor-codec.js';
import { ErrorCode, GantryError } from '../../src/errors.js';
import type { Tensor } from '../../src/protocol/tensor.js';
import { inferResponseSchema } from '../../src/protocol/oip-schemas.js';
import { parse as losslessParse } from 'lossless-json';

function assertInvalid(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof GantryError, `expected GantryError, got ${String(error)}`);
    assert.equal(error.code, ErrorCode.InvalidArgument);
    assert.equal(error.httpStatus, 400);
    assert.match(error.message, pattern);
    return true;
  });
}

/** A body as a client sends it: JSON header, then the binary parts; returns the body and the header's length. */
function binaryBody(header: unknown, ...parts: Uint8Array[]): { body: Buffer; headerLength: string } {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  return { body: Buffer.concat([json, ...parts]), headerLength: String(json.byteLength) };
}

function uint32(...values: number[]): Buffer {
  const out = Buffer.alloc(values.length * 4);
  values.forEach((value, index) => out.writeUInt32LE(value, index * 4));
  return out;
}

describe('inferenceHeaderContentLength', () => {
  test('is the lower-case header name', () => {
    assert.equal(inferenceHeaderContentLength, 'inference-header-content-length');
  });
});

describe('splitBinaryBody', () => {
  test('spec-style request: mixed JSON and binary inputs in one body', () => {
    // Like the example in §"Binary Tensor Request" (UINT32 [2,2] and BOOL [3] in binary), plus one JSON input.
    const request = {
      inputs: [
        { name: 'input0', shape: [2, 2], datatype: 'UINT32', parameters: { binary_data_size: 16 } },
        { name: 'json_input', shape: [2], datatype: 'FP32', data: [1.5, 2.5] },
        { name: 'input1', shape: [3], datatype: 'BOOL', parameters: { binary_data_size: 3 } },
      ],
      outputs: [{ name: 'output0', parameters: { binary_data: true } }],
    };
    const { body, headerLength } = binaryBody(request, uint32(1, 2, 3, 0xffffffff), Buffer.from([1, 0, 1]));
    const { header, binary } = splitBinaryBody(body, headerLength);
    assert.deepEqual(header, request);
    assert.equal(binary.byteLength, 19);
    assert.equal(binary.buffer, body.buffer, 'binary is a view into the body');

    const inputs = (header as typeof request).inputs as BinaryCapableInput[];
    const taken = takeBinaryInputs(inputs, binary);
    assert.deepEqual([...taken.keys()], ['input0', 'input1']);
    assert.deepEqual(encodeJsonData('UINT32', taken.get('input0')!), [1, 2, 3, 0xffffffff]);
    assert.deepEqual(encodeJsonData('BOOL', taken.get('input1')!), [true, false, true]);
    assert.equal(taken.get('input0')!.buffer, body.buffer, 'inputs are views, not copies');
  });

  test('without the header the whole body is JSON', () => {
    const body = Buffer.from('{"inputs":[]}');
    const { header, binary } = splitBinaryBody(body, undefined);
    assert.deepEqual(header, { inputs: [] });
    assert.equal(binary.byteLength, 0);
  });

  test('a header length equal to the body leaves no binary part', () => {
    const body = Buffer.from('{"a":1}');
    const { header, binary } = splitBinaryBody(body, String(body.byteLength));
    assert.deepEqual(header, { a: 1 });
    assert.equal(binary.byteLength, 0);
  });

  test('surrounding whitespace in the header value is ignored', () => {
    const { body, headerLength } = binaryBody({ a: 1 }, Buffer.from([9]));
    assert.deepEqual([...splitBinaryBody(body, ` ${headerLength} `).binary], [9]);
  });

  test('header length 0 is a raw binary request: no JSON header, the whole body is binary', () => {
    const body = Buffer.from([1, 2, 3, 4]);
    const { header, binary } = splitBinaryBody(body, '0');
    assert.equal(header, undefined);
    assert.deepEqual([...binary], [1, 2, 3, 4]);
  });

  test('header length larger than the body', () => {
    const body = Buffer.alloc(120, 0x20);
    assertInvalid(() => splitBinaryBody(body, '500'), /^Inference-Header-Content-Length 500 is larger than the body \(120 bytes\)\.$/);
  });

  for (const bad of ['abc', '-1', '1.5', '', '1e3', '0x10', '99999999999999999999']) {
    test(`non-numeric header length ${JSON.stringify(bad)}`, () => {
      assertInvalid(() => splitBinaryBody(Buffer.from('{}'), bad), /Inference-Header-Content-Length .* is not a non-negative integer/);
    });
  }

  test('a header that is not valid JSON', () => {
    const { body, headerLength } = binaryBody({ a: 1 }, Buffer.from([1, 2]));
    // Cut the header one byte short, so the JSON is truncated.
    assertInvalid(() => splitBinaryBody(body, String(Number(headerLength) - 1)), /JSON header .* is not valid JSON/);
  });

  test('a plain body that is not valid JSON', () => {
    assertInvalid(() => splitBinaryBody(Buffer.from('{nope'), undefined), /request body is not valid JSON/);
  });
});

describe('takeBinaryInputs', () => {
  test('BYTES binary input', () => {
    const bytes = writeBytesElements([Buffer.from('hello'), Buffer.from(''), Buffer.from('żółw')]);
    const taken = takeBinaryInputs([{ name: 'text', datatype: 'BYTES', shape: [3], parameters: { binary_data_size: bytes.byteLength } }], Buffer.from(bytes));
    assert.deepEqual(encodeJsonData('BYTES', taken.get('text')!), ['hello', '', 'żółw']);
  });

  test('BYTES binary input whose element count disagrees with the shape', () => {
    const bytes = Buffer.from(writeBytesElements([Buffer.from('a'), Buffer.from('b')]));
    assertInvalid(
      () => takeBinaryInputs([{ name: 'text', datatype: 'BYTES', shape: [3], parameters: { binary_data_size: bytes.byteLength } }], bytes),
      /Input 'text': shape \[3\] needs 3 BYTES elements but its binary data holds 2/,
    );
  });

  test('BYTES binary input cut inside an element', () => {
    const bytes = Buffer.from(writeBytesElements([Buffer.from('abcdef')])).subarray(0, 7);
    assertInvalid(() => takeBinaryInputs([{ name: 'text', datatype: 'BYTES', shape: [1], parameters: { binary_data_size: 7 } }], bytes), /'text'/);
  });

  test('BYTES binary input cut inside a length prefix', () => {
    const bytes = Buffer.from([1, 0, 0, 0, 0x61, 2, 0]);
    assertInvalid(
      () => takeBinaryInputs([{ name: 'text', datatype: 'BYTES', shape: [2], parameters: { binary_data_size: 7 } }], bytes),
      /'text' ends inside an element length/,
    );
  });

  test('FP16 binary input', () => {
    const bytes = Buffer.from([0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x00, 0x38]); // 1, -2, 65504, 0.5
    const taken = takeBinaryInputs([{ name: 'half', datatype: 'FP16', shape: [2, 2], parameters: { binary_data_size: 8 } }], bytes);
    assert.deepEqual(encodeJsonData('FP16', taken.get('half')!), [1, -2, 65504, 0.5]);
    assert.deepEqual([...taken.get('half')!], [...decodeJsonData('half', 'FP16', [4], [1, -2, 65504, 0.5])]);
  });

  test('empty tensor with binary_data_size 0', () => {
    const taken = takeBinaryInputs([{ name: 'empty', datatype: 'FP32', shape: [0, 4], parameters: { binary_data_size: 0 } }], Buffer.alloc(0));
    assert.equal(taken.get('empty')!.byteLength, 0);
  });

  test('inputs with JSON data are left out of the result', () => {
    const taken = takeBinaryInputs([{ name: 'j', datatype: 'INT32', shape: [1], data: [1], parameters: { other: 1 } }], Buffer.alloc(0));
    assert.equal(taken.size, 0);
  });

  test('leftover bytes after the last binary input', () => {
    assertInvalid(
      () => takeBinaryInputs([{ name: 'a', datatype: 'UINT8', shape: [2], parameters: { binary_data_size: 2 } }], Buffer.from([1, 2, 3])),
      /3 bytes of binary data after the JSON header but the inputs' binary_data_size add up to 2/,
    );
  });

  test('binary data but no binary input', () => {
    assertInvalid(() => takeBinaryInputs([{ name: 'a', datatype: 'UINT8', shape: [1], data: [1] }], Buffer.from([1])), /1 bytes of binary data .* add up to 0/);
  });

  test('missing bytes: binary_data_size runs past the end of the body', () => {
    assertInvalid(
      () =>
        takeBinaryInputs(
          [
            { name: 'a', datatype: 'UINT8', shape: [2], parameters: { binary_data_size: 2 } },
            { name: 'b', datatype: 'UINT8', shape: [4], parameters: { binary_data_size: 4 } },
          ],
          Buffer.from([1, 2, 3]),
        ),
      /Input 'b' declares binary_data_size 4 but only 1 bytes of binary data remain/,
    );
  });

  test('binary_data_size that disagrees with the shape', () => {
    assertInvalid(
      () => takeBinaryInputs([{ name: 'x', datatype: 'FP32', shape: [2, 3], parameters: { binary_data_size: 20 } }], Buffer.alloc(20)),
      /^Input 'x': FP32 shape \[2,3\] needs 24 bytes but binary_data_size is 20\.$/,
    );
  });

  for (const bad of [-1, 1.5, '16', null, true, Number.NaN]) {
    test(`binary_data_size ${String(bad)} is refused`, () => {
      assertInvalid(
        () => takeBinaryInputs([{ name: 'x', datatype: 'UINT8', shape: [16], parameters: { binary_data_size: bad } }], Buffer.alloc(16)),
        /Input 'x': parameter 'binary_data_size' must be a non-negative integer/,
      );
    });
  }

  test('data and binary_data_size together', () => {
    assertInvalid(
      () => takeBinaryInputs([{ name: 'x', datatype: 'UINT8', shape: [1], data: [1], parameters: { binary_data_size: 1 } }], Buffer.from([1])),
      /Input 'x' has both 'data' and 'binary_data_size'/,
    );
  });

  test('neither data nor binary_data_size', () => {
    assertInvalid(() => takeBinaryInputs([{ name: 'x', datatype: 'UINT8', shape: [1] }], Buffer.alloc(0)), /Input 'x' has no data/);
    assertInvalid(() => takeBinaryInputs([{ name: 'y', datatype: 'UINT8', shape: [1], data: null }], Buffer.alloc(0)), /Input 'y' has no data/);
  });
});

describe('wantsBinaryOutput', () => {
  test('defaults to JSON', () => {
    assert.equal(wantsBinaryOutput(undefined, undefined), false);
    assert.equal(wantsBinaryOutput({}, {}), false);
  });

  test('request-level binary_data_output applies to every output', () => {
    assert.equal(wantsBinaryOutput({ binary_data_output: true }, undefined), true);
    assert.equal(wantsBinaryOutput({ binary_data_output: false }, {}), false);
  });

  test('per-output binary_data wins over binary_data_output', () => {
    assert.equal(wantsBinaryOutput({ binary_data_output: true }, { binary_data: false }), false);
    assert.equal(wantsBinaryOutput({ binary_data_output: false }, { binary_data: true }), true);
    assert.equal(wantsBinaryOutput(undefined, { binary_data: true }), true);
  });

  test('non-boolean values are refused, naming the parameter', () => {
    assertInvalid(
      () => wantsBinaryOutput(undefined, { binary_data: 'yes' }, 'out0'),
      /Parameter 'binary_data' of output 'out0' must be true or false, got "yes"/,
    );
    assertInvalid(() => wantsBinaryOutput(undefined, { binary_data: 1 }), /Parameter 'binary_data' of an output/);
    assertInvalid(() => wantsBinaryOutput({ binary_data_output: 'true' }, undefined), /Parameter 'binary_data_output' of the request must be true or false/);
    // A bad request-level value is reported even when the output overrides it.
    assertInvalid(() => wantsBinaryOutput({ binary_data_output: 'yes' }, { binary_data: true }), /'binary_data_output'/);
  });
});

/** The whole body of an encoded response in one buffer, as a client receives it. */
function bodyOf(encoded: EncodedInferResponse): Buffer {
  assert.ok(encoded.parts !== undefined, 'expected a binary response');
  const body = Buffer.concat(encoded.parts);
  assert.equal(body.byteLength, encoded.byteLength);
  return body;
}

describe('encodeInferResponseParts', () => {
  const fp32: Tensor = {
    name: 'output0',
    datatype: 'FP32',
    shape: [3, 2],
    data: decodeJsonData('output0', 'FP32', [6], [1, 2, 3, 4, 5, 6.5]),
  };
  const int32: Tensor = { name: 'count', datatype: 'INT32', shape: [1], data: decodeJsonData('count', 'INT32', [1], [7]) };
  const text: Tensor = { name: 'label', datatype: 'BYTES', shape: [2], data: decodeJsonData('label', 'BYTES', [2], ['cat', 'é']) };

  test('all JSON: a plain object, using jsonData', () => {
    const result = encodeInferResponseParts({ model_name: 'm', model_version: '1', id: '42' }, [
      { tensor: int32, binary: false, jsonData: [7] },
      { tensor: text, binary: false, jsonData: ['cat', 'é'], parameters: { note: 'x' } },
    ]);
    assert.equal(result.headerLength, undefined);
    assert.equal(result.parts, undefined);
    assert.equal(result.serialized, undefined);
    assert.deepEqual(result.json, {
      model_name: 'm',
      model_version: '1',
      id: '42',
      outputs: [
        { name: 'count', datatype: 'INT32', shape: [1], data: [7] },
        { name: 'label', datatype: 'BYTES', shape: [2], parameters: { note: 'x' }, data: ['cat', 'é'] },
      ],
    });
  });

  test('all JSON: data is computed from the tensor when jsonData is omitted; absent fields are left out', () => {
    const result = encodeInferResponseParts({ model_name: 'm' }, [{ tensor: fp32, binary: false }]);
    assert.equal(result.serialized, undefined);
    assert.deepEqual(result.json, {
      model_name: 'm',
      outputs: [{ name: 'output0', datatype: 'FP32', shape: [3, 2], data: [1, 2, 3, 4, 5, 6.5] }],
    });
  });

  test('mixed binary and JSON outputs: exact byte layout and header length', () => {
    const result = encodeInferResponseParts({ model_name: 'm', model_version: '2', parameters: { p: 1 } }, [
      { tensor: fp32, binary: true },
      { tensor: int32, binary: false, jsonData: [7] },
      { tensor: text, binary: true, parameters: { note: 'x' } },
    ]);
    const body = bodyOf(result);
    const expectedHeader = JSON.stringify({
      model_name: 'm',
      model_version: '2',
      parameters: { p: 1 },
      outputs: [
        { name: 'output0', datatype: 'FP32', shape: [3, 2], parameters: { binary_data_size: 24 } },
        { name: 'count', datatype: 'INT32', shape: [1], data: [7] },
        { name: 'label', datatype: 'BYTES', shape: [2], parameters: { note: 'x', binary_data_size: 13 } },
      ],
    });
    assert.equal(result.headerLength, Buffer.byteLength(expectedHeader));
    assert.equal(result.parts!.length, 3, 'the tensors are sent as they are, not copied into one buffer');
    assert.equal(body.subarray(0, result.headerLength).toString('utf8'), expectedHeader);
    const expectedTail = Buffer.concat([fp32.data, text.data]);
    assert.equal(expectedTail.byteLength, 24 + 13); // "cat" = 4 + 3, "é" = 4 + 2
    assert.deepEqual([...body.subarray(result.headerLength)], [...expectedTail]);
    assert.equal(body.byteLength, result.headerLength! + 37);

    // And it reads back with splitBinaryBody, as a client would.
    const { header, binary } = splitBinaryBody(body, String(result.headerLength));
    assert.deepEqual(header, JSON.parse(expectedHeader));
    assert.deepEqual(encodeJsonData('FP32', binary.subarray(0, 24)), [1, 2, 3, 4, 5, 6.5]);
    assert.deepEqual(encodeJsonData('BYTES', binary.subarray(24)), ['cat', 'é']);
  });

  test('header length counts UTF-8 bytes, not characters', () => {
    const result = encodeInferResponseParts({ model_name: 'modèle-🐢' }, [{ tensor: int32, binary: true }]);
    const body = bodyOf(result);
    assert.equal(body.byteLength, result.headerLength! + 4);
    assert.deepEqual(JSON.parse(body.subarray(0, result.headerLength).toString('utf8')).model_name, 'modèle-🐢');
  });
});

describe('encodeInferResponseParts: INT64/UINT64 outputs as exact JSON numbers', () => {
  const int64Values = [-(2n ** 63n), -1n, 0n, 2n ** 53n + 1n, 2n ** 63n - 1n];
  const uint64Values = [0n, 2n ** 53n + 1n, 2n ** 64n - 1n];
  const int64: Tensor = { name: 'signed', datatype: 'INT64', shape: [1, 5], data: new Uint8Array(BigInt64Array.from(int64Values).buffer) };
  const uint64: Tensor = { name: 'unsigned', datatype: 'UINT64', shape: [3], data: new Uint8Array(BigUint64Array.from(uint64Values).buffer) };
  const fp32: Tensor = { name: 'scores', datatype: 'FP32', shape: [2], data: decodeJsonData('scores', 'FP32', [2], [0.5, -1]) };

  /** Reads JSON text keeping every integer exact (as tritonclient's and Triton's parsers do): integers as bigints. */
  interface ParsedResponse {
    outputs: Array<{ data: unknown[] }>;
  }

  function parseExact(text: string): ParsedResponse {
    return losslessParse(text, undefined, (digits) => (/^-?\d+$/.test(digits) ? BigInt(digits) : Number(digits))) as ParsedResponse;
  }

  test("all JSON: `serialized` is the whole response with the digits exact, in the object's key order", () => {
    const result = encodeInferResponseParts({ model_name: 'm', model_version: '3', id: 'r1', parameters: { note: 'n' } }, [
      { tensor: int64, binary: false },
      { tensor: fp32, binary: false, parameters: { p: true } },
      { tensor: uint64, binary: false },
    ]);
    assert.equal(result.parts, undefined);
    const serialized = result.serialized!;
    assert.equal(typeof serialized, 'string');
    assert.equal(
      serialized,
      '{"model_name":"m","model_version":"3","id":"r1","parameters":{"note":"n"},"outputs":[' +
        '{"name":"signed","datatype":"INT64","shape":[1,5],"data":[-9223372036854775808,-1,0,9007199254740993,9223372036854775807]},' +
        '{"name":"scores","datatype":"FP32","shape":[2],"parameters":{"p":true},"data":[0.5,-1]},' +
        '{"name":"unsigned","datatype":"UINT64","shape":[3],"data":[0,9007199254740993,18446744073709551615]}]}',
    );
    const exact = parseExact(serialized);
    assert.deepEqual(exact.outputs[0]!.data, int64Values);
    assert.deepEqual(exact.outputs[2]!.data, uint64Values);
    // Valid OIP for any JSON reader: the response schema accepts it, and a plain JSON.parse only rounds.
    const plain = JSON.parse(serialized) as ParsedResponse;
    assert.ok(inferResponseSchema.safeParse(plain).success);
    assert.deepEqual(plain.outputs[1]!.data, [0.5, -1]);
    // The object form is unchanged: numbers while exact, decimal strings beyond 2^53.
    assert.deepEqual((result.json as ParsedResponse).outputs[2]!.data, [0, '9007199254740993', '18446744073709551615']);
  });

  test('responses without a 64-bit JSON output keep the object path (no `serialized`)', () => {
    assert.equal(encodeInferResponseParts({ model_name: 'm' }, [{ tensor: fp32, binary: false }]).serialized, undefined);
    // A 64-bit output sent as binary needs no exact text either.
    const binaryOnly = encodeInferResponseParts({ model_name: 'm' }, [{ tensor: int64, binary: true }]);
    assert.equal(binaryOnly.serialized, undefined);
    assert.equal(
      binaryOnly.parts![0]!.toString(),
      JSON.stringify({ model_name: 'm', outputs: [{ name: 'signed', datatype: 'INT64', shape: [1, 5], parameters: { binary_data_size: 40 } }] }),
    );
  });

  test('binary extension: the JSON header carries exact numbers for the JSON outputs', () => {
    const result = encodeInferResponseParts({ model_name: 'm' }, [
      { tensor: fp32, binary: true },
      { tensor: uint64, binary: false },
    ]);
    assert.equal(result.serialized, undefined);
    const body = bodyOf(result);
    const headerText = body.subarray(0, result.headerLength).toString('utf8');
    assert.equal(
      headerText,
      '{"model_name":"m","outputs":[{"name":"scores","datatype":"FP32","shape":[2],"parameters":{"binary_data_size":8}},' +
        '{"name":"unsigned","datatype":"UINT64","shape":[3],"data":[0,9007199254740993,18446744073709551615]}]}',
    );
    assert.deepEqual(parseExact(headerText).outputs[1]!.data, uint64Values);
    assert.deepEqual(encodeJsonData('FP32', body.subarray(result.headerLength)), [0.5, -1]);
  });

  test('misaligned output bytes are written exactly too', () => {
    const backing = new Uint8Array(8 * 2 + 1);
    backing.set(new Uint8Array(BigInt64Array.from([2n ** 62n + 1n, -5n]).buffer), 1);
    const tensor: Tensor = { name: 'odd', datatype: 'INT64', shape: [2], data: backing.subarray(1) };
    const result = encodeInferResponseParts({ model_name: 'm' }, [{ tensor, binary: false }]);
    assert.match(result.serialized!, /"data":\[4611686018427387905,-5\]/);
  });
});

describe('bf16Message', () => {
  test('names BF16 and why it is refused', () => {
    assert.match(bf16Message, /BF16/);
    assert.match(bf16Message, /onnxruntime-node/);
    assert.match(bf16Message, /bfloat16/);
  });
});
