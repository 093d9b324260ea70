/**
 * Open Inference Protocol (shared/reference/open-inference-protocol/inference_rest.md) and the binary tensor
 * data extension (shared/reference/triton-protocol/extension_binary_data.md), checked against a real gantry.
 * Every test cites the section it checks. Values are round-tripped through the identity-<type> fixtures.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parse as parseLossless, stringify } from 'lossless-json';
import type { JsonBody } from '../../support/json-body.js';
import { startGantry, uploadModel, fixturePath, withAdminKey, type GantryProcess } from '../helpers/gantry-process.js';
import { assertErrorBody, binaryOutputs, bytesOf, float16Bits, http, inferBinary, inferJson, packStrings, unpackStrings, type Reply } from './support.js';

let gantry: GantryProcess;
let base: string;

const identityTypes = ['bool', 'uint8', 'uint16', 'uint32', 'uint64', 'int8', 'int16', 'int32', 'int64', 'float16', 'float', 'double', 'string'] as const;

before(async () => {
  gantry = await startGantry();
  base = gantry.baseUrl;
  const uploads = [
    ...identityTypes.map((type) => [`identity-${type}`, `identity-${type}.onnx`] as const),
    ['multi-io', 'multi-io.onnx'] as const,
    ['tiny-mlp', 'tiny-mlp.onnx'] as const,
  ];
  for (const [name, file] of uploads) {
    const reply = await uploadModel(base, name, fixturePath(file));
    assert.equal(reply.status, 201, `upload ${name}: ${JSON.stringify(reply.body)}`);
  }
});

after(async () => {
  await gantry?.cleanup();
});

/**
 * One case per datatype of inference_rest.md "Tensor Data Types": JSON values in, the JSON values expected back,
 * and the little-endian binary layout of the same values (extension_binary_data.md "Binary Tensor Request").
 */
interface DatatypeCase {
  model: string;
  datatype: string;
  json: unknown[];
  expectedJson: unknown[];
  binary: Buffer;
  byteSize: number;
}

