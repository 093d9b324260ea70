/**
 * Authentication and authorization through the real app (ApiRole.create, app.inject(), real Redis on a private
 * prefix): the scope table covers every route, what each kind of bad key gets, scopes, the key and tenant routes'
 * rules, and that a cached key costs no Redis command per request.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { Redis } from 'ioredis';
import { ApiRole } from '../../../src/api/api-role.js';
import { adminKeyKey, apiKeyKey } from '../../../src/redis-keys.js';
import { isListed, routeScopes } from '../../../src/auth/route-scopes.js';
import { ConfigError, loadConfig, type ConfigInput } from '../../../src/config.js';
import { createLogger } from '../../../src/logger.js';
import { adminAuthorization, deleteKeys, testAdminKey } from '../../helpers/gantry-process.js';

const redisUrl = 'redis://127.0.0.1:6379';

interface Api {
  role: ApiRole;
  prefix: string;
  dataDirectory: string;
  inject: (options: InjectOptions, key?: string) => Promise<LightMyRequestResponse>;
  close: () => Promise<void>;
}

/** An API on its own prefix; `inject` sends `key` as a bearer token (the admin key by default, '' for none). */
async function startApi(environment: ConfigInput = {}): Promise<Api> {
  const prefix = `auth-${randomBytes(4).toString('hex')}`;
  const dataDirectory = await mkdtemp(path.join(os.tmpdir(), 'gantry-auth-test-'));
  const config = loadConfig({
    GANTRY_QUEUE_PREFIX: prefix,
    GANTRY_DATA_DIR: dataDirectory,
    LOG_LEVEL: 'silent',
    REDIS_URL: redisUrl,
    GANTRY_ADMIN_KEY: testAdminKey,
    ...environment,
  });
  const role = await ApiRole.create({ ...config, REDIS_URL: redisUrl }, createLogger(config, 'test'));
  await role.app.ready();
  return {
    role,
    prefix,
    dataDirectory,
    inject: (options, key = testAdminKey) =>
      role.app.inject({ ...options, headers: { ...(key === '' ? {} : { authorization: `Bearer ${key}` }), ...options.headers } }),
    close: async () => {
      await role.close(1000);
      await deleteKeys(redisUrl, prefix);
      await rm(dataDirectory, { recursive: true, force: true });
    },
  };
}

function assertRefused(response: LightMyRequestResponse, status: number, code: string): void {
  assert.equal(response.statusCode, status, response.body);
  const body = response.json();
  assert.equal(body.code, code, response.body);
  assert.equal(typeof body.error, 'string');
  assert.equal(typeof body.requestId, 'string');
}

function assertUnauthenticated(response: LightMyRequestResponse, presented?: string): void {
  assertRefused(response, 401, 'UNAUTHENTICATED');
  assert.match(String(response.headers['www-authenticate']), /^Bearer/);
  assert.match(response.json().error, /Authorization: Bearer/);
  if (presented !== undefined && presented.length > 0) assert.ok(!response.body.includes(presented), 'the answer echoes the key');
}

async function createKey(api: Api, body: Record<string, unknown>, key = testAdminKey): Promise<{ id: string; key: string; [field: string]: unknown }> {
  const response = await api.inject({ method: 'POST', url: '/v1/keys', payload: body }, key);
  assert.equal(response.statusCode, 201, response.body);
  return response.json();
}

