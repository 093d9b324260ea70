/**
 * The authentication matrix (issue 12): every route of the scope table × {no key, bad key, expired, revoked,
 * wrong scope, other tenant, right key}, against real processes (gantry start plus a second gantry api on the
 * same Redis), and a revocation refused by the second API process within 1 s.
 *
 * "Other tenant" is tenant beta's key (every scope but admin) on tenant alpha's resources: alpha's model
 * (which beta has none of by that name) and alpha's keys answer 404, never 403 (no existence leak); admin-only
 * routes answer 403; lists answer 200 with none of alpha's names in them.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { routeScopes, type RouteRequirement } from '../../src/auth/route-scopes.js';
import type { Scope } from '../../src/auth/principal.js';
import { fixturePath, startGantry, testAdminKey, type GantryProcess } from '../helpers/gantry-process.js';
import { call, waitUntil, type JsonReply } from './support.js';
import { httpCall } from '../helpers/http.js';

const model = 'matrix-model';
const modelFile = fixturePath('identity-float.onnx');
const inferBody = { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 2], data: [1, 2] }] };
const alphaScopes: Scope[] = ['models:read', 'models:write', 'infer', 'usage:read', 'keys:write'];

interface Keys {
  alpha: { key: string; id: string };
  beta: { key: string; id: string };
  /** alpha's keys holding one scope each, for the wrong-scope cases. */
  single: Map<Scope, string>;
  expired: string;
  revoked: string;
  /** alpha's keys that right-key cases may change or revoke. */
  spare: string[];
}

interface Ids {
  keys: Keys;
  /** alpha's finished asynchronous job and batch. */
  job: string;
  batch: string;
}

/** How to call one route, and what its right key and the other tenant's key get. */
interface RouteCase {
  path: (ids: Ids) => string;
  body?: unknown;
  /** Sends the model file as the raw body (an upload). */
  uploadsModel?: true;
  /** Sends this text as a batch file (application/x-ndjson). */
  jsonLines?: string;
  /** A server-sent-event stream: the reply's body is its first `stats` event's data, then the stream is closed. */
  eventStream?: true;
  /** The right key is alpha's, unless the route needs admin (then the admin key). */
  right: number;
  /** What beta's key gets on alpha's resource (a route taking none of alpha's resources: its own answer). */
  otherTenant: number;
}

const spareKey = (index: number) => (ids: Ids) => ids.keys.spare[index]!;