const datatypeCases: DatatypeCase[] = [
  {
    model: 'identity-bool',
    datatype: 'BOOL',
    json: [true, false, false, true],
    expectedJson: [true, false, false, true],
    binary: Buffer.from([1, 0, 0, 1]),
    byteSize: 1,
  },
  {
    model: 'identity-uint8',
    datatype: 'UINT8',
    json: [0, 1, 128, 255],
    expectedJson: [0, 1, 128, 255],
    binary: bytesOf(Uint8Array.from([0, 1, 128, 255])),
    byteSize: 1,
  },
  {
    model: 'identity-uint16',
    datatype: 'UINT16',
    json: [0, 1, 32768, 65535],
    expectedJson: [0, 1, 32768, 65535],
    binary: bytesOf(Uint16Array.from([0, 1, 32768, 65535])),
    byteSize: 2,
  },
  {
    model: 'identity-uint32',
    datatype: 'UINT32',
    json: [0, 1, 2147483648, 4294967295],
    expectedJson: [0, 1, 2147483648, 4294967295],
    binary: bytesOf(Uint32Array.from([0, 1, 2147483648, 4294967295])),
    byteSize: 4,
  },
  {
    model: 'identity-uint64',
    datatype: 'UINT64',
    // As Triton reads and writes them: JSON numbers, exact at any magnitude (the answer is read losslessly below).
    json: [0, 9007199254740991, 9007199254740993n, 18446744073709551615n],
    expectedJson: [0, 9007199254740991, 9007199254740993n, 18446744073709551615n],
    binary: bytesOf(BigUint64Array.from([0n, 9007199254740991n, 9007199254740993n, 18446744073709551615n])),
    byteSize: 8,
  },
  {
    model: 'identity-int8',
    datatype: 'INT8',
    json: [-128, -1, 0, 127],
    expectedJson: [-128, -1, 0, 127],
    binary: bytesOf(Int8Array.from([-128, -1, 0, 127])),
    byteSize: 1,
  },
  {
    model: 'identity-int16',
    datatype: 'INT16',
    json: [-32768, -1, 0, 32767],
    expectedJson: [-32768, -1, 0, 32767],
    binary: bytesOf(Int16Array.from([-32768, -1, 0, 32767])),
    byteSize: 2,
  },
  {
    model: 'identity-int32',
    datatype: 'INT32',
    json: [-2147483648, -1, 0, 2147483647],
    expectedJson: [-2147483648, -1, 0, 2147483647],
    binary: bytesOf(Int32Array.from([-2147483648, -1, 0, 2147483647])),
    byteSize: 4,
  },
  {
    model: 'identity-int64',
    datatype: 'INT64',
    json: [-9223372036854775808n, -1, 0, 9223372036854775807n],
    expectedJson: [-9223372036854775808n, -1, 0, 9223372036854775807n],
    binary: bytesOf(BigInt64Array.from([-9223372036854775808n, -1n, 0n, 9223372036854775807n])),
    byteSize: 8,
  },
  {
    model: 'identity-float16',
    datatype: 'FP16',
    // FP16 as JSON numbers; all four are exact in binary16 (65504 is the largest finite half).
    json: [1.5, -2, 65504, 0.0001220703125],
    expectedJson: [1.5, -2, 65504, 0.0001220703125],
    binary: bytesOf(Uint16Array.from([1.5, -2, 65504, 0.0001220703125].map(float16Bits))),
    byteSize: 2,
  },
  {
    model: 'identity-float',
    datatype: 'FP32',
    json: [1.5, -2.25, Math.fround(0.1), Math.fround(3.4e38)],
    expectedJson: [1.5, -2.25, Math.fround(0.1), Math.fround(3.4e38)],
    binary: bytesOf(Float32Array.from([1.5, -2.25, 0.1, 3.4e38])),
    byteSize: 4,
  },
  {
    model: 'identity-double',
    datatype: 'FP64',
    json: [0.1, -1e308, 5e-324, 123456.789],
    expectedJson: [0.1, -1e308, 5e-324, 123456.789],
    binary: bytesOf(Float64Array.from([0.1, -1e308, 5e-324, 123456.789])),
    byteSize: 8,
  },
  {
    model: 'identity-string',
    datatype: 'BYTES',
    // Non-ASCII (2-, 3- and 4-byte UTF-8) and an empty element.
    json: ['héllo', '', '日本語', 'emoji 🎉'],
    expectedJson: ['héllo', '', '日本語', 'emoji 🎉'],
    binary: packStrings(['héllo', '', '日本語', 'emoji 🎉']),
    byteSize: 0,
  },
];

/** A JSON number's exact value: a bigint where a double would round it, as a client with a 64-bit-exact parser reads it. */
const exactNumber = (digits: string): number | bigint => (/^-?\d+$/.test(digits) && !Number.isSafeInteger(Number(digits)) ? BigInt(digits) : Number(digits));

/**
 * An inference in JSON sent and read as Triton's clients do: 64-bit integers (bigints here) written as JSON numbers,
 * the answer read without rounding them (lossless-json; a devDependency of the tests only).
 */
async function inferExactJson(baseUrl: string, model: string, request: unknown): Promise<Reply & { text: string }> {
  const reply = (await inferJson(baseUrl, model, stringify(request))) as Reply & { text: string };
  return { ...reply, body: parseLossless(reply.text, undefined, exactNumber) };
}

function single(reply: Reply): JsonBody {
  assert.equal(reply.status, 200, stringify(reply.body));
  assert.equal(reply.body.outputs.length, 1);
  return reply.body.outputs[0];
}

describe('server endpoints (inference_rest.md "Server Metadata", "Server Live", "Server Ready")', () => {
  test('GET /v2: name, version and exactly the implemented extensions', async () => {
    // inference_rest.md "Server Metadata Response JSON Object": name, version, extensions.
    const reply = await http(base, 'GET', '/v2');
    assert.equal(reply.status, 200);
    assert.equal(typeof reply.body.name, 'string');
    assert.ok(reply.body.name.length > 0);
    assert.equal(typeof reply.body.version, 'string');
    // Each Triton extension document says the server reports its name in "extensions".
    assert.deepEqual([...reply.body.extensions].sort(), [
      'binary_tensor_data',
      'classification',
      'model_configuration',
      'model_repository',
      'schedule_policy',
      'statistics',
    ]);
  });

  test('GET /v2/health/live and /v2/health/ready answer 200 with a boolean', async () => {
    // inference_rest.md "Server Live Response JSON Objet": { live: bool }.
    const live = await http(base, 'GET', '/v2/health/live');
    assert.equal(live.status, 200);
    assert.equal(live.body.live, true);
    // "Server Ready Response JSON Object" (the spec's object literally says "live"; Gantry sends both).
    const ready = await http(base, 'GET', '/v2/health/ready');
    assert.equal(ready.status, 200);
    assert.equal(ready.body.ready, true);
    assert.equal(ready.body.live, true);
  });
});