describe('authentication and scopes', { timeout: 60_000 }, () => {
  let api: Api;

  before(async () => {
    api = await startApi();
    const tenant = await api.inject({ method: 'POST', url: '/v1/tenants', payload: { id: 'acme', name: 'Acme' } });
    assert.equal(tenant.statusCode, 201, tenant.body);
  });
  after(async () => api?.close());

  test('every registered route has an entry in the scope table, and every entry is a route', () => {
    const routes = api.role.app.registeredRoutes;
    assert.ok(routes.length > 20, `only ${routes.length} routes recorded`);
    const unlisted = routes.filter((route) => !isListed(route.method, route.url)).map((route) => `${route.method} ${route.url}`);
    assert.deepEqual(unlisted, [], 'routes missing from src/auth/route-scopes.ts');
    const registered = new Set(routes.map((route) => `${route.method} ${route.url}`));
    const stale = Object.keys(routeScopes).filter((entry) => !registered.has(entry));
    assert.deepEqual(stale, [], 'entries in src/auth/route-scopes.ts with no route');
  });

  test('OpenAPI: bearer and x-api-key security schemes; each operation names its scope; health needs none', async () => {
    const document = (await api.inject({ method: 'GET', url: '/docs/json' }, '')).json();
    assert.equal(document.components.securitySchemes.bearerAuth.scheme, 'bearer');
    assert.deepEqual([document.components.securitySchemes.apiKeyHeader.in, document.components.securitySchemes.apiKeyHeader.name], ['header', 'x-api-key']);
    const infer = document.paths['/v2/models/{model}/infer'].post;
    assert.deepEqual(infer.security, [{ bearerAuth: [] }, { apiKeyHeader: [] }]);
    assert.match(infer.description, /scope 'infer'/);
    assert.match(document.paths['/v1/tenants'].post.description, /scope 'admin'/);
    assert.match(document.paths['/v2/models/{model}'].get.description, /one of the scopes 'models:read', 'infer'/);
    assert.deepEqual(document.paths['/v2/health/ready'].get.security, []);
  });

  test('no key, a malformed key, an unknown key and a wrong secret: the same 401 with WWW-Authenticate', async () => {
    const wellFormedUnknown = `gk_${'a'.repeat(12)}_${'b'.repeat(43)}`;
    const real = await createKey(api, { tenant: 'acme', name: 'reader', scopes: ['models:read'] });
    const wrongSecret = `${real.key.slice(0, -4)}AAAA`;
    const messages = new Set<string>();
    for (const presented of ['', 'not-a-key', wellFormedUnknown, wrongSecret, 'x'.repeat(5000)]) {
      const response = await api.inject({ method: 'GET', url: '/v1/models' }, presented);
      assertUnauthenticated(response, presented);
      messages.add(response.json().error);
    }
    assert.equal(messages.size, 1, `different messages: ${[...messages].join(' | ')}`);
    // Once the real key was verified (and is cached with it), a near miss is still refused, and the key still works.
    assert.equal((await api.inject({ method: 'GET', url: '/v1/models' }, real.key)).statusCode, 200);
    assertUnauthenticated(await api.inject({ method: 'GET', url: '/v1/models' }, wrongSecret), wrongSecret);
    assertUnauthenticated(await api.inject({ method: 'GET', url: '/v1/models' }, `${testAdminKey.slice(0, -1)}X`));
    assert.equal((await api.inject({ method: 'GET', url: '/v1/models' }, real.key)).statusCode, 200);
    // Another scheme, or the key without one, is no key.
    assertUnauthenticated(await api.inject({ method: 'GET', url: '/v1/models', headers: { authorization: `Basic ${real.key}` } }, ''));
    assertUnauthenticated(await api.inject({ method: 'GET', url: '/v1/models', headers: { authorization: real.key } }, ''));
    // An unknown route needs a key too: what exists is not told to strangers.
    assertUnauthenticated(await api.inject({ method: 'GET', url: '/v2/no/such/route' }, ''));
    assert.equal((await api.inject({ method: 'GET', url: '/v2/no/such/route' })).statusCode, 404);
  });

  test('x-api-key works like Authorization: Bearer', async () => {
    const reader = await createKey(api, { tenant: 'acme', name: 'reader', scopes: ['models:read'] });
    const response = await api.inject({ method: 'GET', url: '/v1/models', headers: { 'x-api-key': reader.key } }, '');
    assert.equal(response.statusCode, 200, response.body);
  });

  test('public routes answer without a key; /v2 needs any key', async () => {
    for (const url of ['/v2/health/live', '/v2/health/ready', '/docs/json', '/metrics']) {
      assert.equal((await api.inject({ method: 'GET', url }, '')).statusCode, 200, url);
    }
    assertUnauthenticated(await api.inject({ method: 'GET', url: '/v2' }, ''));
    const usageOnly = await createKey(api, { tenant: 'acme', name: 'usage', scopes: ['usage:read'] });
    assert.equal((await api.inject({ method: 'GET', url: '/v2' }, usageOnly.key)).statusCode, 200);
  });

  test('a key without the scope a route needs gets 403 naming it', async () => {
    const inferOnly = await createKey(api, { tenant: 'acme', name: 'app', scopes: ['infer'] });
    const upload = await api.inject(
      { method: 'POST', url: '/v1/models/m/versions', headers: { 'content-type': 'application/octet-stream' }, payload: Buffer.from('x') },
      inferOnly.key,
    );
    assertRefused(upload, 403, 'PERMISSION_DENIED');
    assert.match(upload.json().error, /'models:write'/);
    assert.equal(upload.headers['www-authenticate'], undefined);
    const tenants = await api.inject({ method: 'GET', url: '/v1/tenants' }, inferOnly.key);
    assertRefused(tenants, 403, 'PERMISSION_DENIED');
    assert.match(tenants.json().error, /'admin'/);
    // Metadata is readable with `infer` (clients read it before they infer): past the scope check, to a 404.
    assert.equal((await api.inject({ method: 'GET', url: '/v2/models/absent' }, inferOnly.key)).statusCode, 404);
  });

  test('revoked, expired and re-scoped keys take effect at once in this process', async () => {
    const key = await createKey(api, { tenant: 'acme', name: 'temporary', scopes: ['models:read'] });
    assert.equal((await api.inject({ method: 'GET', url: '/v1/models' }, key.key)).statusCode, 200);
    const narrowed = await api.inject({ method: 'PATCH', url: `/v1/keys/${key.id}`, payload: { scopes: ['infer'] } });
    assert.equal(narrowed.statusCode, 200, narrowed.body);
    assertRefused(await api.inject({ method: 'GET', url: '/v1/models' }, key.key), 403, 'PERMISSION_DENIED');
    const expiring = await api.inject({
      method: 'PATCH',
      url: `/v1/keys/${key.id}`,
      payload: { scopes: ['models:read'], expiresAt: new Date(Date.now() + 1500).toISOString() },
    });
    assert.equal(expiring.statusCode, 200, expiring.body);
    assert.equal((await api.inject({ method: 'GET', url: '/v1/models' }, key.key)).statusCode, 200);
    await new Promise((resolve) => setTimeout(resolve, 1600));
    assertUnauthenticated(await api.inject({ method: 'GET', url: '/v1/models' }, key.key), key.key);
    assert.equal((await api.inject({ method: 'GET', url: `/v1/keys/${key.id}` })).json().status, 'expired');

    const other = await createKey(api, { tenant: 'acme', name: 'to revoke', scopes: ['models:read'] });
    assert.equal((await api.inject({ method: 'GET', url: '/v1/models' }, other.key)).statusCode, 200);
    const revoked = await api.inject({ method: 'DELETE', url: `/v1/keys/${other.id}` });
    assert.equal(revoked.statusCode, 200, revoked.body);
    assert.equal(revoked.json().status, 'revoked');
    assertUnauthenticated(await api.inject({ method: 'GET', url: '/v1/models' }, other.key), other.key);
  });

  test("a disabled tenant's keys get 403 until it is enabled again", async () => {
    assert.equal((await api.inject({ method: 'POST', url: '/v1/tenants', payload: { id: 'paused' } })).statusCode, 201);
    const key = await createKey(api, { tenant: 'paused', name: 'k', scopes: ['models:read'] });
    assert.equal((await api.inject({ method: 'GET', url: '/v1/models' }, key.key)).statusCode, 200);
    assert.equal((await api.inject({ method: 'PATCH', url: '/v1/tenants/paused', payload: { disabled: true } })).statusCode, 200);
    const refused = await api.inject({ method: 'GET', url: '/v1/models' }, key.key);
    assertRefused(refused, 403, 'PERMISSION_DENIED');
    assert.match(refused.json().error, /disabled/);
    assert.equal((await api.inject({ method: 'PATCH', url: '/v1/tenants/paused', payload: { disabled: false } })).statusCode, 200);
    assert.equal((await api.inject({ method: 'GET', url: '/v1/models' }, key.key)).statusCode, 200);
  });

  test("a tenant key with keys:write manages its own tenant's keys only, never beyond what it holds", async () => {
    assert.equal((await api.inject({ method: 'POST', url: '/v1/tenants', payload: { id: 'globex' } })).statusCode, 201);
    const manager = await createKey(api, { tenant: 'acme', name: 'manager', scopes: ['keys:write', 'infer', 'models:read'] });
    const foreign = await createKey(api, { tenant: 'globex', name: 'theirs', scopes: ['infer'] });

    const own = await createKey(api, { name: 'made by manager', scopes: ['infer'] }, manager.key);
    assert.equal(own.tenant, 'acme');
    for (const [body, pattern] of [
      [{ name: 'x', scopes: ['models:write'] }, /'models:write'/],
      [{ name: 'x', scopes: ['admin'] }, /'admin'/],
    ] as const) {
      const refused = await api.inject({ method: 'POST', url: '/v1/keys', payload: body }, manager.key);
      assertRefused(refused, 403, 'PERMISSION_DENIED');
      assert.match(refused.json().error, pattern);
    }
    assertRefused(
      await api.inject({ method: 'POST', url: '/v1/keys', payload: { tenant: 'globex', name: 'x', scopes: ['infer'] } }, manager.key),
      404,
      'NOT_FOUND',
    );
    assertRefused(await api.inject({ method: 'GET', url: `/v1/keys/${foreign.id}` }, manager.key), 404, 'NOT_FOUND');
    assertRefused(await api.inject({ method: 'DELETE', url: `/v1/keys/${foreign.id}` }, manager.key), 404, 'NOT_FOUND');
    assertRefused(
      await api.inject({ method: 'PATCH', url: `/v1/keys/${own.id}`, payload: { scopes: ['models:write'] } }, manager.key),
      403,
      'PERMISSION_DENIED',
    );

    const listed = await api.inject({ method: 'GET', url: '/v1/keys' }, manager.key);
    assert.equal(listed.statusCode, 200, listed.body);
    const ids = listed.json().keys.map((key: { id: string; tenant: string }) => key.id);
    assert.ok(ids.includes(own.id) && ids.includes(manager.id));
    assert.ok(!ids.includes(foreign.id), "another tenant's key is listed");
    assert.ok(listed.json().keys.every((key: { tenant: string }) => key.tenant === 'acme'));
    // Never a secret or a hash, in any listing.
    const everything = (await api.inject({ method: 'GET', url: '/v1/keys' })).body;
    for (const secret of [own.key, manager.key, foreign.key]) assert.ok(!everything.includes(secret.slice(16)), 'a listing shows a secret');
    assert.doesNotMatch(everything, /"hash"|[0-9a-f]{64}/);
  });

  test('a key with a model allow-list cannot hand out more models than it has', async () => {
    const limited = await createKey(api, { tenant: 'acme', name: 'limited', scopes: ['keys:write', 'infer'], models: ['a', 'b'] });
    const within = await createKey(api, { name: 'within', scopes: ['infer'], models: ['a'] }, limited.key);
    assert.deepEqual(within.models, ['a']);
    assertRefused(await api.inject({ method: 'POST', url: '/v1/keys', payload: { name: 'all', scopes: ['infer'] } }, limited.key), 403, 'PERMISSION_DENIED');
    assertRefused(
      await api.inject({ method: 'POST', url: '/v1/keys', payload: { name: 'c', scopes: ['infer'], models: ['a', 'c'] } }, limited.key),
      403,
      'PERMISSION_DENIED',
    );
  });

  test("tenants: ids are checked, ids are unique, the default tenant stays, a deleted tenant's keys stop at once", async () => {
    assertRefused(await api.inject({ method: 'POST', url: '/v1/tenants', payload: { id: 'Bad_Id' } }), 400, 'INVALID_ARGUMENT');
    assert.equal((await api.inject({ method: 'POST', url: '/v1/tenants', payload: { id: 'initech' } })).statusCode, 201);
    assertRefused(await api.inject({ method: 'POST', url: '/v1/tenants', payload: { id: 'initech' } }), 409, 'ALREADY_EXISTS');
    assertRefused(await api.inject({ method: 'DELETE', url: '/v1/tenants/default' }), 400, 'INVALID_ARGUMENT');
    const listed = (await api.inject({ method: 'GET', url: '/v1/tenants' })).json().tenants.map((tenant: { id: string }) => tenant.id);
    assert.ok(listed.includes('default') && listed.includes('initech'), listed.join(','));
    const key = await createKey(api, { tenant: 'initech', name: 'k', scopes: ['models:read'] });
    assert.equal((await api.inject({ method: 'GET', url: '/v1/models' }, key.key)).statusCode, 200);
    assert.equal((await api.inject({ method: 'DELETE', url: '/v1/tenants/initech' })).statusCode, 204);
    assertUnauthenticated(await api.inject({ method: 'GET', url: '/v1/models' }, key.key), key.key);
    assertRefused(await api.inject({ method: 'GET', url: '/v1/tenants/initech' }), 404, 'NOT_FOUND');
    assertRefused(await api.inject({ method: 'POST', url: '/v1/keys', payload: { tenant: 'nowhere', name: 'k', scopes: ['infer'] } }), 404, 'NOT_FOUND');
  });

  test('a cached key costs no Redis command per request; a repeated unknown key id costs at most one', async () => {
    const reader = await createKey(api, { tenant: 'acme', name: 'hot path', scopes: ['models:read', 'infer'] });
    const unknownId = 'zzzzzzzzzzzz';
    const watched = new Set([apiKeyKey(api.prefix, reader.id), apiKeyKey(api.prefix, unknownId)]);
    const seen: string[] = [];
    const adminKeyName = adminKeyKey(api.prefix);
    const monitorClient = new Redis(redisUrl);
    const monitor = await monitorClient.monitor();
    monitor.on('monitor', (_time: string, args: string[]) => {
      // Only this API's keys: other processes on the shared Redis read their own admin keys meanwhile.
      if (args.some((argument) => watched.has(argument) || argument.startsWith(adminKeyName))) seen.push(args.join(' '));
    });
    try {
      for (let index = 0; index < 3; index++) await api.inject({ method: 'GET', url: '/v2' }, reader.key);
      await new Promise((resolve) => setTimeout(resolve, 100));
      seen.length = 0;
      for (let index = 0; index < 200; index++) assert.equal((await api.inject({ method: 'GET', url: '/v2' }, reader.key)).statusCode, 200);
      for (let index = 0; index < 200; index++)
        assert.equal((await api.inject({ method: 'GET', url: '/v2' }, `gk_${unknownId}_${'c'.repeat(43)}`)).statusCode, 401);
      for (let index = 0; index < 200; index++) assert.equal((await api.inject({ method: 'GET', url: '/v2' }, 'malformed-key')).statusCode, 401);
      await new Promise((resolve) => setTimeout(resolve, 200));
      // The admin key's hash is re-read on a timer (every GANTRY_AUTH_CACHE_TTL_MS), never per request.
      const perRequest = seen.filter((command) => !command.includes(adminKeyName));
      assert.ok(perRequest.length <= 1, `Redis commands on the hot path: ${perRequest.join('; ')}`);
      assert.ok(seen.length - perRequest.length <= 2, `admin key reads: ${seen.length - perRequest.length}`);
    } finally {
      monitor.disconnect();
      monitorClient.disconnect();
    }
  });
});