/** One entry per route of the scope table that needs a key (the test checks none is missing). */
const cases: Record<string, RouteCase> = {
  'GET /v2': { path: () => '/v2', right: 200, otherTenant: 200 },
  'GET /v2/models/:model': { path: () => `/v2/models/${model}`, right: 200, otherTenant: 404 },
  'GET /v2/models/:model/versions/:version': { path: () => `/v2/models/${model}/versions/1`, right: 200, otherTenant: 404 },
  'GET /v2/models/:model/ready': { path: () => `/v2/models/${model}/ready`, right: 200, otherTenant: 404 },
  'GET /v2/models/:model/versions/:version/ready': { path: () => `/v2/models/${model}/versions/1/ready`, right: 200, otherTenant: 404 },
  'POST /v2/models/:model/infer': { path: () => `/v2/models/${model}/infer`, body: inferBody, right: 200, otherTenant: 404 },
  'POST /v2/models/:model/versions/:version/infer': { path: () => `/v2/models/${model}/versions/1/infer`, body: inferBody, right: 200, otherTenant: 404 },
  'GET /v2/models/stats': { path: () => '/v2/models/stats', right: 200, otherTenant: 200 },
  'GET /v2/models/:model/stats': { path: () => `/v2/models/${model}/stats`, right: 200, otherTenant: 404 },
  'GET /v2/models/:model/versions/:version/stats': { path: () => `/v2/models/${model}/versions/1/stats`, right: 200, otherTenant: 404 },
  'GET /v2/models/:model/config': { path: () => `/v2/models/${model}/config`, right: 200, otherTenant: 404 },
  'GET /v2/models/:model/versions/:version/config': { path: () => `/v2/models/${model}/versions/1/config`, right: 200, otherTenant: 404 },
  'POST /v2/repository/index': { path: () => '/v2/repository/index', body: {}, right: 200, otherTenant: 200 },
  'POST /v2/repository/models/:model/load': { path: () => '/v2/repository/models/matrix-load/load', body: {}, right: 200, otherTenant: 404 },
  'POST /v2/repository/models/:model/unload': { path: () => '/v2/repository/models/matrix-load/unload', body: {}, right: 200, otherTenant: 404 },
  'GET /v1/models': { path: () => '/v1/models', right: 200, otherTenant: 200 },
  'GET /v1/models/:model': { path: () => `/v1/models/${model}`, right: 200, otherTenant: 404 },
  'GET /v1/models/:model/versions/:version': { path: () => `/v1/models/${model}/versions/1`, right: 200, otherTenant: 404 },
  // The other tenant's upload lands in its own namespace (a model of its own by that name), so it succeeds.
  'POST /v1/models/:model/versions': { path: () => '/v1/models/matrix-upload/versions', uploadsModel: true, right: 201, otherTenant: 201 },
  'PUT /v1/models/:model/versions/:version': { path: () => '/v1/models/matrix-put/versions/7', uploadsModel: true, right: 201, otherTenant: 201 },
  'DELETE /v1/models/:model': { path: () => '/v1/models/matrix-delete', right: 204, otherTenant: 404 },
  'DELETE /v1/models/:model/versions/:version': { path: () => '/v1/models/matrix-delete-version/versions/1', right: 204, otherTenant: 404 },
  'PUT /v1/models/:model/config': { path: () => `/v1/models/${model}/config`, body: {}, right: 200, otherTenant: 404 },
  'GET /v1/models/:model/aliases': { path: () => `/v1/models/${model}/aliases`, right: 200, otherTenant: 404 },
  'PUT /v1/models/:model/aliases/:alias': { path: () => `/v1/models/${model}/aliases/matrix`, body: { version: '1' }, right: 200, otherTenant: 404 },
  'DELETE /v1/models/:model/aliases/:alias': { path: () => `/v1/models/${model}/aliases/matrix`, right: 204, otherTenant: 404 },
  'GET /v1/models/:model/traffic': { path: () => `/v1/models/${model}/traffic`, right: 200, otherTenant: 404 },
  'PUT /v1/models/:model/traffic': { path: () => `/v1/models/${model}/traffic`, body: { splits: [{ version: '1', weight: 1 }] }, right: 200, otherTenant: 404 },
  'DELETE /v1/models/:model/traffic': { path: () => `/v1/models/${model}/traffic`, right: 204, otherTenant: 404 },
  'POST /v1/models/:model/versions/:version/warmup': { path: () => `/v1/models/${model}/versions/1/warmup`, body: inferBody, right: 200, otherTenant: 404 },
  'POST /v1/tenants': { path: () => '/v1/tenants', body: { id: 'matrix-new' }, right: 201, otherTenant: 403 },
  'GET /v1/tenants': { path: () => '/v1/tenants', right: 200, otherTenant: 403 },
  'GET /v1/tenants/:tenant': { path: () => '/v1/tenants/alpha', right: 200, otherTenant: 403 },
  'PATCH /v1/tenants/:tenant': { path: () => '/v1/tenants/alpha', body: { name: 'Alpha Inc.' }, right: 200, otherTenant: 403 },
  'DELETE /v1/tenants/:tenant': { path: () => '/v1/tenants/matrix-doomed', right: 204, otherTenant: 403 },
  'POST /v1/keys': { path: () => '/v1/keys', body: { name: 'made in the matrix', scopes: ['infer'] }, right: 201, otherTenant: 201 },
  'GET /v1/keys': { path: () => '/v1/keys', right: 200, otherTenant: 200 },
  'GET /v1/keys/:keyId': { path: (ids) => `/v1/keys/${spareKey(0)(ids)}`, right: 200, otherTenant: 404 },
  'PATCH /v1/keys/:keyId': { path: (ids) => `/v1/keys/${spareKey(0)(ids)}`, body: { name: 'renamed' }, right: 200, otherTenant: 404 },
  'DELETE /v1/keys/:keyId': { path: (ids) => `/v1/keys/${spareKey(1)(ids)}`, right: 200, otherTenant: 404 },
  // Limits and usage (the LIMITS part's routes)
  'GET /v1/tenants/:tenant/limits': { path: () => '/v1/tenants/alpha/limits', right: 200, otherTenant: 403 },
  'PUT /v1/tenants/:tenant/limits': { path: () => '/v1/tenants/alpha/limits', body: {}, right: 200, otherTenant: 403 },
  'GET /v1/keys/:keyId/limits': { path: (ids) => `/v1/keys/${spareKey(0)(ids)}/limits`, right: 200, otherTenant: 404 },
  'PUT /v1/keys/:keyId/limits': { path: (ids) => `/v1/keys/${spareKey(0)(ids)}/limits`, body: {}, right: 200, otherTenant: 404 },
  'GET /v1/usage': { path: () => '/v1/usage', right: 200, otherTenant: 200 },
  // Asynchronous jobs and batch files: the caller's own (ids: alpha's, finished, so a cancel is refused with 409)
  'POST /v1/models/:model/jobs': { path: () => `/v1/models/${model}/jobs`, body: inferBody, right: 202, otherTenant: 404 },
  'POST /v1/models/:model/versions/:version/jobs': { path: () => `/v1/models/${model}/versions/1/jobs`, body: inferBody, right: 202, otherTenant: 404 },
  'GET /v1/jobs': { path: () => '/v1/jobs', right: 200, otherTenant: 200 },
  'GET /v1/jobs/:jobId': { path: (ids) => `/v1/jobs/${ids.job}`, right: 200, otherTenant: 404 },
  'GET /v1/jobs/:jobId/result': { path: (ids) => `/v1/jobs/${ids.job}/result`, right: 200, otherTenant: 404 },
  'DELETE /v1/jobs/:jobId': { path: (ids) => `/v1/jobs/${ids.job}`, right: 409, otherTenant: 404 },
  'POST /v1/models/:model/batches': { path: () => `/v1/models/${model}/batches`, jsonLines: `${JSON.stringify(inferBody)}\n`, right: 202, otherTenant: 404 },
  'GET /v1/batches': { path: () => '/v1/batches', right: 200, otherTenant: 200 },
  'GET /v1/batches/:batchId': { path: (ids) => `/v1/batches/${ids.batch}`, right: 200, otherTenant: 404 },
  'GET /v1/batches/:batchId/results': { path: (ids) => `/v1/batches/${ids.batch}/results`, right: 200, otherTenant: 404 },
  'DELETE /v1/batches/:batchId': { path: (ids) => `/v1/batches/${ids.batch}`, right: 409, otherTenant: 404 },
  // The console's live stats: beta's stream shows beta's models only (alpha's have queue depths in every sample)
  'GET /v1/console/live-stats': { path: () => '/v1/console/live-stats', eventStream: true, right: 200, otherTenant: 200 },
};