describe('model endpoints (inference_rest.md "Model Metadata", "Model Ready")', () => {
  test('model metadata with and without version', async () => {
    // "Model Metadata Response JSON Object": name, versions, platform, inputs/outputs as $metadata_tensor;
    // variable-size dimensions are -1; "onnx_onnxv1" is the platform name for ONNX ("Platforms").
    const expected = {
      name: 'tiny-mlp',
      versions: ['1'],
      platform: 'onnx_onnxv1',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 256] }],
      outputs: [{ name: 'output', datatype: 'FP32', shape: [-1, 16] }],
    };
    const plain = await http(base, 'GET', '/v2/models/tiny-mlp');
    assert.equal(plain.status, 200);
    assert.deepEqual(plain.body, expected);
    const versioned = await http(base, 'GET', '/v2/models/tiny-mlp/versions/1');
    assert.equal(versioned.status, 200);
    assert.deepEqual(versioned.body, expected);
  });

  test('metadata of every identity model names its datatype', async () => {
    // "$metadata_tensor": datatype as in "Tensor Data Types".
    for (const testCase of datatypeCases) {
      const reply = await http(base, 'GET', `/v2/models/${testCase.model}`);
      assert.equal(reply.status, 200);
      assert.deepEqual(reply.body.inputs, [{ name: 'input', datatype: testCase.datatype, shape: [-1, -1] }]);
      assert.deepEqual(reply.body.outputs, [{ name: 'output', datatype: testCase.datatype, shape: [-1, -1] }]);
    }
  });

  test('model ready with and without version', async () => {
    // "Model Ready Response JSON Object": { name, ready }.
    for (const path of ['/v2/models/tiny-mlp/ready', '/v2/models/tiny-mlp/versions/1/ready']) {
      const reply = await http(base, 'GET', path);
      assert.equal(reply.status, 200, path);
      assert.deepEqual(reply.body, { name: 'tiny-mlp', ready: true });
    }
  });

  test('unknown model or version: HTTP error status and {"error": string}', async () => {
    // "Model Metadata Response JSON Error Object" / "Inference Response JSON Error Object".
    assertErrorBody(await http(base, 'GET', '/v2/models/no-such-model'), 404, 'NOT_FOUND');
    assertErrorBody(await http(base, 'GET', '/v2/models/tiny-mlp/versions/7'), 404, 'NOT_FOUND');
    assertErrorBody(await http(base, 'GET', '/v2/models/no-such-model/ready'), 404, 'NOT_FOUND');
    assertErrorBody(await inferJson(base, 'no-such-model', { inputs: [{ name: 'x', shape: [1], datatype: 'FP32', data: [1] }] }), 404, 'NOT_FOUND');
    assertErrorBody(
      await inferJson(base, 'tiny-mlp', { inputs: [{ name: 'input', shape: [1, 256], datatype: 'FP32', data: new Array(256).fill(0) }] }, '9'),
      404,
      'NOT_FOUND',
    );
  });
});