describe('metrics, auth off and the admin key variable', { timeout: 60_000 }, () => {
  test('/metrics needs metrics:read (or admin) on a non-loopback bind, unless GANTRY_METRICS_PUBLIC=true', async () => {
    const api = await startApi({ HOST: '0.0.0.0' });
    try {
      assertUnauthenticated(await api.inject({ method: 'GET', url: '/metrics' }, ''));
      assert.equal((await api.inject({ method: 'GET', url: '/metrics' })).statusCode, 200);
      const scraper = await createKey(api, { name: 'prometheus', scopes: ['metrics:read'] });
      assert.equal((await api.inject({ method: 'GET', url: '/metrics' }, scraper.key)).statusCode, 200);
      const reader = await createKey(api, { name: 'reader', scopes: ['models:read'] });
      assertRefused(await api.inject({ method: 'GET', url: '/metrics' }, reader.key), 403, 'PERMISSION_DENIED');
    } finally {
      await api.close();
    }
    const open = await startApi({ HOST: '0.0.0.0', GANTRY_METRICS_PUBLIC: 'true' });
    try {
      assert.equal((await open.inject({ method: 'GET', url: '/metrics' }, '')).statusCode, 200);
    } finally {
      await open.close();
    }
  });

  test('GANTRY_AUTH=off is refused on a non-loopback HOST, with why; on loopback every caller is the admin', async () => {
    assert.throws(
      () => loadConfig({ GANTRY_AUTH: 'off', HOST: '0.0.0.0' }),
      (error: unknown) => error instanceof ConfigError && /GANTRY_AUTH=off.*HOST=0\.0\.0\.0.*loopback/s.test(error.message),
    );
    assert.throws(() => loadConfig({ GANTRY_AUTH: 'off', HOST: '10.1.2.3' }), ConfigError);
    for (const host of ['127.0.0.1', 'localhost', '::1', '127.0.0.2']) assert.equal(loadConfig({ GANTRY_AUTH: 'off', HOST: host }).GANTRY_AUTH, 'off', host);
    assert.throws(() => loadConfig({ GANTRY_ADMIN_KEY: 'too-short' }), /GANTRY_ADMIN_KEY/);
    const api = await startApi({ GANTRY_AUTH: 'off' });
    try {
      assert.equal((await api.inject({ method: 'GET', url: '/v1/tenants' }, '')).statusCode, 200);
    } finally {
      await api.close();
    }
  });

  test('with an admin key and a wrong one: only the configured admin key is the admin', async () => {
    const api = await startApi();
    try {
      assert.equal((await api.inject({ method: 'GET', url: '/v1/tenants', headers: { authorization: adminAuthorization } }, '')).statusCode, 200);
      assertUnauthenticated(await api.inject({ method: 'GET', url: '/v1/tenants' }, `${testAdminKey}x`));
    } finally {
      await api.close();
    }
  });
});
