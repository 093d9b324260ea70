/**
 * The client's tensor encoding against the server's own codecs: what the client sends (JSON or the binary
 * extension) is what the server's readers decode, byte for byte; what the server's response writer produces
 * (JSON, exact 64-bit JSON numbers, binary parts) is what the client decodes.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { encodeInferResponseParts, splitBinaryBody, takeBinaryInputs, type ResponseOutput } from '../../src/protocol/binary-extension.js';
import { decodeJsonData } from '../../src/protocol/json-tensor-codec.js';
import { writeBytesElements } from '../../src/protocol/bytes-elements.js';
import { toFloat16Bits } from '../../src/protocol/float16.js';
import type { Datatype } from '../../src/protocol/datatypes.js';
import { encodeInput } from '../../src/client/tensor-encoding.js';
import { binaryThresholdBytes, decodeInferResponse, encodeInferRequest } from '../../src/client/infer-codec.js';
import { GantryError } from '../../src/client/gantry-error.js';
import type { TensorInput } from '../../src/client/tensor-types.js';

interface ServerInput {
  name: string;
  datatype: Datatype;
  shape: number[];
  parameters?: Record<string, unknown>;
  data?: unknown;
}

/** Reads a client request as the server does: split the body, take binary inputs, decode JSON data. */
function serverReads(body: Uint8Array | string, headers: Record<string, string>): { header: Record<string, unknown>; bytes: Map<string, Uint8Array> } {
  const buffer = typeof body === 'string' ? Buffer.from(body, 'utf8') : Buffer.from(body);
  const { header, binary } = splitBinaryBody(buffer, headers['inference-header-content-length']);
  const inputs = (header as { inputs: ServerInput[] }).inputs;
  const bytes = takeBinaryInputs(inputs, binary);
  for (const input of inputs) if (input.data !== undefined) bytes.set(input.name, decodeJsonData(input.name, input.datatype, input.shape, input.data));
  return { header: header as Record<string, unknown>, bytes };
}

function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

function assertClientRefusal(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof GantryError);
    assert.equal(error.status, 0);
    assert.equal(error.code, 'INVALID_ARGUMENT');
    assert.match(error.message, pattern);
    return true;
  });
}

describe('client inputs', () => {
  test('a typed array is sent as its own bytes (a view, no copy) with its natural datatype', () => {
    const data = new Float32Array([1.5, -2, 3.25, 4]);
    const encoded = encodeInput('x', { data, shape: [2, 2] });
    assert.equal(encoded.datatype, 'FP32');
    assert.deepEqual(encoded.shape, [2, 2]);
    assert.equal(encoded.bytes.buffer, data.buffer, 'the bytes are a view of the caller’s array');
    const bare = encodeInput('y', new BigInt64Array([1n, -2n]));
    assert.equal(bare.datatype, 'INT64');
    assert.deepEqual(bare.shape, [2]);
  });

  test('plain arrays take the default datatype of their elements, or the one given', () => {
    assert.equal(encodeInput('a', { data: [1, 2] }).datatype, 'FP32');
    assert.equal(encodeInput('a', { data: [true, false] }).datatype, 'BOOL');
    assert.equal(encodeInput('a', { data: ['x'] }).datatype, 'BYTES');
    assert.equal(encodeInput('a', { data: [1n] }).datatype, 'INT64');
    const int8 = encodeInput('a', { data: [1, -2, 3], datatype: 'INT8' });
    assert.deepEqual([...new Int8Array(int8.bytes.buffer, int8.bytes.byteOffset, 3)], [1, -2, 3]);
  });

  test('a typed array of another datatype is converted (Float32Array to FP16 rounds to half precision)', () => {
    const encoded = encodeInput('h', { data: new Float32Array([1, 0.1, 65504]), datatype: 'FP16' });
    const bits = new Uint16Array(encoded.bytes.buffer, encoded.bytes.byteOffset, 3);
    assert.deepEqual([...bits], [toFloat16Bits(1), toFloat16Bits(0.1), toFloat16Bits(65504)]);
    const widened = encodeInput('d', { data: new Int32Array([7, -8]), datatype: 'FP64' });
    assert.deepEqual([...new Float64Array(widened.bytes.buffer, widened.bytes.byteOffset, 2)], [7, -8]);
  });

  test('bad inputs are refused before sending, naming the input', () => {
    assertClientRefusal(() => encodeInput('x', { data: new Float32Array(5), shape: [2, 2] }), /Input 'x': shape \[2,2\] needs 4 elements but data has 5/);
    assertClientRefusal(() => encodeInput('x', { data: [300], datatype: 'UINT8' }), /Input 'x' \(UINT8\): element 0 is 300/);
    assertClientRefusal(() => encodeInput('x', { data: [1], datatype: 'BF16' as Datatype }), /unknown datatype 'BF16'/);
    assertClientRefusal(() => encodeInput('x', { data: new Uint8Array(2), datatype: 'BYTES' }), /BYTES data is an array of strings or of Uint8Arrays/);
    assertClientRefusal(() => encodeInput('x', { data: [1], shape: [-1] }), /shape must be an array of non-negative integers/);
    assertClientRefusal(() => encodeInput('x', 'text' as unknown as TensorInput), /give a typed array/);
  });
});