describe('inference (inference_rest.md "Inference")', () => {
  test('infer with and without version; id is echoed; model_name and model_version are set', async () => {
    // "Inference Request JSON Object" (id optional, must be returned) and "Inference Response JSON Object".
    const request = { id: 'req-1', inputs: [{ name: 'input', shape: [1, 256], datatype: 'FP32', data: new Array(256).fill(0.5) }] };
    for (const version of [undefined, '1']) {
      const reply = await inferJson(base, 'tiny-mlp', request, version);
      assert.equal(reply.status, 200, JSON.stringify(reply.body));
      assert.equal(reply.body.model_name, 'tiny-mlp');
      assert.equal(reply.body.model_version, '1');
      assert.equal(reply.body.id, 'req-1');
      // "outputs" optional in the request: all outputs are returned.
      assert.equal(reply.body.outputs.length, 1);
      assert.equal(reply.body.outputs[0].name, 'output');
      assert.equal(reply.body.outputs[0].datatype, 'FP32');
      assert.deepEqual(reply.body.outputs[0].shape, [1, 16]);
      assert.equal(reply.body.outputs[0].data.length, 16);
    }
  });

  test('tensor data may be nested or flat ("Tensor Data")', async () => {
    const flat = await inferJson(base, 'identity-int32', { inputs: [{ name: 'input', shape: [2, 2], datatype: 'INT32', data: [1, 2, 4, 5] }] });
    const nested = await inferJson(base, 'identity-int32', {
      inputs: [
        {
          name: 'input',
          shape: [2, 2],
          datatype: 'INT32',
          data: [
            [1, 2],
            [4, 5],
          ],
        },
      ],
    });
    assert.deepEqual(single(flat).data, [1, 2, 4, 5]);
    assert.deepEqual(single(nested).data, [1, 2, 4, 5]);
  });

  for (const testCase of datatypeCases) {
    test(`${testCase.datatype} round-trips exactly as JSON ("Tensor Data Types")`, async () => {
      const reply = await inferExactJson(base, testCase.model, {
        inputs: [{ name: 'input', shape: [2, 2], datatype: testCase.datatype, data: testCase.json }],
      });
      const output = single(reply);
      assert.equal(output.name, 'output');
      assert.equal(output.datatype, testCase.datatype);
      assert.deepEqual(output.shape, [2, 2]);
      assert.deepEqual(output.data, testCase.expectedJson);
    });

    test(`${testCase.datatype} round-trips exactly as binary in and out (extension_binary_data.md)`, async () => {
      // "Binary Tensor Request": binary_data_size on the input, binary_data_output on the request.
      const header = {
        inputs: [{ name: 'input', shape: [2, 2], datatype: testCase.datatype, parameters: { binary_data_size: testCase.binary.byteLength } }],
        parameters: { binary_data_output: true },
      };
      const reply = await inferBinary(base, testCase.model, header, [testCase.binary]);
      assert.equal(reply.status, 200, JSON.stringify(reply.header));
      assert.ok(reply.headers.get('inference-header-content-length') !== null, 'a binary response needs Inference-Header-Content-Length');
      assert.equal(Number(reply.headers.get('content-length')), reply.raw.byteLength);
      const output = reply.header.outputs[0];
      assert.equal(output.datatype, testCase.datatype);
      assert.deepEqual(output.shape, [2, 2]);
      assert.equal(output.data, undefined, 'a binary output carries no JSON data');
      assert.equal(output.parameters.binary_data_size, testCase.binary.byteLength);
      if (testCase.byteSize > 0) assert.equal(output.parameters.binary_data_size, 4 * testCase.byteSize, 'native size per element');
      // Little-endian, row-major, no padding: byte-identical to what was sent.
      assert.deepEqual(binaryOutputs(reply).get('output'), testCase.binary);
    });
  }

  test('INT64/UINT64 also accept decimal strings and answer beyond-2^53 values as exact JSON numbers', async () => {
    const int64Reply = await inferExactJson(base, 'identity-int64', {
      inputs: [{ name: 'input', shape: [1, 3], datatype: 'INT64', data: ['9223372036854775807', '-9223372036854775808', '9007199254740993'] }],
    });
    assert.deepEqual(single(int64Reply).data, [9223372036854775807n, -9223372036854775808n, 9007199254740993n]);
    assert.match(int64Reply.text, /"data":\[9223372036854775807,-9223372036854775808,9007199254740993\]/, 'numbers, not strings, on the wire');
    const uint64 = single(
      await inferExactJson(base, 'identity-uint64', { inputs: [{ name: 'input', shape: [1, 1], datatype: 'UINT64', data: ['18446744073709551615'] }] }),
    );
    assert.deepEqual(uint64.data, [18446744073709551615n]);
  });

  test('BYTES as binary in, JSON out: non-ASCII and empty strings survive', async () => {
    const values = ['', 'ünïcødé', '中文', '🎉🎉', ''];
    const reply = await inferBinary(
      base,
      'identity-string',
      { inputs: [{ name: 'input', shape: [1, 5], datatype: 'BYTES', parameters: { binary_data_size: packStrings(values).byteLength } }] },
      [packStrings(values)],
    );
    assert.equal(reply.status, 200, JSON.stringify(reply.header));
    assert.equal(reply.headers.get('inference-header-content-length'), null, 'no binary output was asked for');
    assert.deepEqual(reply.header.outputs[0].data, values);
  });

  test('BYTES JSON in, binary out: 4-byte little-endian length then bytes', async () => {
    const values = ['a', '', 'ßß'];
    const reply = await inferBinary(
      base,
      'identity-string',
      { inputs: [{ name: 'input', shape: [3, 1], datatype: 'BYTES', data: values }], outputs: [{ name: 'output', parameters: { binary_data: true } }] },
      [],
    );
    assert.equal(reply.status, 200, JSON.stringify(reply.header));
    const bytes = binaryOutputs(reply).get('output')!;
    assert.deepEqual([...bytes], [1, 0, 0, 0, 0x61, 0, 0, 0, 0, 4, 0, 0, 0, 0xc3, 0x9f, 0xc3, 0x9f]);
    assert.deepEqual(unpackStrings(bytes), values);
  });

  test('FP16 JSON numbers in, binary out: IEEE half bits', async () => {
    const reply = await inferBinary(
      base,
      'identity-float16',
      { inputs: [{ name: 'input', shape: [1, 3], datatype: 'FP16', data: [1.5, -2, 65504] }], parameters: { binary_data_output: true } },
      [],
    );
    assert.equal(reply.status, 200, JSON.stringify(reply.header));
    assert.deepEqual([...new Uint16Array(new Uint8Array(binaryOutputs(reply).get('output')!).buffer)], [0x3e00, 0xc000, 0x7bff]);
  });

  test('per-output binary_data:false overrides request-level binary_data_output:true', async () => {
    // extension_binary_data.md: "If "binary_data" is specified on an output it overrides this setting."
    const reply = await inferBinary(
      base,
      'identity-int16',
      {
        inputs: [{ name: 'input', shape: [1, 2], datatype: 'INT16', data: [7, -7] }],
        outputs: [{ name: 'output', parameters: { binary_data: false } }],
        parameters: { binary_data_output: true },
      },
      [],
    );
    assert.equal(reply.status, 200, JSON.stringify(reply.header));
    assert.equal(reply.headers.get('inference-header-content-length'), null);
    assert.equal(reply.binary.byteLength, 0);
    assert.deepEqual(reply.header.outputs[0].data, [7, -7]);
  });

  test('mixed JSON and binary inputs; two binary outputs laid out in output order (multi-io.onnx)', async () => {
    const a = [1, 2, 3, 4];
    const b = Float32Array.from([10, 20, 30, 40]);
    const reply = await inferBinary(
      base,
      'multi-io',
      {
        inputs: [
          { name: 'a', shape: [1, 4], datatype: 'FP32', data: a },
          { name: 'b', shape: [1, 4], datatype: 'FP32', parameters: { binary_data_size: 16 } },
        ],
        // product first: the binary part must follow the order of the JSON outputs, not the model's.
        outputs: [
          { name: 'product', parameters: { binary_data: true } },
          { name: 'sum', parameters: { binary_data: true } },
        ],
      },
      [bytesOf(b)],
    );
    assert.equal(reply.status, 200, JSON.stringify(reply.header));
    assert.deepEqual(
      reply.header.outputs.map((output: { name: string }) => output.name),
      ['product', 'sum'],
    );
    assert.equal(reply.binary.byteLength, 32);
    assert.equal(Number(reply.headers.get('inference-header-content-length')) + 32, Number(reply.headers.get('content-length')));
    assert.deepEqual([...new Float32Array(new Uint8Array(reply.binary.subarray(0, 16)).buffer)], [10, 40, 90, 160]);
    assert.deepEqual([...new Float32Array(new Uint8Array(reply.binary.subarray(16, 32)).buffer)], [11, 22, 33, 44]);
  });

  test('large binary inputs and outputs (2 × 128 KiB each way) arrive whole and in order (multi-io.onnx)', async () => {
    // Past 64 KiB Gantry moves tensors through Redis keys of their own, one part per tensor: this covers the
    // multi-part write both ways (two inputs in, two outputs back).
    const rows = 8192;
    const a = Float32Array.from({ length: rows * 4 }, (_, index) => (index % 1000) / 8);
    const b = Float32Array.from({ length: rows * 4 }, (_, index) => 1 + (index % 7));
    const reply = await inferBinary(
      base,
      'multi-io',
      {
        inputs: [
          { name: 'a', shape: [rows, 4], datatype: 'FP32', parameters: { binary_data_size: a.byteLength } },
          { name: 'b', shape: [rows, 4], datatype: 'FP32', parameters: { binary_data_size: b.byteLength } },
        ],
        parameters: { binary_data_output: true },
      },
      [bytesOf(a), bytesOf(b)],
    );
    assert.equal(reply.status, 200, JSON.stringify(reply.header));
    const sizes = reply.header.outputs.map((output: { parameters: { binary_data_size: number } }) => output.parameters.binary_data_size);
    assert.deepEqual(sizes, [a.byteLength, a.byteLength]);
    const first = new Float32Array(new Uint8Array(reply.binary.subarray(0, a.byteLength)).buffer);
    const second = new Float32Array(new Uint8Array(reply.binary.subarray(a.byteLength)).buffer);
    const byName = new Map([
      [reply.header.outputs[0].name, first],
      [reply.header.outputs[1].name, second],
    ]);
    for (let index = 0; index < a.length; index++) {
      if (byName.get('sum')![index] !== Math.fround(a[index]! + b[index]!)) assert.fail(`sum[${index}]`);
      if (byName.get('product')![index] !== Math.fround(a[index]! * b[index]!)) assert.fail(`product[${index}]`);
    }
  });

  test('one output binary, the other JSON', async () => {
    const reply = await inferBinary(
      base,
      'multi-io',
      {
        inputs: [
          { name: 'a', shape: [1, 4], datatype: 'FP32', parameters: { binary_data_size: 16 } },
          { name: 'b', shape: [1, 4], datatype: 'FP32', parameters: { binary_data_size: 16 } },
        ],
        outputs: [{ name: 'sum', parameters: { binary_data: true } }, { name: 'product' }],
      },
      [bytesOf(Float32Array.from([1, 1, 1, 1])), bytesOf(Float32Array.from([2, 3, 4, 5]))],
    );
    assert.equal(reply.status, 200, JSON.stringify(reply.header));
    const [sum, product] = reply.header.outputs;
    assert.equal(sum.parameters.binary_data_size, 16);
    assert.equal(sum.data, undefined);
    assert.deepEqual(product.data, [2, 3, 4, 5]);
    assert.deepEqual([...new Float32Array(new Uint8Array(reply.binary).buffer)], [3, 4, 5, 6]);
  });

  test('BF16 is refused with 400', async () => {
    const reply = await inferJson(base, 'identity-float16', { inputs: [{ name: 'input', shape: [1, 1], datatype: 'BF16', data: [1] }] });
    assertErrorBody(reply, 400, 'INVALID_ARGUMENT');
    assert.match(reply.body.error, /BF16/);
  });

  test('malformed requests: 4xx with {"error": string} ("Inference Response JSON Error Object")', async () => {
    // wrong element count for the shape
    assertErrorBody(
      await inferJson(base, 'identity-int32', { inputs: [{ name: 'input', shape: [2, 2], datatype: 'INT32', data: [1, 2, 3] }] }),
      400,
      'INVALID_ARGUMENT',
    );
    // wrong datatype for the model's input
    assertErrorBody(
      await inferJson(base, 'identity-int32', { inputs: [{ name: 'input', shape: [1, 1], datatype: 'FP32', data: [1] }] }),
      400,
      'INVALID_ARGUMENT',
    );
    // out-of-range integer
    assertErrorBody(
      await inferJson(base, 'identity-uint8', { inputs: [{ name: 'input', shape: [1, 1], datatype: 'UINT8', data: [256] }] }),
      400,
      'INVALID_ARGUMENT',
    );
    // INT64 out of range as a JSON number (2^63 is written 9223372036854776000)
    assertErrorBody(
      await inferJson(base, 'identity-int64', { inputs: [{ name: 'input', shape: [1, 1], datatype: 'INT64', data: [2 ** 63] }] }),
      400,
      'INVALID_ARGUMENT',
    );
    // unknown input and unknown requested output
    assertErrorBody(
      await inferJson(base, 'identity-int32', { inputs: [{ name: 'nope', shape: [1, 1], datatype: 'INT32', data: [1] }] }),
      400,
      'INVALID_ARGUMENT',
    );
    assertErrorBody(
      await inferJson(base, 'identity-int32', { inputs: [{ name: 'input', shape: [1, 1], datatype: 'INT32', data: [1] }], outputs: [{ name: 'nope' }] }),
      400,
      'INVALID_ARGUMENT',
    );
    // not JSON at all
    const garbage = await http(base, 'POST', '/v2/models/identity-int32/infer', '{"inputs": [', {});
    assert.ok(garbage.status >= 400 && garbage.status < 500, String(garbage.status));
    assert.equal(typeof garbage.body.error, 'string');
    // binary_data_size larger than the body
    const short = await inferBinary(
      base,
      'identity-int32',
      { inputs: [{ name: 'input', shape: [1, 2], datatype: 'INT32', parameters: { binary_data_size: 8 } }] },
      [Buffer.alloc(4)],
    );
    assertErrorBody(short, 400, 'INVALID_ARGUMENT');
  });

  test('raw binary request (Inference-Header-Content-Length: 0) is refused with a 4xx error object', async () => {
    // extension_binary_data.md "Raw Binary Request": Gantry does not implement this optional form.
    const response = await fetch(`${base}/v2/models/identity-float/infer`, {
      method: 'POST',
      headers: withAdminKey({ 'content-type': 'application/octet-stream', 'inference-header-content-length': '0' }),
      body: Float32Array.from([1, 2, 3, 4]),
    });
    const body = (await response.json()) as JsonBody;
    assert.equal(response.status, 400, JSON.stringify(body));
    assert.equal(typeof body.error, 'string');
  });
});

