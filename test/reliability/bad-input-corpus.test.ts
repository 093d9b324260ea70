/**
 * A generated corpus of 200+ malformed inference requests. Every one is refused by the API with a 4xx and a JSON
 * body whose `error` is a string; none reaches a worker (its request counter does not move); both processes stay
 * up; and running the corpus twice grows neither process's RSS by 50 MB.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { fixturePath, startGantry, uploadModel, type GantryProcess } from '../helpers/gantry-process.js';
import {
  Cleanup,
  childPids,
  describeReply,
  floats,
  infer,
  isAlive,
  mlpRequest,
  rssBytes,
  timedCall,
  workerChildOf,
  workerRequestsTotal,
  type TimedReply,
} from '../helpers/reliability-harness.js';

interface BadCase {
  name: string;
  path?: string;
  body: string | Buffer;
  headers?: Record<string, string>;
}

const cleanup = new Cleanup();
let gantry: GantryProcess;
let workerPid: number;
after(() => cleanup.run());

const valid = () => ({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 256], data: floats(5, 256) }] });
/** One input of the request being broken: the mutations set its fields to values of any type, or delete them. */
type LooseInput = Record<string, unknown>;
/** The valid request opened up for breaking: its fields take values of any type. */
interface Mutable {
  inputs: LooseInput[];
  outputs?: unknown;
  parameters?: unknown;
  id?: unknown;
}

