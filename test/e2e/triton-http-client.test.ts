/**
 * Requests byte for byte as Triton's Python HTTP client (tritonclient.http, read in its source: http/_client.py,
 * _utils.py, _infer_input.py, _infer_result.py) sends them, against a real gantry process: no Content-Type,
 * Inference-Header-Content-Length when any input is binary, bodies compressed with gzip or deflate
 * (`request_compression_algorithm`), answers asked compressed (`response_compression_algorithm`) and decoded the
 * way the client decodes them: the whole body decompressed, then split at Inference-Header-Content-Length.
 * Also the refusals around them: a compression bomb (413, memory flat), a corrupt body (400), an unknown coding
 * (415), each followed by a well-behaved call that is still answered.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { Readable } from 'node:stream';
import { createGzip, deflateRawSync, deflateSync, gunzipSync, gzipSync, inflateSync } from 'node:zlib';
import { parse as parseExactJson } from 'lossless-json';
import { fixturePath, inferJson, startGantry, testAdminKey, uploadModel, type GantryProcess } from '../helpers/gantry-process.js';

/** What the client's HTTP library (geventhttpclient) sends besides the body: no Content-Type, ever. */
const clientHeaders = { 'User-Agent': 'python/gevent-http-client-2.0.11', Authorization: `Bearer ${testAdminKey}` };

/** GANTRY_MAX_REQUEST_BYTES of this gantry: the bomb inflates far past it. */
const requestLimitBytes = 1024 * 1024;
/** GANTRY_RESPONSE_COMPRESSION_MIN_BYTES of this gantry. */
const compressionMinBytes = 512;

interface RawReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The body exactly as it came over the wire (never decompressed here). */
  body: Buffer;
}

/** One POST with exactly these headers (node:http adds only Host and Connection, as the client's library does). */
function post(baseUrl: string, path: string, body: Buffer | Readable, headers: Record<string, string>): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(`${baseUrl}${path}`, { method: 'POST', headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode!, headers: response.headers, body: Buffer.concat(chunks) }));
      response.on('error', reject);
    });
    // A refused body may be cut off by the server's answer: the answer is what is checked.
    outgoing.on('error', reject);
    if (Buffer.isBuffer(body)) outgoing.end(body);
    else body.pipe(outgoing);
  });
}

