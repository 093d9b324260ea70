/**
 * INT64 and UINT64 exact in JSON both ways, against a real gantry (the identity-int64 and identity-uint64
 * fixtures echo their input): JSON numbers of any magnitude in range are read exactly, as Triton reads what
 * tritonclient.http sends (it writes 64-bit integers as plain JSON numbers), and answers carry exact JSON numbers,
 * as Triton writes them. Bodies small enough for the event loop and large enough for the JSON parse thread, JSON
 * and binary-extension forms, and the refusals (out of range, fractions) naming the element.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { parse as losslessParse } from 'lossless-json';
import { fixturePath, startGantry, uploadModel, withAdminKey, type GantryProcess } from '../helpers/gantry-process.js';

let gantry: GantryProcess;

const int64Extremes = [-(2n ** 63n), -(2n ** 53n) - 1n, -1n, 0n, 2n ** 53n + 1n, 2n ** 63n - 1n];
const uint64Extremes = [0n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n];

interface RawReply {
  status: number;
  headers: Headers;
  body: Buffer;
}

/** POSTs a body exactly as given (no Content-Type unless `headers` has one, as tritonclient.http sends it). */
async function post(model: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<RawReply> {
  const response = await fetch(`${gantry.baseUrl}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: withAdminKey(headers),
    body: typeof body === 'string' ? body : new Uint8Array(body),
  });
  return { status: response.status, headers: response.headers, body: Buffer.from(await response.arrayBuffer()) };
}

interface ExactResponse {
  outputs: Array<{ name: string; datatype: string; shape: number[]; data?: unknown[]; parameters?: Record<string, unknown> }>;
}

/** Reads JSON keeping every integer exact (as tritonclient's json and Triton's parser do): integers as bigints. */
function parseExact(text: string): ExactResponse {
  return losslessParse(text, undefined, (digits) => (/^-?\d+$/.test(digits) ? BigInt(digits) : Number(digits))) as ExactResponse;
}

/** A request whose 64-bit data is written as plain JSON numbers, as Python's json.dumps writes its ints. */
function requestText(datatype: 'INT64' | 'UINT64', values: readonly bigint[], extra = ''): string {
  return `{"inputs": [{"name": "input", "shape": [1, ${values.length}], "datatype": "${datatype}", "data": [${values.join(', ')}]}]${extra}}`;
}

function bytesOf(values: readonly bigint[], datatype: 'INT64' | 'UINT64'): Buffer {
  const array = datatype === 'INT64' ? BigInt64Array.from(values) : BigUint64Array.from(values);
  return Buffer.from(array.buffer);
}

function assertExactOutput(reply: RawReply, datatype: 'INT64' | 'UINT64', expected: readonly bigint[]): void {
  assert.equal(reply.status, 200, reply.body.toString('utf8', 0, 300));
  assert.match(reply.headers.get('content-type') ?? '', /^application\/json/);
  const text = reply.body.toString('utf8');
  const output = parseExact(text).outputs[0]!;
  assert.equal(output.datatype, datatype);
  assert.deepEqual(output.shape.map(Number), [1, expected.length]);
  assert.deepEqual(output.data, [...expected]);
  // Numbers, not strings: the digits appear unquoted in the text.
  assert.ok(text.includes(`"data":[${expected.join(',')}]`), text.slice(0, 300));
}

before(async () => {
  gantry = await startGantry();
  for (const name of ['identity-int64', 'identity-uint64']) {
    const reply = await uploadModel(gantry.baseUrl, name, fixturePath(`${name}.onnx`));
    assert.equal(reply.status, 201, `upload ${name}: ${JSON.stringify(reply.body)}`);
  }
});

after(async () => {
  await gantry?.cleanup();
});

describe('64-bit integers as JSON numbers, both ways', () => {
  test('INT64 extremes and 2^53 + 1, sent as numbers with no Content-Type, come back as the same exact numbers', async () => {
    assertExactOutput(await post('identity-int64', requestText('INT64', int64Extremes)), 'INT64', int64Extremes);
  });

  test('UINT64 up to 2^64 - 1', async () => {
    assertExactOutput(await post('identity-uint64', requestText('UINT64', uint64Extremes), { 'content-type': 'application/json' }), 'UINT64', uint64Extremes);
  });

  test('numbers and decimal strings mixed, nested, and integers in exponent form', async () => {
    const text = '{"inputs":[{"name":"input","shape":[2,2],"datatype":"INT64","data":[[9007199254740993,"-9223372036854775808"],[1e3,"42"]]}]}';
    const reply = await post('identity-int64', text);
    assert.equal(reply.status, 200, reply.body.toString('utf8', 0, 300));
    assert.deepEqual(parseExact(reply.body.toString('utf8')).outputs[0]!.data, [2n ** 53n + 1n, -(2n ** 63n), 1000n, 42n]);
  });

  test('binary extension: a binary INT64 input answered as JSON comes back as exact numbers', async () => {
    const header = Buffer.from(
      `{"inputs":[{"name":"input","shape":[1,${int64Extremes.length}],"datatype":"INT64","parameters":{"binary_data_size":${int64Extremes.length * 8}}}]}`,
    );
    const reply = await post('identity-int64', Buffer.concat([header, bytesOf(int64Extremes, 'INT64')]), {
      'inference-header-content-length': String(header.byteLength),
    });
    assertExactOutput(reply, 'INT64', int64Extremes);
  });

  test('binary extension: JSON numbers in the header are read exactly, answered as binary bytes', async () => {
    const header = Buffer.from(requestText('UINT64', uint64Extremes, ', "parameters": {"binary_data_output": true}'));
    const reply = await post('identity-uint64', header, { 'inference-header-content-length': String(header.byteLength) });
    assert.equal(reply.status, 200, reply.body.toString('utf8', 0, 300));
    const headerLength = Number(reply.headers.get('inference-header-content-length'));
    assert.deepEqual(reply.body.subarray(headerLength), bytesOf(uint64Extremes, 'UINT64'));
  });

  test('a body large enough for the JSON parse thread (over 1 MiB) is read exactly too', async () => {
    const count = 60_000;
    const values = Array.from({ length: count }, (_, index) => 2n ** 63n - 1n - BigInt(index) * 7919n);
    const text = requestText('INT64', values, ', "parameters": {"binary_data_output": true}');
    assert.ok(Buffer.byteLength(text) > 1024 ** 2, 'the body must be past the parse thread threshold');
    const reply = await post('identity-int64', text);
    assert.equal(reply.status, 200, reply.body.toString('utf8', 0, 300));
    const headerLength = Number(reply.headers.get('inference-header-content-length'));
    assert.ok(reply.body.subarray(headerLength).equals(bytesOf(values, 'INT64')), 'every value exact');
  });

  test('refusals name the input and the element: out of range, a fraction, a value past 64 bits', async () => {
    const cases: Array<[string, 'INT64' | 'UINT64', string, RegExp]> = [
      ['identity-uint64', 'UINT64', '[1, 18446744073709551616]', /Input 'input' \(UINT64\): element 1 is .*UINT64 range/],
      ['identity-uint64', 'UINT64', '[-1]', /element 0 .*UINT64 range/],
      ['identity-int64', 'INT64', '[0, 0, 9223372036854775808]', /element 2 .*INT64 range/],
      ['identity-int64', 'INT64', '[9007199254740993.5]', /element 0 .*INT64 range/],
      ['identity-int64', 'INT64', '[1e300]', /element 0 .*INT64 range/],
    ];
    for (const [model, datatype, data, message] of cases) {
      const count = (JSON.parse(data) as unknown[]).length;
      const reply = await post(model, `{"inputs":[{"name":"input","shape":[1,${count}],"datatype":"${datatype}","data":${data}}]}`);
      assert.equal(reply.status, 400, `${data}: ${reply.body.toString('utf8', 0, 300)}`);
      const body = JSON.parse(reply.body.toString('utf8')) as { code: string; error: string };
      assert.equal(body.code, 'INVALID_ARGUMENT');
      assert.match(body.error, message);
      assert.ok(body.error.length < 300, 'the message does not echo large values');
    }
  });
});