/** Routes that answer without a key (on a loopback bind /metrics is one of them: GANTRY_METRICS_PUBLIC). */
function isPublic(entry: string, requirement: RouteRequirement): boolean {
  return requirement === 'public' || entry === 'GET /metrics';
}

/** A key of alpha holding one scope the route does not accept, or undefined when any key will do. */
function wrongScopeKey(requirement: RouteRequirement, keys: Keys): string | undefined {
  if (requirement === 'public' || requirement === 'any key') return undefined;
  const scope = (['usage:read', 'infer', 'models:read', 'keys:write'] as const).find((candidate) => !requirement.includes(candidate));
  return keys.single.get(scope!);
}

async function send(baseUrl: string, entry: string, spec: RouteCase, ids: Ids, key: string | undefined): Promise<JsonReply> {
  const method = entry.slice(0, entry.indexOf(' '));
  const headers: Record<string, string> = key === undefined ? {} : { authorization: `Bearer ${key}` };
  if (spec.uploadsModel === true) return rawCall(baseUrl, method, spec.path(ids), await readFile(modelFile), headers);
  if (spec.eventStream === true) return firstEvent(baseUrl, spec.path(ids), headers);
  if (spec.jsonLines !== undefined)
    return httpCall(baseUrl, method, spec.path(ids), { body: spec.jsonLines, headers: { ...headers, 'content-type': 'application/x-ndjson' } });
  return call(baseUrl, method, spec.path(ids), spec.body, headers);
}