/** Python's json.dumps (separators ', ' and ': '), for the values these requests hold (ASCII strings, short floats). */
function pythonJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(pythonJson).join(', ')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.entries(value)
      .map(([key, entry]) => `${JSON.stringify(key)}: ${pythonJson(entry)}`)
      .join(', ')}}`;
  }
  return JSON.stringify(value);
}

/**
 * The body and headers tritonclient.http's infer() builds: the JSON request, then each binary input's bytes;
 * Inference-Header-Content-Length only when some input is binary; then, for `compression`, the whole body
 * compressed (gzip.compress or zlib.compress) and Content-Encoding set.
 */
function tritonRequest(request: object, binaryInputs: Buffer[], compression?: 'gzip' | 'deflate', responseCompression?: 'gzip' | 'deflate') {
  const json = Buffer.from(pythonJson(request));
  let body = binaryInputs.length === 0 ? json : Buffer.concat([json, ...binaryInputs]);
  const headers: Record<string, string> = { ...clientHeaders };
  if (compression === 'gzip') {
    headers['Content-Encoding'] = 'gzip';
    body = gzipSync(body);
  } else if (compression === 'deflate') {
    headers['Content-Encoding'] = 'deflate';
    body = deflateSync(body);
  }
  if (responseCompression !== undefined) headers['Accept-Encoding'] = responseCompression;
  if (binaryInputs.length > 0) headers['Inference-Header-Content-Length'] = String(json.byteLength);
  headers['Content-Length'] = String(body.byteLength);
  return { body, headers };
}

/** The JSON part of an inference answer, as far as these tests read it. */
interface InferAnswer {
  model_name: string;
  outputs: Array<{ name: string; data?: unknown[]; parameters?: { binary_data_size?: number } }>;
}

interface DecodedResult {
  json: InferAnswer;
  /** Each binary output's bytes, by name. */
  binary: Map<string, Buffer>;
}

/** InferResult's decoding: decompress by Content-Encoding, split at Inference-Header-Content-Length, slice outputs by binary_data_size. */
function decodeLikeClient(reply: RawReply): DecodedResult {
  const encoding = reply.headers['content-encoding'];
  const whole = encoding === 'gzip' ? gunzipSync(reply.body) : encoding === 'deflate' ? inflateSync(reply.body) : reply.body;
  const headerLength = reply.headers['inference-header-content-length'];
  if (headerLength === undefined) return { json: JSON.parse(whole.toString('utf8')) as InferAnswer, binary: new Map() };
  const length = Number(headerLength);
  const json = JSON.parse(whole.subarray(0, length).toString('utf8')) as InferAnswer;
  const binary = new Map<string, Buffer>();
  let offset = length;
  for (const output of json.outputs) {
    const size = output.parameters?.binary_data_size;
    if (size === undefined) continue;
    binary.set(output.name, whole.subarray(offset, offset + size));
    offset += size;
  }
  assert.equal(offset, whole.byteLength, 'the binary outputs fill the rest of the body exactly');
  return { json, binary };
}

function floatsOf(bytes: Buffer): number[] {
  return Array.from(new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)));
}

function float32Bytes(values: number[]): Buffer {
  return Buffer.from(Float32Array.from(values).buffer);
}

function describe400(reply: RawReply): string {
  return `${reply.status} ${reply.body.toString('utf8').slice(0, 300)}`;
}

/** Values exact in FP32 whose Python and JavaScript spellings agree (no integral floats, no exponents). */
const a = [0.5, -1.25, 2.75, 3.5];
const b = [1.5, 2.25, -0.75, 0.125];

/** multi-io with `a` as JSON and `b` as binary, `sum` asked as JSON and `product` as binary, as the client writes it. */
function mixedRequest(compression?: 'gzip' | 'deflate', responseCompression?: 'gzip' | 'deflate') {
  return tritonRequest(
    {
      inputs: [
        { name: 'a', shape: [1, 4], datatype: 'FP32', data: a },
        { name: 'b', shape: [1, 4], datatype: 'FP32', parameters: { binary_data_size: 16 } },
      ],
      outputs: [
        { name: 'sum', parameters: { binary_data: false } },
        { name: 'product', parameters: { binary_data: true } },
      ],
    },
    [float32Bytes(b)],
    compression,
    responseCompression,
  );
}

function assertMixedAnswer(reply: RawReply): void {
  assert.equal(reply.status, 200, describe400(reply));
  const result = decodeLikeClient(reply);
  const sum = result.json.outputs.find((output) => output.name === 'sum');
  assert.deepEqual(
    sum?.data,
    a.map((value, index) => value + b[index]!),
  );
  assert.deepEqual(
    floatsOf(result.binary.get('product')!),
    a.map((value, index) => value * b[index]!),
  );
}

async function metricsText(baseUrl: string): Promise<string> {
  const response = await fetch(`${baseUrl}/metrics`, { headers: { authorization: `Bearer ${testAdminKey}` } });
  assert.equal(response.status, 200);
  return response.text();
}

function metricValue(text: string, series: string): number {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

describe('requests as tritonclient.http sends them', () => {
  let gantry: GantryProcess;

  before(async () => {
    gantry = await startGantry({
      env: { GANTRY_MAX_REQUEST_BYTES: String(requestLimitBytes), GANTRY_RESPONSE_COMPRESSION_MIN_BYTES: String(compressionMinBytes) },
    });
    for (const [name, file] of [
      ['multi', 'multi-io.onnx'],
      ['mlp', 'tiny-mlp.onnx'],
      ['int64', 'identity-int64.onnx'],
      ['uint64', 'identity-uint64.onnx'],
    ] as const) {
      const upload = await uploadModel(gantry.baseUrl, name, fixturePath(file));
      assert.equal(upload.status, 201, JSON.stringify(upload.body));
    }
  });
  after(async () => {
    await gantry?.cleanup();
  });

  /** A plain JSON call (fetch, Content-Type: application/json) that must keep working after each refusal. */
  const assertStillServing = async () => {
    const reply = await inferJson(gantry.baseUrl, 'multi', {
      inputs: [
        { name: 'a', datatype: 'FP32', shape: [1, 4], data: a },
        { name: 'b', datatype: 'FP32', shape: [1, 4], data: b },
      ],
    });
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
  };

  test('an all-JSON request without Content-Type or Inference-Header-Content-Length; outputs default to binary, as the client asks', async () => {
    const { body, headers } = tritonRequest(
      {
        inputs: [
          { name: 'a', shape: [1, 4], datatype: 'FP32', data: a },
          { name: 'b', shape: [1, 4], datatype: 'FP32', data: b },
        ],
        parameters: { binary_data_output: true },
      },
      [],
    );
    assert.equal(headers['Inference-Header-Content-Length'], undefined);
    const reply = await post(gantry.baseUrl, '/v2/models/multi/infer', body, headers);
    assert.equal(reply.status, 200, describe400(reply));
    const result = decodeLikeClient(reply);
    assert.equal(result.json.model_name, 'multi');
    assert.deepEqual(
      floatsOf(result.binary.get('sum')!),
      a.map((value, index) => value + b[index]!),
    );
    assert.deepEqual(
      floatsOf(result.binary.get('product')!),
      a.map((value, index) => value * b[index]!),
    );
  });

  test('a JSON and a binary input without Content-Type; JSON and binary outputs decode as the client decodes them', async () => {
    const { body, headers } = mixedRequest();
    assertMixedAnswer(await post(gantry.baseUrl, '/v2/models/multi/versions/1/infer', body, headers));
  });

  test('64-bit integers at their extremes as JSON numbers (numpy tolist() through json.dumps) come back exact, as JSON numbers and as binary', async () => {
    // The client's json.loads keeps integers exact: read the answers the same way (every integer as a BigInt).
    const exactJson = (bytes: Buffer) =>
      parseExactJson(bytes.toString('utf8'), null, (text) => (/^-?\d+$/.test(text) ? BigInt(text) : Number(text))) as InferAnswer;
    const cases = [
      { model: 'int64', datatype: 'INT64', values: [-(2n ** 63n), 2n ** 63n - 1n, 2n ** 53n + 1n, -(2n ** 53n) - 1n, 0n] },
      { model: 'uint64', datatype: 'UINT64', values: [2n ** 64n - 1n, 2n ** 63n, 2n ** 53n + 1n, 1n, 0n] },
    ];
    for (const { model, datatype, values } of cases) {
      // json.dumps writes Python ints as their digits: JSON numbers far past 2^53.
      const header = `{"inputs": [{"name": "input", "shape": [1, ${values.length}], "datatype": "${datatype}", "data": [${values.join(', ')}]}], "outputs": [{"name": "output", "parameters": {"binary_data": false}}]}`;
      const json = await post(gantry.baseUrl, `/v2/models/${model}/infer`, Buffer.from(header), {
        ...clientHeaders,
        'Content-Length': String(Buffer.byteLength(header)),
      });
      assert.equal(json.status, 200, describe400(json));
      assert.deepEqual(exactJson(json.body).outputs[0]!.data, values, `${datatype} as JSON numbers`);

      const binaryHeader = header.replace('"binary_data": false', '"binary_data": true');
      const binary = await post(gantry.baseUrl, `/v2/models/${model}/infer`, Buffer.from(binaryHeader), {
        ...clientHeaders,
        'Content-Length': String(Buffer.byteLength(binaryHeader)),
      });
      assert.equal(binary.status, 200, describe400(binary));
      const bytes = decodeLikeClient(binary).binary.get('output')!;
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const decoded = values.map((_, index) => (datatype === 'INT64' ? view.getBigInt64(index * 8, true) : view.getBigUint64(index * 8, true)));
      assert.deepEqual(decoded, values, `${datatype} as binary`);
    }
  });

  test('any Content-Type is read the same way, even one Fastify cannot parse', async () => {
    for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'json', '']) {
      const { body, headers } = mixedRequest();
      const reply = await post(gantry.baseUrl, '/v2/models/multi/infer', body, { ...headers, 'Content-Type': contentType });
      assert.equal(reply.status, 200, `${contentType}: ${describe400(reply)}`);
      assertMixedAnswer(reply);
    }
  });

  test('gzip and deflate bodies (request_compression_algorithm); Inference-Header-Content-Length counts the decompressed JSON', async () => {
    for (const compression of ['gzip', 'deflate'] as const) {
      const { body, headers } = mixedRequest(compression);
      assertMixedAnswer(await post(gantry.baseUrl, '/v2/models/multi/infer', body, headers));
    }
    // Some clients send deflate as the bare stream, without zlib's wrapper: read as well.
    const plain = mixedRequest();
    const raw = deflateRawSync(plain.body);
    const reply = await post(gantry.baseUrl, '/v2/models/multi/infer', raw, {
      ...plain.headers,
      'Content-Encoding': 'deflate',
      'Content-Length': String(raw.byteLength),
    });
    assertMixedAnswer(reply);
  });

  test('answers compressed on request (response_compression_algorithm), the header length still that of the uncompressed JSON', async () => {
    const batch = 8;
    const input = Array.from({ length: batch * 256 }, (_, index) => ((index % 13) - 6) / 8);
    const reference = await inferJson(gantry.baseUrl, 'mlp', { inputs: [{ name: 'input', datatype: 'FP32', shape: [batch, 256], data: input }] });
    assert.equal(reference.status, 200, JSON.stringify(reference.body));
    const expected: number[] = reference.body.outputs[0].data;
    for (const coding of ['gzip', 'deflate'] as const) {
      // The client's default: no outputs named, all of them binary.
      const { body, headers } = tritonRequest(
        {
          inputs: [{ name: 'input', shape: [batch, 256], datatype: 'FP32', parameters: { binary_data_size: batch * 256 * 4 } }],
          parameters: { binary_data_output: true },
        },
        [float32Bytes(input)],
        coding,
        coding,
      );
      const reply = await post(gantry.baseUrl, '/v2/models/mlp/infer', body, headers);
      assert.equal(reply.status, 200, describe400(reply));
      assert.equal(reply.headers['content-encoding'], coding);
      assert.match(String(reply.headers.vary), /accept-encoding/i);
      assert.deepEqual(floatsOf(decodeLikeClient(reply).binary.get('output')!), expected);

      // The same answer as JSON, compressed too.
      const json = tritonRequest(
        { inputs: [{ name: 'input', shape: [batch, 256], datatype: 'FP32', data: input }], outputs: [{ name: 'output', parameters: { binary_data: false } }] },
        [],
        undefined,
        coding,
      );
      const jsonReply = await post(gantry.baseUrl, '/v2/models/mlp/infer', json.body, json.headers);
      assert.equal(jsonReply.status, 200, describe400(jsonReply));
      assert.equal(jsonReply.headers['content-encoding'], coding);
      assert.deepEqual(decodeLikeClient(jsonReply).json.outputs[0]!.data, expected);
    }
  });

  test('answers below GANTRY_RESPONSE_COMPRESSION_MIN_BYTES, or to a caller refusing gzip and deflate (q=0), go uncompressed', async () => {
    const small = mixedRequest(undefined, 'gzip');
    const reply = await post(gantry.baseUrl, '/v2/models/multi/infer', small.body, small.headers);
    assert.ok(reply.body.byteLength < compressionMinBytes, `the answer is small (${reply.body.byteLength} bytes)`);
    assert.equal(reply.headers['content-encoding'], undefined);
    assertMixedAnswer(reply);

    const input = Array.from({ length: 8 * 256 }, (_, index) => index / 1024);
    const large = tritonRequest(
      { inputs: [{ name: 'input', shape: [8, 256], datatype: 'FP32', data: input }], outputs: [{ name: 'output', parameters: { binary_data: false } }] },
      [],
    );
    const refused = await post(gantry.baseUrl, '/v2/models/mlp/infer', large.body, { ...large.headers, 'Accept-Encoding': 'gzip;q=0, deflate;q=0, identity' });
    assert.equal(refused.status, 200, describe400(refused));
    assert.ok(refused.body.byteLength >= compressionMinBytes);
    assert.equal(refused.headers['content-encoding'], undefined);
    assert.equal(decodeLikeClient(refused).json.outputs[0]!.data!.length, 8 * 16);
  });

  test('a compression bomb is refused with 413 naming the limit, and the API never holds it inflated', async () => {
    const inflatedBytes = 256 * 1024 * 1024;
    const residentBefore = metricValue(await metricsText(gantry.baseUrl), 'process_resident_memory_bytes');
    const rejectionsBefore = metricValue(await metricsText(gantry.baseUrl), 'gantry_limit_rejections_total{limit="decompressed_body"}');
    // 256 MiB of zeros, gzipped as it is made (about 250 KB, well under the 1 MiB limit as sent).
    const zeros = Buffer.alloc(1024 * 1024);
    const compressed: Buffer[] = [];
    const gzip = createGzip({ level: 9 });
    gzip.on('data', (chunk: Buffer) => compressed.push(chunk));
    const done = new Promise((resolve) => gzip.once('end', resolve));
    for (let written = 0; written < inflatedBytes; written += zeros.byteLength)
      if (!gzip.write(zeros)) await new Promise((resolve) => gzip.once('drain', resolve));
    gzip.end();
    await done;
    const bomb = Buffer.concat(compressed);
    assert.ok(bomb.byteLength < requestLimitBytes, `the bomb is small as sent (${bomb.byteLength} bytes)`);

    for (const inferenceHeader of [undefined, '100']) {
      const headers: Record<string, string> = { ...clientHeaders, 'Content-Encoding': 'gzip', 'Content-Length': String(bomb.byteLength) };
      if (inferenceHeader !== undefined) headers['Inference-Header-Content-Length'] = inferenceHeader;
      const reply = await post(gantry.baseUrl, '/v2/models/multi/infer', bomb, headers);
      assert.equal(reply.status, 413, describe400(reply));
      const message = JSON.parse(reply.body.toString('utf8')).error as string;
      assert.match(message, /decompressed/);
      assert.match(message, new RegExp(`${requestLimitBytes} bytes`));
      assert.match(message, /GANTRY_MAX_REQUEST_BYTES/);
    }
    const after = await metricsText(gantry.baseUrl);
    const growth = metricValue(after, 'process_resident_memory_bytes') - residentBefore;
    assert.ok(growth < 64 * 1024 * 1024, `the API's resident memory grew by ${growth} bytes for a body that inflates to ${inflatedBytes}`);
    assert.equal(metricValue(after, 'gantry_limit_rejections_total{limit="decompressed_body"}'), rejectionsBefore + 2);
    await assertStillServing();
  });

  test('a corrupt, truncated or empty compressed body is refused with 400 "could not be decompressed"', async () => {
    const { body, headers } = mixedRequest('gzip');
    const corrupt = Buffer.from(body);
    corrupt.fill(0x55, 10, 30);
    const cases: Array<[string, Buffer, string]> = [
      ['corrupt gzip', corrupt, 'gzip'],
      ['truncated gzip', body.subarray(0, body.byteLength - 12), 'gzip'],
      ['not deflate at all', Buffer.from('{"inputs": []}'), 'deflate'],
    ];
    for (const [name, bytes, coding] of cases) {
      const reply = await post(gantry.baseUrl, '/v2/models/multi/infer', bytes, {
        ...headers,
        'Content-Encoding': coding,
        'Content-Length': String(bytes.byteLength),
      });
      assert.equal(reply.status, 400, `${name}: ${describe400(reply)}`);
      const message = JSON.parse(reply.body.toString('utf8')).error as string;
      assert.match(message, /could not be decompressed/, name);
      await assertStillServing();
    }
    // Sent chunked, an empty body reaches the reader (with Content-Length: 0 there is no body to read).
    const empty = await post(gantry.baseUrl, '/v2/models/multi/infer', Readable.from([]), {
      ...clientHeaders,
      'Content-Encoding': 'gzip',
      'Transfer-Encoding': 'chunked',
    });
    assert.equal(empty.status, 400, describe400(empty));
    assert.match(JSON.parse(empty.body.toString('utf8')).error, /empty, yet its Content-Encoding says gzip/);
  });

  test('an unknown Content-Encoding is refused with 415 naming the supported ones; identity is read as it is', async () => {
    const { body, headers } = mixedRequest();
    for (const coding of ['br', 'compress', 'gzip, gzip']) {
      const reply = await post(gantry.baseUrl, '/v2/models/multi/infer', body, { ...headers, 'Content-Encoding': coding });
      assert.equal(reply.status, 415, `${coding}: ${describe400(reply)}`);
      assert.match(JSON.parse(reply.body.toString('utf8')).error, /gzip/);
      await assertStillServing();
    }
    assertMixedAnswer(await post(gantry.baseUrl, '/v2/models/multi/infer', body, { ...headers, 'Content-Encoding': 'identity' }));
  });

  test('other routes keep their content types; their 415 says what they take', async () => {
    const reply = await post(gantry.baseUrl, '/v1/models/uploaded/versions', Buffer.from('not a model'), { ...clientHeaders, 'Content-Length': '11' });
    assert.equal(reply.status, 415, describe400(reply));
    const message = JSON.parse(reply.body.toString('utf8')).error as string;
    assert.match(message, /without a Content-Type/);
    assert.match(message, /POST \/v1\/models\/:model\/versions takes .*application\/octet-stream.* or multipart\/form-data/);

    const index = await post(gantry.baseUrl, '/v2/repository/index', Buffer.from('<ready/>'), {
      ...clientHeaders,
      'Content-Type': 'application/xml',
      'Content-Length': '8',
    });
    assert.equal(index.status, 415, describe400(index));
    assert.equal(
      JSON.parse(index.body.toString('utf8')).error,
      "Content-Type 'application/xml' is not supported here: POST /v2/repository/index takes application/json.",
    );
  });
});