/** The corpus, generated: mutations of one valid request, broken JSON texts and broken binary bodies. */
function badCorpus(): BadCase[] {
  const cases: BadCase[] = [];
  const json = (name: string, request: unknown, path?: string) => cases.push({ name, body: JSON.stringify(request), ...(path === undefined ? {} : { path }) });
  /** `change` breaks the request, or its first input (given on its own, as most mutations break that). */
  const mutate = (name: string, change: (request: Mutable, input: LooseInput) => void) => {
    const request: Mutable = valid();
    change(request, request.inputs[0]!);
    json(name, request);
  };

  // Broken JSON text, including the non-JSON literals NaN / Infinity.
  const text = JSON.stringify(valid());
  const texts = [
    '',
    ' ',
    '{',
    '}',
    '[',
    ']',
    '{"inputs":',
    '{"inputs":[',
    'nul',
    'undefined',
    "{'inputs':[]}",
    '{"inputs":[],}',
    '{inputs:[]}',
    '/* c */{"inputs":[]}',
    '\u0000',
    '\uFEFF{',
    '{"a":1}{"b":2}',
    text.slice(0, text.length / 2),
    text.slice(1),
    `${text}x`,
    text.replace('0.', 'NaN, 0.'),
    text.replace('0.', 'Infinity, 0.'),
    text.replace('0.', '-Infinity, 0.'),
    text.replace('[1,256]', '[NaN,256]'),
    text.replace('[1,256]', '[Infinity,256]'),
    text.replace('[1,256]', '[1e400,256]'),
    text.replace('"FP32"', 'FP32'),
    '"just a string"',
    '42',
    'true',
    'null',
    '[]',
  ];
  texts.forEach((body, index) => cases.push({ name: `broken json #${index}`, body }));

  // Wrong types at every level.
  const wrong: unknown[] = [null, 0, 1.5, -1, '', 'x', true, {}, [], [[]], { a: 1 }];
  for (const value of wrong) json(`body = ${JSON.stringify(value)}`, value);
  for (const value of wrong) mutate(`inputs = ${JSON.stringify(value)}`, (request) => (request.inputs = value as LooseInput[])); // not an array of inputs: the point
  for (const value of [null, 0, 'x', true, [], [1]] as unknown[])
    mutate(`inputs[0] = ${JSON.stringify(value)}`, (request) => (request.inputs[0] = value as LooseInput)); // not an input: the point
  for (const value of [null, 0, 1, {}, [], '', true, 'nope', 'INPUT', 'input ', 'a'.repeat(5000)])
    mutate(`name = ${JSON.stringify(value).slice(0, 30)}`, (_request, input) => (input.name = value));
  for (const value of [
    null,
    0,
    32,
    {},
    [],
    '',
    'FP33',
    'fp32',
    'FLOAT',
    'float32',
    'BF16',
    'BYTES',
    'FP64',
    'FP16',
    'INT32',
    'INT64',
    'UINT8',
    'BOOL',
    'INT8',
    'x'.repeat(1000),
  ]) {
    mutate(`datatype = ${JSON.stringify(value).slice(0, 30)}`, (_request, input) => (input.datatype = value));
  }
  const shapes: unknown[] = [
    null,
    '1,256',
    '[1,256]',
    256,
    {},
    ['1', '256'],
    [1.5, 256],
    [1, 256.5],
    [-1, 256],
    [-5, 256],
    [1, -256],
    [0, 256],
    [2, 256],
    [1, 255],
    [1, 257],
    [256],
    [1, 256, 1],
    [],
    [1e12, 256],
    [2 ** 31, 2 ** 31],
    [2 ** 31 - 1, 2 ** 31 - 1],
    [2 ** 53, 2],
    [Number.MAX_SAFE_INTEGER, 256],
    [2 ** 32, 2 ** 32, 2 ** 32],
    [1e308, 1],
    [1, 1e308],
    Array.from({ length: 64 }, () => 2),
    Array.from({ length: 1000 }, () => 1),
    [true, 256],
    [null, 256],
    [[1], 256],
  ];
  for (const shape of shapes) mutate(`shape = ${JSON.stringify(shape).slice(0, 40)}`, (_request, input) => (input.shape = shape));
  const datas: unknown[] = [
    null,
    {},
    { a: 1 },
    'abc',
    1,
    true,
    [],
    floats(1, 255),
    floats(1, 257),
    floats(1, 100_00).slice(0, 512),
    Array.from({ length: 256 }, () => 'x'),
    Array.from({ length: 256 }, () => true),
    Array.from({ length: 256 }, () => null),
    Array.from({ length: 256 }, () => ({})),
    Array.from({ length: 256 }, () => [1, 2]),
    Array.from({ length: 256 }, (_, i) => (i === 100 ? '1' : 0)),
    Array.from({ length: 256 }, (_, i) => (i === 255 ? null : 0)),
    [floats(1, 128), floats(2, 129)],
    [floats(1, 256), floats(2, 256)],
    [[[0]]],
  ];
  for (const data of datas) mutate(`data = ${JSON.stringify(data)?.slice(0, 40)}`, (_request, input) => (input.data = data));
  mutate('no data at all', (_request, input) => delete input.data);
  mutate('no inputs', (request) => (request.inputs = []));
  mutate('input given twice', (request) => request.inputs.push(valid().inputs[0]!));
  mutate('extra unknown input', (request) => request.inputs.push({ name: 'extra', datatype: 'FP32', shape: [1], data: [1] }));
  mutate('BYTES data in FP32 with BYTES datatype', (_request, input) => {
    input.datatype = 'BYTES';
    input.data = Array.from({ length: 256 }, () => 'abc');
  });

  // Request and output parameters of the wrong type or out of range.
  const parameterValues: Array<[string, unknown]> = [
    ['priority', 'high'],
    ['priority', -1],
    ['priority', 1.5],
    ['priority', 2 ** 40],
    ['priority', {}],
    ['priority', true],
    ['timeout', -1],
    ['timeout', '1000'],
    ['timeout', 0.5],
    ['timeout', 2 ** 60],
    ['timeout', []],
    ['binary_data_output', 'yes'],
    ['binary_data_output', 1],
    ['binary_data_output', 'true'],
    ['binary_data_output', {}],
  ];
  for (const [key, value] of parameterValues) mutate(`parameters.${key} = ${JSON.stringify(value)}`, (request) => (request.parameters = { [key]: value }));
  for (const value of ['x', 1, [], true]) mutate(`parameters = ${JSON.stringify(value)}`, (request) => (request.parameters = value));
  for (const value of [1, {}, [], true]) mutate(`id = ${JSON.stringify(value)}`, (request) => (request.id = value));
  const outputs: unknown[] = [
    'output',
    1,
    {},
    [1],
    [null],
    [{}],
    [{ name: 1 }],
    [{ name: '' }],
    [{ name: 'nope' }],
    [{ name: 'output', parameters: { classification: 0 } }],
    [{ name: 'output', parameters: { classification: -3 } }],
    [{ name: 'output', parameters: { classification: '3' } }],
    [{ name: 'output', parameters: { classification: 2.5 } }],
    [{ name: 'output', parameters: { binary_data: 'yes' } }],
    [{ name: 'output', parameters: { binary_data: 1 } }],
    [{ name: 'output', parameters: 'x' }],
  ];
  for (const value of outputs) mutate(`outputs = ${JSON.stringify(value)}`, (request) => (request.outputs = value));
  mutate('binary_data_size without a binary body', (_request, input) => {
    delete input.data;
    input.parameters = { binary_data_size: 1024 };
  });
  for (const size of [-1, 'x', 1.5, 0, 1023, 1025, 2 ** 40, null, {}]) {
    mutate(`binary_data_size = ${JSON.stringify(size)} (no body)`, (_request, input) => {
      delete input.data;
      input.parameters = { binary_data_size: size };
    });
  }

  // Binary tensor extension: header lengths and sizes that do not add up, truncated bodies.
  const binaryHeader = (size: unknown) =>
    Buffer.from(JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 256], parameters: { binary_data_size: size } }] }));
  const tensorBytes = Buffer.from(Float32Array.from(floats(3, 256)).buffer);
  const binary = (name: string, header: Buffer, tail: Buffer, lengthHeader: string) =>
    cases.push({
      name,
      body: Buffer.concat([header, tail]),
      headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': lengthHeader },
    });
  const header = binaryHeader(1024);
  for (const cut of [0, 1, 100, 512, 1000, 1023])
    binary(`binary body truncated to ${cut} of 1024 bytes`, header, tensorBytes.subarray(0, cut), String(header.byteLength));
  binary('binary body 1 byte too long', header, Buffer.concat([tensorBytes, Buffer.alloc(1)]), String(header.byteLength));
  binary('binary body twice as long', header, Buffer.concat([tensorBytes, tensorBytes]), String(header.byteLength));
  for (const size of [0, 1, 4, 512, 1020, 1028, 2048, -4, 1.5])
    binary(`binary_data_size ${size} with 1024 bytes`, binaryHeader(size), tensorBytes, String(binaryHeader(size).byteLength));
  for (const delta of [1, 5, 100, 5000, -1, -5, -50]) {
    binary(`Inference-Header-Content-Length off by ${delta}`, header, tensorBytes, String(header.byteLength + delta));
  }
  for (const value of ['abc', '-1', '1.5', '1e3', ' ', '0x10', '99999999999999999999', `${header.byteLength}abc`, '0']) {
    binary(`Inference-Header-Content-Length ${JSON.stringify(value)}`, header, tensorBytes, value);
  }
  cases.push({
    name: 'header length on a JSON body, too large',
    body: text,
    headers: { 'content-type': 'application/json', 'inference-header-content-length': String(text.length + 10) },
  });
  cases.push({
    name: 'header length on a JSON body, too small',
    body: text,
    headers: { 'content-type': 'application/json', 'inference-header-content-length': String(text.length - 10) },
  });

  // Over GANTRY_MAX_REQUEST_BYTES (65536): ~100 KB as JSON and as binary.
  json('100 KB JSON body', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 256], data: Array.from({ length: 10_000 }, () => 0.123456789) }] });
  binary('100 KB binary body', header, Buffer.alloc(100 * 1024), String(header.byteLength));
  cases.push({ name: '100 KB garbage', body: Buffer.alloc(100 * 1024, 0x7b), headers: { 'content-type': 'application/json' } });

  // Content types, codings and addresses. Any Content-Type (or none) is read as JSON, as Triton reads it
  // (test/e2e/triton-http-client.test.ts): the bad bodies here are bad whatever they are labelled.
  cases.push({ name: 'garbage labelled text/plain', body: Buffer.from('{"inputs": [1, 2'), headers: { 'content-type': 'text/plain' } });
  cases.push({ name: 'garbage without a content type', body: Buffer.from('not json at all'), headers: {} });
  cases.push({ name: 'unknown Content-Encoding', body: text, headers: { 'content-type': 'application/json', 'content-encoding': 'br' } });
  cases.push({ name: 'gzip Content-Encoding on a plain body', body: text, headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } });
  cases.push({ name: 'deflate Content-Encoding on a plain body', body: text, headers: { 'content-type': 'application/json', 'content-encoding': 'deflate' } });
  cases.push({
    name: 'gzip body inflating past the limit',
    body: gzipSync(Buffer.alloc(1024 * 1024, 0x20)),
    headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
  });
  for (const path of [
    '/v2/models/nope/infer',
    '/v2/models/mlp/versions/99/infer',
    '/v2/models/mlp/versions/abc/infer',
    '/v2/models/mlp/versions/0/infer',
    '/v2/models/..%2Fetc/infer',
    `/v2/models/${'m'.repeat(300)}/infer`,
  ]) {
    json(`address ${path.slice(0, 40)}`, valid(), path);
  }
  return cases;
}