/** A stream's status and headers, with its first `stats` event's data as the body (an error answer: its JSON body). */
async function firstEvent(baseUrl: string, urlPath: string, headers: Record<string, string>): Promise<JsonReply> {
  const controller = new AbortController();
  const response = await fetch(`${baseUrl}${urlPath}`, { headers, signal: controller.signal });
  try {
    if (response.status !== 200 || response.body === null) return { status: response.status, headers: response.headers, body: await response.json() };
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let text = '';
    for (;;) {
      const event = /event: stats\ndata: (.*)\n\n/.exec(text);
      if (event !== null) return { status: response.status, headers: response.headers, body: JSON.parse(event[1]!) };
      const { value, done } = await reader.read();
      if (done) throw new Error(`${urlPath}: the stream ended before its first event: ${text}`);
      text += decoder.decode(value, { stream: true });
    }
  } finally {
    controller.abort();
  }
}

function rawCall(baseUrl: string, method: string, urlPath: string, body: Buffer, headers: Record<string, string>): Promise<JsonReply> {
  return httpCall(baseUrl, method, urlPath, { body, headers: { ...headers, 'content-type': 'application/octet-stream' } });
}

async function createKey(baseUrl: string, body: Record<string, unknown>, key = testAdminKey): Promise<{ key: string; id: string }> {
  const reply = await call(baseUrl, 'POST', '/v1/keys', body, { authorization: `Bearer ${key}` });
  assert.equal(reply.status, 201, JSON.stringify(reply.body));
  return { key: reply.body.key, id: reply.body.id };
}

async function upload(baseUrl: string, name: string, key: string): Promise<void> {
  const reply = await rawCall(baseUrl, 'POST', `/v1/models/${name}/versions`, await readFile(modelFile), { authorization: `Bearer ${key}` });
  assert.equal(reply.status, 201, `${name}: ${JSON.stringify(reply.body)}`);
}

