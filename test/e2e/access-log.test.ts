/**
 * The access log of a real gantry process (GANTRY_ACCESS_LOG, src/api/plugins/access-log.ts): one line per request
 * carrying the request id the client got in `x-request-id`; a client's 400, its own deadline's 504 and leaving
 * early (499) each leave exactly one line, at info and without a stack; a failure of Gantry's own is one line at
 * error with its stack; no line holds a tensor or a key; GANTRY_ACCESS_LOG=off writes none.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { versionKey } from '../../src/redis-keys.js';
import { fixturePath, startGantry, testAdminKey, uploadModel, type GantryProcess } from '../helpers/gantry-process.js';
import { call, randomFloats, waitUntil } from './support.js';

interface LogLine {
  level: number;
  msg: string;
  role?: string;
  requestId?: string;
  [field: string]: unknown;
}

const info = 30;
const error = 50;

/** Every JSON line the process printed (onnxruntime's own warnings are not JSON and are skipped). */
function logLines(gantry: GantryProcess): LogLine[] {
  return gantry
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);
}

function linesOf(gantry: GantryProcess, requestId: string): LogLine[] {
  return logLines(gantry).filter((line) => line.requestId === requestId);
}

/** Waits for the request's line (written when the answer has been sent, so just after the client read it). */
async function onlyLineOf(gantry: GantryProcess, requestId: string): Promise<LogLine> {
  await waitUntil(async () => linesOf(gantry, requestId).length > 0, 5000, `the access line of ${requestId}`);
  // A second line would come at once (the error handler's, a worker's): give it a moment to show up.
  await new Promise((resolve) => setTimeout(resolve, 200));
  const lines = linesOf(gantry, requestId);
  assert.equal(lines.length, 1, `exactly one line for ${requestId}:\n${lines.map((line) => JSON.stringify(line)).join('\n')}`);
  return lines[0]!;
}

function assertNoStack(line: LogLine): void {
  assert.ok(!JSON.stringify(line).includes('stack'), `no stack: ${JSON.stringify(line)}`);
}