async function runCorpus(cases: BadCase[]): Promise<string[]> {
  const problems: string[] = [];
  for (const badCase of cases) {
    const reply: TimedReply = await timedCall(`${gantry.baseUrl}${badCase.path ?? '/v2/models/mlp/infer'}`, {
      method: 'POST',
      body: badCase.body,
      headers: badCase.headers ?? { 'content-type': 'application/json' },
      timeoutMs: 10_000,
    });
    if (reply.status < 400 || reply.status > 499 || typeof reply.body?.error !== 'string' || reply.body.error.length === 0) {
      problems.push(`${badCase.name}: ${describeReply(reply)}`);
    }
  }
  return problems;
}

before(async () => {
  gantry = await startGantry({ env: { GANTRY_MAX_REQUEST_BYTES: '65536', GANTRY_SHUTDOWN_TIMEOUT_MS: '3000' } });
  cleanup.add(() => gantry.cleanup());
  workerPid = workerChildOf(gantry, cleanup);
  const upload = await uploadModel(gantry.baseUrl, 'mlp', fixturePath('tiny-mlp.onnx'));
  assert.equal(upload.status, 201, JSON.stringify(upload.body));
  const good = await infer(gantry.baseUrl, 'mlp', mlpRequest());
  assert.equal(good.status, 200, describeReply(good));
});

