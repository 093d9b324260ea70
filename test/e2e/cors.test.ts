/**
 * CORS on a real API process (GANTRY_CORS_ORIGINS, src/api/plugins/cors.ts): a listed origin's preflight for the
 * inference and management routes is answered 204 with the headers a browser checks, and its calls carry
 * Access-Control-Allow-Origin; an unlisted origin gets no CORS header at all; off by default, where a preflight
 * is refused with a message naming GANTRY_CORS_ORIGINS instead of a 404.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGantry, withAdminKey, type GantryProcess } from '../helpers/gantry-process.js';
import { httpCall, type HttpReply } from '../helpers/http.js';

const allowedOrigin = 'https://app.example.com';
const secondOrigin = 'http://localhost:5173';

function preflight(baseUrl: string, path: string, origin: string, method: string, requestHeaders = 'authorization, content-type'): Promise<HttpReply> {
  return httpCall(baseUrl, 'OPTIONS', path, {
    headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': requestHeaders },
  });
}

function corsHeaders(reply: HttpReply): string[] {
  return [...reply.headers.keys()].filter((name) => name.startsWith('access-control-'));
}

describe('CORS with GANTRY_CORS_ORIGINS', () => {
  let api: GantryProcess;

  before(async () => {
    api = await startGantry({ command: 'api', env: { GANTRY_CORS_ORIGINS: `${allowedOrigin}, ${secondOrigin}` } });
  });
  after(async () => {
    await api?.cleanup();
  });

  const routes: Array<[string, string]> = [
    ['POST', '/v2/models/m/infer'],
    ['POST', '/v2/models/m/versions/1/infer'],
    ['POST', '/v1/models/m/versions'],
    ['DELETE', '/v1/models/m/versions/1'],
    ['PUT', '/v1/models/m/aliases/production'],
    ['PATCH', '/v1/keys/some-key'],
    ['GET', '/v1/models'],
  ];
  for (const [method, path] of routes) {
    test(`a listed origin's preflight for ${method} ${path}: 204 with the origin, the method and the asked headers`, async () => {
      const reply = await preflight(api.baseUrl, path, allowedOrigin, method);
      assert.equal(reply.status, 204, reply.text);
      assert.equal(reply.headers.get('access-control-allow-origin'), allowedOrigin);
      assert.ok(reply.headers.get('access-control-allow-methods')!.split(/,\s*/).includes(method), reply.headers.get('access-control-allow-methods')!);
      assert.equal(reply.headers.get('access-control-allow-headers'), 'authorization, content-type');
      assert.equal(reply.headers.get('access-control-max-age'), '600');
      assert.equal(reply.headers.get('access-control-allow-credentials'), null, 'no credentials: keys travel in a header');
      assert.match(reply.headers.get('vary') ?? '', /origin/i, 'the answer depends on the origin');
    });
  }

  test('the second listed origin is answered with itself, not the first', async () => {
    const reply = await preflight(api.baseUrl, '/v2/models/m/infer', secondOrigin, 'POST');
    assert.equal(reply.status, 204);
    assert.equal(reply.headers.get('access-control-allow-origin'), secondOrigin);
  });

  test("a listed origin's call carries Access-Control-Allow-Origin and exposes x-request-id; errors too", async () => {
    const ok = await httpCall(api.baseUrl, 'GET', '/v2', { headers: withAdminKey({ origin: allowedOrigin }) });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.headers.get('access-control-allow-origin'), allowedOrigin);
    const exposed = (ok.headers.get('access-control-expose-headers') ?? '').split(/,\s*/);
    for (const name of ['x-request-id', 'retry-after', 'inference-header-content-length']) assert.ok(exposed.includes(name), `${name} in ${exposed}`);
    // A 401 must be readable by the app too, or it cannot tell a bad key from a network failure.
    const refused = await httpCall(api.baseUrl, 'GET', '/v1/models', { headers: { origin: allowedOrigin } });
    assert.equal(refused.status, 401);
    assert.equal(refused.headers.get('access-control-allow-origin'), allowedOrigin);
  });

  test('an unlisted origin: its preflight is refused with a message and no CORS header; its calls get no CORS header', async () => {
    for (const origin of ['https://evil.example.com', 'https://app.example.com.evil.example', 'http://app.example.com']) {
      const reply = await preflight(api.baseUrl, '/v2/models/m/infer', origin, 'POST');
      assert.equal(reply.status, 403, `${origin}: ${reply.text}`);
      assert.equal(reply.body.code, 'PERMISSION_DENIED');
      assert.match(reply.body.error, /GANTRY_CORS_ORIGINS/);
      assert.ok(!reply.text.includes(origin), 'the origin is not echoed');
      assert.deepEqual(corsHeaders(reply), [], `${origin}: no CORS header`);
      const call = await httpCall(api.baseUrl, 'GET', '/v2', { headers: withAdminKey({ origin }) });
      assert.equal(call.status, 200);
      assert.deepEqual(corsHeaders(call), [], `${origin}: no CORS header on the call`);
    }
  });

  test('an OPTIONS request that is no preflight is a 400 saying what a preflight is', async () => {
    const reply = await httpCall(api.baseUrl, 'OPTIONS', '/v2/models/m/infer', { headers: { origin: 'https://evil.example.com' } });
    assert.equal(reply.status, 400, reply.text);
    assert.equal(reply.body.code, 'INVALID_ARGUMENT');
    assert.match(reply.body.error, /Access-Control-Request-Method/);
  });
});

describe('CORS off (the default)', () => {
  let api: GantryProcess;

  before(async () => {
    api = await startGantry({ command: 'api' });
  });
  after(async () => {
    await api?.cleanup();
  });

  test('a preflight is refused with 403 naming GANTRY_CORS_ORIGINS (not a 404), with no CORS header', async () => {
    for (const [method, path] of [
      ['POST', '/v2/models/m/infer'],
      ['DELETE', '/v1/models/m'],
    ] as const) {
      const reply = await preflight(api.baseUrl, path, allowedOrigin, method);
      assert.equal(reply.status, 403, reply.text);
      assert.equal(reply.body.code, 'PERMISSION_DENIED');
      assert.match(reply.body.error, /Cross-origin requests are off on this server: GANTRY_CORS_ORIGINS/);
      assert.ok(typeof reply.body.requestId === 'string');
      assert.deepEqual(corsHeaders(reply), []);
    }
  });

  test('a call with an Origin gets no CORS header', async () => {
    const reply = await httpCall(api.baseUrl, 'GET', '/v2', { headers: withAdminKey({ origin: allowedOrigin }) });
    assert.equal(reply.status, 200);
    assert.deepEqual(corsHeaders(reply), []);
  });

  test('a plain OPTIONS is a 400, not a 404', async () => {
    const reply = await httpCall(api.baseUrl, 'OPTIONS', '/v1/models');
    assert.equal(reply.status, 400, reply.text);
    assert.equal(reply.body.code, 'INVALID_ARGUMENT');
  });
});