describe("the specs' own examples, adapted to the fixture models", () => {
  test('inference_rest.md "Inference Request Examples": id 42, two inputs, one requested output', async () => {
    // The example's model takes input0 UINT32 [2,2] and input1 BOOL [3] and returns output0 FP32 [3,2]; multi-io
    // stands in: two FP32 [2,4] inputs and only one of its two outputs requested.
    const reply = await inferJson(base, 'multi-io', {
      id: '42',
      inputs: [
        { name: 'a', shape: [2, 4], datatype: 'FP32', data: [1, 2, 3, 4, 5, 6, 7, 8] },
        {
          name: 'b',
          shape: [2, 4],
          datatype: 'FP32',
          data: [
            [0.5, 0.5, 0.5, 0.5],
            [1, 1, 1, 1],
          ],
        },
      ],
      outputs: [{ name: 'sum' }],
    });
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    assert.equal(reply.headers.get('content-type')?.startsWith('application/json'), true);
    assert.equal(reply.body.id, '42');
    assert.deepEqual(reply.body.outputs, [{ name: 'sum', shape: [2, 4], datatype: 'FP32', data: [1.5, 2.5, 3.5, 4.5, 6, 7, 8, 9] }]);
  });

  test('extension_binary_data.md "Examples": binary inputs, output0 requested as binary_data', async () => {
    // The example sends UINT32 [2,2] (16 bytes) + BOOL [3] (3 bytes); here the two FP32 [1,4] inputs of
    // multi-io (16 + 16 bytes), with "model_name" in the body as in the example, and one binary output back.
    const reply = await inferBinary(
      base,
      'multi-io',
      {
        model_name: 'multi-io',
        inputs: [
          { name: 'a', shape: [1, 4], datatype: 'FP32', parameters: { binary_data_size: 16 } },
          { name: 'b', shape: [1, 4], datatype: 'FP32', parameters: { binary_data_size: 16 } },
        ],
        outputs: [{ name: 'product', parameters: { binary_data: true } }],
      },
      [bytesOf(Float32Array.from([1, 2, 3, 4])), bytesOf(Float32Array.from([2, 2, 2, 2]))],
    );
    assert.equal(reply.status, 200, JSON.stringify(reply.header));
    assert.equal(reply.headers.get('content-type'), 'application/octet-stream');
    assert.deepEqual(reply.header.outputs, [{ name: 'product', shape: [1, 4], datatype: 'FP32', parameters: { binary_data_size: 16 } }]);
    assert.deepEqual([...new Float32Array(new Uint8Array(reply.binary).buffer)], [2, 4, 6, 8]);
  });
});