describe('every route × every kind of caller', { timeout: 180_000 }, () => {
  let gantry: GantryProcess;
  let secondApi: GantryProcess;
  let ids: Ids;

  before(async () => {
    gantry = await startGantry();
    secondApi = await startGantry({ command: 'api', prefix: gantry.prefix, dataDirectory: gantry.dataDirectory, redisUrl: gantry.redisUrl });
    const base = gantry.baseUrl;
    for (const id of ['alpha', 'beta', 'matrix-doomed']) assert.equal((await call(base, 'POST', '/v1/tenants', { id })).status, 201, id);
    const alpha = await createKey(base, { tenant: 'alpha', name: 'alpha, all scopes', scopes: alphaScopes });
    const beta = await createKey(base, { tenant: 'beta', name: 'beta, all scopes', scopes: alphaScopes });
    const single = new Map<Scope, string>();
    for (const scope of ['usage:read', 'infer', 'models:read', 'keys:write'] as const)
      single.set(scope, (await createKey(base, { tenant: 'alpha', name: scope, scopes: [scope] })).key);
    const expired = await createKey(base, { tenant: 'alpha', name: 'expiring', scopes: alphaScopes, expiresAt: new Date(Date.now() + 1000).toISOString() });
    const revoked = await createKey(base, { tenant: 'alpha', name: 'revoked', scopes: alphaScopes });
    assert.equal((await call(base, 'DELETE', `/v1/keys/${revoked.id}`)).status, 200);
    const spare = [
      (await createKey(base, { tenant: 'alpha', name: 'spare 0', scopes: ['infer'] })).id,
      (await createKey(base, { tenant: 'alpha', name: 'spare 1', scopes: ['infer'] })).id,
    ];
    for (const name of [model, 'matrix-load', 'matrix-delete', 'matrix-delete-version']) await upload(base, name, alpha.key);
    const alphaHeaders = { authorization: `Bearer ${alpha.key}` };
    const job = await call(base, 'POST', `/v1/models/${model}/jobs`, inferBody, alphaHeaders);
    assert.equal(job.status, 202, JSON.stringify(job.body));
    const batch = await httpCall(base, 'POST', `/v1/models/${model}/batches`, {
      body: `${JSON.stringify(inferBody)}\n`,
      headers: { ...alphaHeaders, 'content-type': 'application/x-ndjson' },
    });
    assert.equal(batch.status, 202, batch.text);
    await waitUntil(
      async () =>
        (await call(base, 'GET', `/v1/jobs/${job.body.id}`, undefined, alphaHeaders)).body.state === 'succeeded' &&
        (await call(base, 'GET', `/v1/batches/${batch.body.id}`, undefined, alphaHeaders)).body.state === 'succeeded',
      10_000,
      "alpha's job and batch to finish",
    );
    ids = { keys: { alpha, beta, single, expired: expired.key, revoked: revoked.key, spare }, job: job.body.id, batch: batch.body.id };
    await waitUntil(
      async () => (await call(base, 'GET', '/v2', undefined, { authorization: `Bearer ${expired.key}` })).status === 401,
      5000,
      'the expiring key to expire',
    );
  });

  after(async () => {
    await secondApi?.stop();
    await gantry?.cleanup();
  });

  test('every route of the scope table has a case here', () => {
    const missing = Object.entries(routeScopes)
      .filter(([entry, requirement]) => !isPublic(entry, requirement) && !entry.startsWith('HEAD ') && cases[entry] === undefined)
      .map(([entry]) => entry);
    assert.deepEqual(missing, [], 'add a RouteCase for each');
  });

  test('public routes answer without a key', async () => {
    for (const [entry, requirement] of Object.entries(routeScopes)) {
      if (!isPublic(entry, requirement) || !entry.startsWith('GET ') || entry.includes('*')) continue;
      const url = entry.slice(4);
      const reply = await call(gantry.baseUrl, 'GET', url, undefined, {});
      assert.ok(reply.status < 400, `${entry} without a key: ${reply.status}`);
    }
  });

  test('no key, a bad key, an expired key and a revoked key: 401 with WWW-Authenticate on every route', async () => {
    const badKeys: Array<[string, string | undefined]> = [
      ['no key', undefined],
      ['bad key', 'gk_aaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb'],
      ['expired', ids.keys.expired],
      ['revoked', ids.keys.revoked],
    ];
    for (const [entry, spec] of Object.entries(cases)) {
      if (routeScopes[entry] === undefined) continue;
      for (const [kind, key] of badKeys) {
        const reply = await send(gantry.baseUrl, entry, spec, ids, key);
        assert.equal(reply.status, 401, `${entry}, ${kind}: ${reply.status} ${JSON.stringify(reply.body)}`);
        assert.equal(reply.body.code, 'UNAUTHENTICATED');
        assert.match(reply.headers.get('www-authenticate') ?? '', /^Bearer/, `${entry}, ${kind}`);
      }
    }
  });

  test('a key without the scope: 403 naming the scope, on every route that needs one', async () => {
    for (const [entry, spec] of Object.entries(cases)) {
      const requirement = routeScopes[entry];
      if (requirement === undefined) continue;
      const key = wrongScopeKey(requirement, ids.keys);
      if (key === undefined) continue;
      const reply = await send(gantry.baseUrl, entry, spec, ids, key);
      assert.equal(reply.status, 403, `${entry}: ${reply.status} ${JSON.stringify(reply.body)}`);
      assert.equal(reply.body.code, 'PERMISSION_DENIED');
      assert.ok(
        (requirement as readonly string[]).some((scope) => reply.body.error.includes(`'${scope}'`)),
        `${entry}: ${reply.body.error}`,
      );
    }
  });

  test("the other tenant's key: 404 for alpha's models and keys, 403 for admin routes, only its own in lists", async () => {
    const alphaNames = [model, 'matrix-load', 'matrix-delete', ids.keys.alpha.id, ...ids.keys.spare];
    for (const [entry, spec] of Object.entries(cases)) {
      if (routeScopes[entry] === undefined) continue;
      const reply = await send(gantry.baseUrl, entry, spec, ids, ids.keys.beta.key);
      assert.equal(reply.status, spec.otherTenant, `${entry}: ${reply.status} ${JSON.stringify(reply.body)}`);
      const text = JSON.stringify(reply.body ?? '');
      if (reply.status < 300) for (const name of alphaNames) assert.ok(!text.includes(name), `${entry} shows alpha's '${name}' to beta: ${text.slice(0, 300)}`);
      if (reply.status === 404) assert.ok(!/alpha/.test(text), `${entry}: the 404 names alpha: ${text}`);
    }
  });

  test('the right key: 2xx on every route (the admin key on admin routes)', async () => {
    for (const [entry, spec] of Object.entries(cases)) {
      const requirement = routeScopes[entry];
      if (requirement === undefined) continue;
      const key = requirement !== 'any key' && requirement !== 'public' && requirement.includes('admin') ? testAdminKey : ids.keys.alpha.key;
      const reply = await send(gantry.baseUrl, entry, spec, ids, key);
      assert.equal(reply.status, spec.right, `${entry}: ${reply.status} ${JSON.stringify(reply.body)}`);
    }
  });

  test('a key revoked on one API process is refused by the other within 1 s; scope and tenant changes follow too', async () => {
    const key = await createKey(gantry.baseUrl, { tenant: 'alpha', name: 'two processes', scopes: ['models:read'] });
    const onSecond = () => call(secondApi.baseUrl, 'GET', '/v1/models', undefined, { authorization: `Bearer ${key.key}` });
    // Cached on the second process first (the case that matters: a cache must not outlive the revocation).
    assert.equal((await onSecond()).status, 200);
    assert.equal((await onSecond()).status, 200);
    const revokedAt = Date.now();
    assert.equal((await call(gantry.baseUrl, 'DELETE', `/v1/keys/${key.id}`)).status, 200);
    let status = (await onSecond()).status;
    while (status === 200 && Date.now() - revokedAt < 2000) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      status = (await onSecond()).status;
    }
    const elapsedMs = Date.now() - revokedAt;
    assert.equal(status, 401, `still accepted ${elapsedMs} ms after the revocation`);
    assert.ok(elapsedMs <= 1000, `refused only after ${elapsedMs} ms`);

    const scoped = await createKey(gantry.baseUrl, { tenant: 'alpha', name: 'narrowed', scopes: ['models:read'] });
    const scopedOnSecond = () => call(secondApi.baseUrl, 'GET', '/v1/models', undefined, { authorization: `Bearer ${scoped.key}` });
    assert.equal((await scopedOnSecond()).status, 200);
    assert.equal((await call(gantry.baseUrl, 'PATCH', `/v1/keys/${scoped.id}`, { scopes: ['infer'] })).status, 200);
    await waitUntil(async () => (await scopedOnSecond()).status === 403, 1000, 'the narrowed scope on the second process');

    assert.equal((await call(gantry.baseUrl, 'PATCH', '/v1/tenants/beta', { disabled: true })).status, 200);
    await waitUntil(
      async () => (await call(secondApi.baseUrl, 'GET', '/v2', undefined, { authorization: `Bearer ${ids.keys.beta.key}` })).status === 403,
      1000,
      "beta's keys refused on the second process",
    );
  });
});