describe('client requests, read by the server', () => {
  const cases: Array<{ name: string; input: TensorInput; expected: Uint8Array }> = [
    { name: 'fp32', input: { data: new Float32Array([0.5, -1.25]), shape: [1, 2] }, expected: bytesOf(new Float32Array([0.5, -1.25])) },
    {
      name: 'int64',
      input: { data: new BigInt64Array([9007199254740993n, -9223372036854775808n]) },
      expected: bytesOf(new BigInt64Array([9007199254740993n, -9223372036854775808n])),
    },
    { name: 'uint64', input: { data: new BigUint64Array([18446744073709551615n]) }, expected: bytesOf(new BigUint64Array([18446744073709551615n])) },
    { name: 'bool', input: { data: [true, false, true] }, expected: new Uint8Array([1, 0, 1]) },
    { name: 'bytes', input: { data: ['héllo', ''] }, expected: writeBytesElements([Buffer.from('héllo'), Buffer.from('')]) },
  ];
  for (const binary of [false, true]) {
    test(`${binary ? 'binary extension' : 'JSON'}: every datatype arrives exactly`, () => {
      const encoded = cases.map(({ name, input }) => encodeInput(name, input));
      const request = encodeInferRequest(encoded, { id: 'r1', outputs: ['out'], parameters: { priority: 3 } }, { binary });
      assert.equal(request.binaryInputs, binary);
      assert.equal(request.headers['content-type'], binary ? 'application/octet-stream' : 'application/json');
      const { header, bytes } = serverReads(request.body, request.headers);
      assert.equal(header.id, 'r1');
      assert.deepEqual(header.outputs, [{ name: 'out' }]);
      assert.equal((header.parameters as Record<string, unknown>).priority, 3);
      assert.equal((header.parameters as Record<string, unknown>).binary_data_output, binary ? true : undefined);
      for (const { name, expected } of cases) assert.deepEqual(Buffer.from(bytes.get(name)!), Buffer.from(expected), name);
    });
  }

  test("'auto' goes binary from binaryThresholdBytes of tensor data, and for BYTES given as byte arrays", () => {
    const below = encodeInferRequest([encodeInput('x', new Float32Array(binaryThresholdBytes / 4 - 1))], {}, { binary: 'auto' });
    const at = encodeInferRequest([encodeInput('x', new Float32Array(binaryThresholdBytes / 4))], {}, { binary: 'auto' });
    const raw = encodeInferRequest([encodeInput('b', { data: [new Uint8Array([0xff, 0xfe])] })], {}, { binary: 'auto' });
    assert.deepEqual([below.binaryInputs, at.binaryInputs, raw.binaryInputs], [false, true, true]);
    // Non-UTF-8 bytes survive only as binary data.
    assert.deepEqual([...serverReads(raw.body, raw.headers).bytes.get('b')!], [2, 0, 0, 0, 0xff, 0xfe]);
  });

  test('job fields go into the JSON header, beside the inputs', () => {
    const request = encodeInferRequest([encodeInput('x', new Float32Array(8192))], { fields: { retention: 60 } }, { binary: 'auto' });
    assert.equal(serverReads(request.body, request.headers).header.retention, 60);
  });
});