describe('access log', () => {
  let gantry: GantryProcess;
  const slowInput = (iterations: number, timeoutMicroseconds?: number) => ({
    ...(timeoutMicroseconds === undefined ? {} : { parameters: { timeout: timeoutMicroseconds } }),
    inputs: [
      { name: 'iterations', datatype: 'INT64', shape: [], data: [iterations] },
      { name: 'x', datatype: 'FP32', shape: [1, 256], data: randomFloats(1, 256) },
    ],
  });

  before(async () => {
    gantry = await startGantry({ env: { LOG_LEVEL: 'info' } });
    for (const [name, file] of [
      ['mlp', 'tiny-mlp.onnx'],
      ['slow', 'slow.onnx'],
      ['broken', 'tiny-mlp.onnx'],
    ]) {
      const upload = await uploadModel(gantry.baseUrl, name!, fixturePath(file!), '?wait=true');
      assert.equal(upload.status, 201, JSON.stringify(upload.body));
    }
  });
  after(async () => {
    await gantry?.cleanup();
  });

  test('a 200 inference: one info line with the route, model, version, status, duration, bytes and the x-request-id; no tensor, no key', async () => {
    const data = randomFloats(7, 256);
    const body = JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 256], data }] });
    const reply = await call(gantry.baseUrl, 'POST', '/v2/models/mlp/infer', body);
    assert.equal(reply.status, 200, reply.text);
    const requestId = reply.headers.get('x-request-id')!;
    assert.ok(requestId, 'the reply has an x-request-id');
    const line = await onlyLineOf(gantry, requestId);
    assert.equal(line.level, info);
    assert.equal(line.role, 'api');
    assert.equal(line.msg, 'request answered');
    assert.equal(line.method, 'POST');
    assert.equal(line.route, '/v2/models/:model/infer');
    assert.equal(line.model, 'mlp');
    assert.equal(line.version, '1');
    assert.equal(line.status, 200);
    assert.equal(typeof line.durationMs, 'number');
    assert.ok((line.durationMs as number) > 0 && (line.durationMs as number) < 10_000, `durationMs ${line.durationMs}`);
    assert.equal(line.bytesIn, Buffer.byteLength(body));
    assert.equal(line.bytesOut, Buffer.byteLength(reply.text));
    assert.equal(line.tenant, 'default');
    assert.equal(typeof line.keyId, 'string');
    const text = JSON.stringify(line);
    assert.ok(!text.includes(testAdminKey), 'the key is not logged');
    assert.ok(!text.includes(String(data[0])) && !text.includes(String(reply.body.outputs[0].data[0])), 'no tensor value is logged');
  });

  test('a 400 leaves one info line with the requestId the client got, its code and reason, and no stack', async () => {
    const reply = await call(gantry.baseUrl, 'POST', '/v2/models/mlp/infer', { inputs: [{ name: 'nope', datatype: 'FP32', shape: [1], data: [1] }] });
    assert.equal(reply.status, 400, reply.text);
    const line = await onlyLineOf(gantry, reply.body.requestId);
    assert.equal(reply.headers.get('x-request-id'), reply.body.requestId);
    assert.equal(line.level, info);
    assert.equal(line.status, 400);
    assert.equal(line.code, 'INVALID_ARGUMENT');
    assert.equal(line.reason, reply.body.error);
    assertNoStack(line);
  });

  test("a 504 of the client's own deadline leaves one info line, no stack, and no error line anywhere", async () => {
    const errorsBefore = logLines(gantry).filter((line) => line.level >= error).length;
    const reply = await call(gantry.baseUrl, 'POST', '/v2/models/slow/infer', slowInput(3_000_000, 100_000));
    assert.equal(reply.status, 504, reply.text);
    const line = await onlyLineOf(gantry, reply.body.requestId);
    assert.equal(line.level, info);
    assert.equal(line.status, 504);
    assert.equal(line.code, 'DEADLINE_EXCEEDED');
    assert.equal(line.model, 'slow');
    assertNoStack(line);
    // The worker finishing (or dropping) the run nobody waits for is no error either.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const errorLines = logLines(gantry).filter((entry) => entry.level >= error);
    assert.equal(errorLines.length, errorsBefore, `no error line:\n${errorLines.map((entry) => JSON.stringify(entry)).join('\n')}`);
  });

  test('a 404 of an unknown path: one info line with the url (cut, without its query); an unknown model: one line with its code', async () => {
    const path = `/v9/${'x'.repeat(1000)}`;
    const unknownPath = await call(gantry.baseUrl, 'GET', path);
    assert.equal(unknownPath.status, 404);
    const pathLine = await onlyLineOf(gantry, unknownPath.body.requestId);
    assert.equal(pathLine.level, info);
    assert.equal(pathLine.code, 'NOT_FOUND');
    assert.equal(pathLine.route, undefined);
    assert.ok(typeof pathLine.url === 'string' && pathLine.url.length <= 200 && path.startsWith(pathLine.url), `url cut: ${pathLine.url}`);

    const withQuery = await call(gantry.baseUrl, 'GET', '/v9/short?key=do-not-log-me');
    const queryLine = await onlyLineOf(gantry, withQuery.body.requestId);
    assert.equal(queryLine.url, '/v9/short', 'the query string is not logged');

    const unknownModel = await call(gantry.baseUrl, 'GET', '/v2/models/nobody');
    assert.equal(unknownModel.status, 404);
    const modelLine = await onlyLineOf(gantry, unknownModel.body.requestId);
    assert.equal(modelLine.route, '/v2/models/:model');
    assert.equal(modelLine.model, 'nobody');
    assert.equal(modelLine.code, 'NOT_FOUND');
  });

  test('a client that leaves before its answer: one info line, status 499, with the request id it sent', async () => {
    const requestId = `left-early-${Date.now()}`;
    const controller = new AbortController();
    const sent = fetch(`${gantry.baseUrl}/v2/models/slow/infer`, {
      method: 'POST',
      headers: { authorization: `Bearer ${testAdminKey}`, 'content-type': 'application/json', 'x-request-id': requestId },
      body: JSON.stringify(slowInput(3_000_000)),
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(), 150);
    await assert.rejects(sent);
    const line = await onlyLineOf(gantry, requestId);
    assert.equal(line.level, info);
    assert.equal(line.status, 499);
    assert.equal(line.msg, 'request ended before its answer was sent');
    assert.equal(line.model, 'slow');
    assertNoStack(line);
  });

  test("a failure of Gantry's own (500): one line at error, with the stack for the operator and none for the client", async () => {
    // A version record whose signature is not JSON (a damaged registry) is no client's doing.
    const redis = new Redis(gantry.redisUrl);
    try {
      await redis.hset(versionKey(gantry.prefix, 'broken', '1'), 'signature', '{not json');
    } finally {
      redis.disconnect();
    }
    const reply = await call(gantry.baseUrl, 'GET', '/v1/models/broken/versions/1');
    assert.equal(reply.status, 500, reply.text);
    assert.equal(reply.body.error, 'Internal error.');
    const line = await onlyLineOf(gantry, reply.body.requestId);
    assert.equal(line.level, error);
    assert.equal(line.status, 500);
    assert.equal(line.code, 'INTERNAL');
    assert.equal(line.model, 'broken');
    const fault = line.fault as { type?: string; stack?: string } | undefined;
    assert.equal(fault?.type, 'SyntaxError');
    assert.ok(typeof fault?.stack === 'string' && fault.stack.length > 0, `the stack is logged: ${JSON.stringify(line)}`);
  });
});

describe('access log off (GANTRY_ACCESS_LOG=off)', () => {
  let api: GantryProcess;

  before(async () => {
    api = await startGantry({ command: 'api', env: { LOG_LEVEL: 'info', GANTRY_ACCESS_LOG: 'off' } });
  });
  after(async () => {
    await api?.cleanup();
  });

  test('answered requests write no access line; a rejection still leaves its own line', async () => {
    const ok = await call(api.baseUrl, 'GET', '/v2/health/live');
    assert.equal(ok.status, 200);
    const missing = await call(api.baseUrl, 'GET', '/v2/models/nobody');
    assert.equal(missing.status, 404);
    await waitUntil(async () => linesOf(api, missing.body.requestId).length > 0, 5000, 'the rejection line');
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.deepEqual(
      logLines(api).filter((line) => line.msg === 'request answered' || line.msg === 'request ended before its answer was sent'),
      [],
      'no access line',
    );
    assert.equal(linesOf(api, ok.headers.get('x-request-id')!).length, 0, 'the 200 left no line');
    const [rejection] = linesOf(api, missing.body.requestId);
    assert.equal(rejection!.msg, 'request rejected');
    assert.equal(rejection!.code, 'NOT_FOUND');
  });
});