test('200+ malformed requests: each 4xx with a JSON error, none reaches the worker, no crash, RSS flat', { timeout: 120_000 }, async () => {
  const cases = badCorpus();
  assert.ok(cases.length >= 200, `the corpus has ${cases.length} cases`);
  const workerBefore = await workerRequestsTotal(gantry.workerUrl);
  const rssBefore = { api: await rssBytes(gantry.child.pid!), worker: await rssBytes(workerPid) };

  const started = Date.now();
  const problems = [...(await runCorpus(cases)), ...(await runCorpus(cases))];
  const elapsed = Date.now() - started;

  const rssAfter = { api: await rssBytes(gantry.child.pid!), worker: await rssBytes(workerPid) };
  const workerAfter = await workerRequestsTotal(gantry.workerUrl);
  const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
  console.log(
    `# bad-input: ${cases.length} cases x2 in ${elapsed} ms; RSS api ${mb(rssBefore.api)} → ${mb(rssAfter.api)} MB, worker ${mb(rssBefore.worker)} → ${mb(rssAfter.worker)} MB; worker requests ${workerBefore} → ${workerAfter}`,
  );
  assert.deepEqual(problems, [], `${problems.length} malformed requests were not refused with 4xx + JSON error`);
  assert.equal(workerAfter, workerBefore, 'no malformed request reached the worker');
  assert.equal(gantry.child.exitCode, null, 'the API is alive');
  assert.ok(isAlive(workerPid), 'the worker is alive');
  assert.deepEqual(childPids(gantry.child.pid!), [workerPid], 'the worker was never restarted');
  assert.ok(rssAfter.api - rssBefore.api < 50 * 1024 * 1024, `API RSS grew ${mb(rssAfter.api - rssBefore.api)} MB`);
  assert.ok(rssAfter.worker - rssBefore.worker < 50 * 1024 * 1024, `worker RSS grew ${mb(rssAfter.worker - rssBefore.worker)} MB`);
  const good = await infer(gantry.baseUrl, 'mlp', mlpRequest());
  assert.equal(good.status, 200, describeReply(good));
});
