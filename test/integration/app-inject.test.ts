/**
 * The Fastify app built by ApiRole.create, driven with app.inject() (no socket, no worker), against a real
 * Redis on a private prefix.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ApiRole } from '../../src/api/api-role.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import type { InjectOptions } from 'fastify';
import type { JsonBody } from '../../support/json-body.js';
import { adminAuthorization, deleteKeys, repositoryRoot, testAdminKey } from '../helpers/gantry-process.js';
import { assertErrorBody } from '../helpers/http.js';

const redisUrl = 'redis://127.0.0.1:6379';
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The shared error-body assertion (test/helpers/http.ts) on an injected response, plus what inject() can see
 * exactly: the body holds nothing but code, error and requestId, and the requestId is the one given.
 */
function assertInjectedError(response: { statusCode: number; json: () => JsonBody }, status: number, code: string, requestId?: string): void {
  const body = response.json();
  assertErrorBody({ status: response.statusCode, body }, status, code);
  assert.deepEqual(Object.keys(body).sort(), ['code', 'error', 'requestId']);
  if (requestId !== undefined) assert.equal(body.requestId, requestId);
}

describe('API app via inject()', { timeout: 60_000 }, () => {
  const prefix = `itest-${randomBytes(4).toString('hex')}`;
  let dataDirectory: string;
  let role: ApiRole;
  /** app.inject() with the admin key. */
  const inject = (options: InjectOptions) => role.app.inject({ ...options, headers: { authorization: adminAuthorization, ...options.headers } });

  before(async () => {
    dataDirectory = await mkdtemp(path.join(os.tmpdir(), 'gantry-app-test-'));
    const config = loadConfig({
      GANTRY_QUEUE_PREFIX: prefix,
      GANTRY_DATA_DIR: dataDirectory,
      GANTRY_MAX_REQUEST_BYTES: '1000',
      LOG_LEVEL: 'silent',
      REDIS_URL: redisUrl,
      GANTRY_ADMIN_KEY: testAdminKey,
    });
    role = await ApiRole.create({ ...config, REDIS_URL: redisUrl }, createLogger(config, 'test'));
    await role.app.ready();
  });

  after(async () => {
    await role?.close(1000);
    await deleteKeys(redisUrl, prefix);
    if (dataDirectory !== undefined) await rm(dataDirectory, { recursive: true, force: true });
  });

  test('GET /v2 returns server metadata', async () => {
    const response = await inject({ method: 'GET', url: '/v2' });
    assert.equal(response.statusCode, 200);
    assert.match(response.headers['content-type'] as string, /application\/json/);
    const packageJson = JSON.parse(await readFile(path.join(repositoryRoot, 'package.json'), 'utf8')) as { version: string };
    const body = response.json();
    assert.equal(body.name, 'gantry');
    assert.equal(body.version, packageJson.version);
    assert.ok(Array.isArray(body.extensions));
    for (const extension of body.extensions) assert.equal(typeof extension, 'string');
  });

  test('health endpoints', async () => {
    const live = await inject({ method: 'GET', url: '/v2/health/live' });
    assert.equal(live.statusCode, 200);
    assert.deepEqual(live.json(), { live: true });
    const ready = await inject({ method: 'GET', url: '/v2/health/ready' });
    assert.equal(ready.statusCode, 200);
    assert.equal(ready.json().ready, true);
  });

  test('unknown route → 404 with the error body', async () => {
    const response = await inject({ method: 'GET', url: '/v2/no/such/route?x=1' });
    assertInjectedError(response, 404, 'NOT_FOUND', response.headers['x-request-id'] as string);
    assert.doesNotMatch(response.json().error, /x=1/);
  });

  test('unknown model → 404 with the error body (metadata, readiness and infer)', async () => {
    const metadata = await inject({ method: 'GET', url: '/v2/models/no-such-model' });
    assertInjectedError(metadata, 404, 'NOT_FOUND');
    assert.match(metadata.json().error, /no-such-model/);

    const ready = await inject({ method: 'GET', url: '/v2/models/no-such-model/ready' });
    assertInjectedError(ready, 404, 'NOT_FOUND');

    const infer = await inject({
      method: 'POST',
      url: '/v2/models/no-such-model/infer',
      payload: { inputs: [{ name: 'input', datatype: 'FP32', shape: [1], data: [1] }] },
    });
    assertInjectedError(infer, 404, 'NOT_FOUND');
  });

  test('invalid JSON body → 400 with the error body', async () => {
    const response = await inject({
      method: 'POST',
      url: '/v2/models/some-model/infer',
      headers: { 'content-type': 'application/json' },
      payload: '{"inputs": [',
    });
    assertInjectedError(response, 400, 'INVALID_ARGUMENT', response.headers['x-request-id'] as string);
  });

  test('a body that is JSON but not an inference request → 400', async () => {
    const response = await inject({ method: 'POST', url: '/v2/models/some-model/infer', payload: { inputs: 'nope' } });
    assertInjectedError(response, 400, 'INVALID_ARGUMENT');
    assert.match(response.json().error, /inputs/);
  });

  test('a body over GANTRY_MAX_REQUEST_BYTES → 413 PAYLOAD_TOO_LARGE', async () => {
    const data = Array.from({ length: 400 }, (_, index) => index);
    const payload = JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [400], data }] });
    assert.ok(payload.length > 1000);
    const response = await inject({
      method: 'POST',
      url: '/v2/models/some-model/infer',
      headers: { 'content-type': 'application/json' },
      payload,
    });
    assertInjectedError(response, 413, 'PAYLOAD_TOO_LARGE');
    assert.match(response.json().error, /1000/);
  });

  test('X-Request-Id is echoed; an unusable one is replaced by a UUID', async () => {
    const echoed = await inject({ method: 'GET', url: '/v2', headers: { 'x-request-id': 'trace-abc.123:x' } });
    assert.equal(echoed.headers['x-request-id'], 'trace-abc.123:x');

    const onError = await inject({ method: 'GET', url: '/v2/models/absent', headers: { 'x-request-id': 'trace-404' } });
    assert.equal(onError.headers['x-request-id'], 'trace-404');
    assertInjectedError(onError, 404, 'NOT_FOUND', 'trace-404');

    const replaced = await inject({ method: 'GET', url: '/v2', headers: { 'x-request-id': 'has spaces <and> junk' } });
    assert.match(replaced.headers['x-request-id'] as string, uuidPattern);

    const generated = await inject({ method: 'GET', url: '/v2' });
    assert.match(generated.headers['x-request-id'] as string, uuidPattern);
  });

  test('/metrics exposes the HTTP histogram by route template after a request', async () => {
    await inject({ method: 'GET', url: '/v2/models/secret-model-name' });
    const response = await inject({ method: 'GET', url: '/metrics' });
    assert.equal(response.statusCode, 200);
    assert.match(response.headers['content-type'] as string, /text\/plain/);
    const text = response.body;
    assert.match(text, /gantry_http_request_duration_seconds_bucket\{/);
    assert.match(text, /gantry_http_request_duration_seconds_count\{[^}]*route="\/v2\/models\/:model"[^}]*status_code="404"[^}]*\} [1-9]/);
    // Raw URLs (model names) never become label values.
    assert.doesNotMatch(text, /secret-model-name/);
  });

  test('/docs/json is an OpenAPI document listing the infer route', async () => {
    const response = await inject({ method: 'GET', url: '/docs/json' });
    assert.equal(response.statusCode, 200);
    const document = response.json();
    assert.match(String(document.openapi), /^3\./);
    assert.equal(document.info?.title, 'Gantry');
    assert.ok(document.paths['/v2/models/{model}/infer'], `paths: ${Object.keys(document.paths).join(', ')}`);
    assert.ok(document.paths['/v2/models/{model}/infer'].post);
    assert.ok(document.paths['/v2/models/{model}/versions/{version}/infer']?.post);
    assert.ok(document.paths['/v2']?.get);
    assert.equal(document.paths['/metrics'], undefined, '/metrics is hidden from the docs');
  });
});