describe('server responses, read by the client', () => {
  const int64 = new BigInt64Array([9007199254740993n, -9223372036854775807n, 5n]);
  const outputs = (binary: boolean): ResponseOutput[] => [
    { tensor: { name: 'scores', datatype: 'FP32', shape: [1, 2], data: bytesOf(new Float32Array([0.25, -4])) }, binary },
    { tensor: { name: 'ids', datatype: 'INT64', shape: [3], data: bytesOf(int64) }, binary },
    { tensor: { name: 'flags', datatype: 'BOOL', shape: [2], data: new Uint8Array([1, 0]) }, binary },
    { tensor: { name: 'labels', datatype: 'BYTES', shape: [2], data: writeBytesElements([Buffer.from('cat'), Buffer.from('dög')]) }, binary },
    { tensor: { name: 'half', datatype: 'FP16', shape: [1], data: bytesOf(new Uint16Array([toFloat16Bits(1.5)])) }, binary },
  ];

  function clientReads(binary: boolean) {
    const encoded = encodeInferResponseParts({ model_name: 'm', model_version: '2', id: 'r9' }, outputs(binary));
    if (encoded.parts !== undefined) return decodeInferResponse(Buffer.concat(encoded.parts), String(encoded.headerLength), 'req-1');
    assert.ok(encoded.serialized !== undefined, 'the INT64 output makes the server write exact JSON text');
    return decodeInferResponse(Buffer.from(encoded.serialized, 'utf8'), null, 'req-1');
  }

  for (const binary of [false, true]) {
    test(`${binary ? 'binary' : 'JSON (exact 64-bit numbers)'}: typed values, INT64 exact`, () => {
      const result = clientReads(binary);
      assert.equal(result.modelName, 'm');
      assert.equal(result.modelVersion, '2');
      assert.equal(result.id, 'r9');
      assert.equal(result.requestId, 'req-1');
      assert.deepEqual(result.output('scores').data, new Float32Array([0.25, -4]));
      assert.deepEqual(result.output('scores').shape, [1, 2]);
      const ids = result.output('ids').data;
      assert.ok(ids instanceof BigInt64Array);
      assert.deepEqual([...ids], [...int64]);
      assert.deepEqual(result.output('flags').data, [true, false]);
      assert.deepEqual(result.output('labels').data, ['cat', 'dög']);
      assert.deepEqual(result.output('half').data, new Float32Array([1.5]));
      assert.throws(() => result.output('nope'), /no output 'nope'/);
    });
  }

  test('a float written as digits stays a float, and strings that look like long integers stay strings', () => {
    const text =
      '{"model_name":"m","outputs":[{"name":"f","datatype":"FP64","shape":[1],"data":[100000000000000000000]},' +
      '{"name":"s","datatype":"BYTES","shape":[1],"data":["12345678901234567890"]},' +
      '{"name":"i","datatype":"UINT64","shape":[2],"data":[18446744073709551615,1]}]}';
    const result = decodeInferResponse(Buffer.from(text), null);
    assert.deepEqual(result.output('f').data, new Float64Array([1e20]));
    assert.deepEqual(result.output('s').data, ['12345678901234567890']);
    assert.deepEqual([...(result.output('i').data as BigUint64Array)], [18446744073709551615n, 1n]);
  });

  test('a malformed answer is a GantryError, not a crash', () => {
    assert.throws(
      () => decodeInferResponse(Buffer.from('{"outputs": 3}'), null),
      (error: unknown) => error instanceof GantryError && /malformed/.test(error.message),
    );
    assert.throws(
      () => decodeInferResponse(Buffer.from('{}'), '99'),
      (error: unknown) => error instanceof GantryError && /does not fit the body/.test(error.message),
    );
  });
});
