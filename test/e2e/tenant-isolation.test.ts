/**
 * Models belong to tenants (issue 12), over HTTP against a real `gantry start` (API + worker, real Redis and
 * onnxruntime): two tenants each own a model named `shared` (different models, so a mix-up shows in signatures
 * and outputs) and are isolated in every model route, list, statistic, metric label and error message; a key's
 * model allow-list holds; the admin addresses both by qualified name; per-tenant caps refuse uploads with 409 or
 * 413 naming the cap while another tenant still uploads.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fixturePath, startGantry, type GantryProcess } from '../helpers/gantry-process.js';
import { call as sharedCall, type HttpReply } from './support.js';
import { httpCall } from '../helpers/http.js';

const adminKey = 'gantry-tenancy-test-admin-key-0123456789abcdef';

type Reply = HttpReply;

describe('tenant isolation (gantry start)', () => {
  let gantry: GantryProcess;
  const keys = { admin: adminKey, acme: '', globex: '', acmeNarrow: '', acmeReader: '' };
  type Caller = keyof typeof keys;

  const call = (caller: Caller, method: string, urlPath: string, body?: unknown): Promise<Reply> =>
    sharedCall(gantry.baseUrl, method, urlPath, body, { authorization: `Bearer ${keys[caller]}` });

  // Every upload here makes a version, even of bytes the model has already (the caps tests count versions).
  async function upload(caller: Caller, name: string, fixture: string): Promise<Reply> {
    return httpCall(gantry.baseUrl, 'POST', `/v1/models/${name}/versions?duplicate=true`, {
      headers: { authorization: `Bearer ${keys[caller]}`, 'content-type': 'application/octet-stream' },
      body: await readFile(fixturePath(fixture)),
    });
  }

  const acmeRequest = {
    inputs: [
      { name: 'a', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] },
      { name: 'b', datatype: 'FP32', shape: [1, 4], data: [10, 20, 30, 40] },
    ],
    outputs: [{ name: 'sum' }],
  };
  const globexRequest = { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3], data: [7, 8, 9] }] };

  /** Asserts a refusal is a 404 whose message names only what the caller wrote, like a name that never existed. */
  async function assertNotFound(caller: Caller, method: string, urlPath: string, asWritten: string, body?: unknown): Promise<void> {
    const reply = await call(caller, method, urlPath, body);
    assert.equal(reply.status, 404, `${caller} ${method} ${urlPath}: ${reply.text}`);
    assert.equal(reply.body.code, 'NOT_FOUND');
    assert.match(reply.body.error, new RegExp(`model '${asWritten.replace(/[.~]/g, '\\$&')}'`), reply.text);
    // The name the caller wrote may come back; nothing else about other tenants may.
    assertMentionsNoOtherTenant(caller, reply.text, [asWritten]);
  }

  /** Nothing a tenant's key is answered names another tenant or a qualified name. */
  function assertMentionsNoOtherTenant(caller: Caller, text: string, allowedQualified: string[] = []): void {
    if (caller === 'admin') return;
    let rest = text;
    for (const allowed of allowedQualified) rest = rest.replaceAll(allowed, '');
    const others = caller === 'globex' ? ['acme'] : ['globex'];
    for (const other of others) assert.ok(!rest.includes(other), `${caller} was shown '${other}': ${text}`);
    assert.ok(!rest.includes('~'), `${caller} was shown a qualified name: ${text}`);
  }

  before(async () => {
    gantry = await startGantry({ env: { GANTRY_ADMIN_KEY: adminKey } });
    for (const tenant of ['acme', 'globex']) {
      const created = await call('admin', 'POST', '/v1/tenants', { id: tenant });
      assert.equal(created.status, 201, created.text);
    }
    const makeKey = async (tenant: string, extra: object = {}) => {
      const reply = await call('admin', 'POST', '/v1/keys', { tenant, name: `${tenant} test key`, scopes: ['models:read', 'models:write', 'infer'], ...extra });
      assert.equal(reply.status, 201, reply.text);
      return reply.body.key as string;
    };
    keys.acme = await makeKey('acme');
    keys.globex = await makeKey('globex');
    keys.acmeNarrow = await makeKey('acme', { models: ['shared'] });
    keys.acmeReader = await makeKey('acme', { scopes: ['models:read', 'infer'] });

    for (const [caller, name, fixture] of [
      ['acme', 'shared', 'multi-io.onnx'],
      ['acme', 'acme-only', 'tiny-mlp.onnx'],
      ['globex', 'shared', 'identity-float.onnx'],
    ] as const) {
      const uploaded = await upload(caller, name, fixture);
      assert.equal(uploaded.status, 201, uploaded.text);
      // The upload answers with the name as the tenant wrote it.
      assert.equal(uploaded.body.name, name);
    }
  });

  after(async () => {
    await gantry?.cleanup();
  });

  test("a version's sha256 is shown only to callers who may manage the model (models:write)", async () => {
    const shasIn = (reply: Reply) => JSON.stringify(reply.body).match(/"sha256"/g)?.length ?? 0;
    for (const urlPath of ['/v1/models', '/v1/models/shared', '/v1/models/shared/versions/1']) {
      const reader = await call('acmeReader', 'GET', urlPath);
      assert.equal(reader.status, 200, reader.text);
      assert.equal(shasIn(reader), 0, `${urlPath} for a read-only key: ${reader.text}`);
      const manager = await call('acme', 'GET', urlPath);
      assert.equal(manager.status, 200, manager.text);
      assert.ok(shasIn(manager) > 0, `${urlPath} for a models:write key: ${manager.text}`);
    }
  });

  test('each tenant gets its own `shared`: metadata, config, readiness and inference', async () => {
    const acmeMetadata = await call('acme', 'GET', '/v2/models/shared');
    assert.equal(acmeMetadata.status, 200, acmeMetadata.text);
    assert.equal(acmeMetadata.body.name, 'shared');
    assert.deepEqual(
      acmeMetadata.body.inputs.map((input: { name: string }) => input.name),
      ['a', 'b'],
    );
    const globexMetadata = await call('globex', 'GET', '/v2/models/shared/versions/1');
    assert.equal(globexMetadata.status, 200, globexMetadata.text);
    assert.deepEqual(
      globexMetadata.body.inputs.map((input: { name: string }) => input.name),
      ['input'],
    );

    const acmeConfig = await call('acme', 'GET', '/v2/models/shared/config');
    assert.equal(acmeConfig.status, 200, acmeConfig.text);
    assert.equal(acmeConfig.body.name, 'shared');
    assert.deepEqual(
      acmeConfig.body.input.map((input: { name: string }) => input.name),
      ['a', 'b'],
    );
    assertMentionsNoOtherTenant('acme', acmeConfig.text);

    for (const caller of ['acme', 'globex'] as const) {
      const ready = await call(caller, 'GET', '/v2/models/shared/ready');
      assert.deepEqual([ready.status, ready.body], [200, { name: 'shared', ready: true }]);
    }

    const acmeAnswer = await call('acme', 'POST', '/v2/models/shared/infer', acmeRequest);
    assert.equal(acmeAnswer.status, 200, acmeAnswer.text);
    assert.equal(acmeAnswer.body.model_name, 'shared');
    assert.deepEqual(acmeAnswer.body.outputs[0].data, [11, 22, 33, 44]);
    const globexAnswer = await call('globex', 'POST', '/v2/models/shared/versions/1/infer', globexRequest);
    assert.equal(globexAnswer.status, 200, globexAnswer.text);
    assert.equal(globexAnswer.body.model_name, 'shared');
    assert.deepEqual(globexAnswer.body.outputs[0].data, [7, 8, 9]);

    // Acme's request does not fit globex's `shared` (and the other way round): each reached its own model.
    const crossed = await call('globex', 'POST', '/v2/models/shared/infer', acmeRequest);
    assert.equal(crossed.status, 400, crossed.text);
    assertMentionsNoOtherTenant('globex', crossed.text);
  });

  test("another tenant's model is not found, exactly like a model that never existed", async () => {
    // globex's view of acme's model, bare and qualified, is the view of a name nobody uses.
    for (const name of ['acme-only', 'acme~acme-only', 'acme~shared', 'no-such-model', 'acme~no-such-model']) {
      await assertNotFound('globex', 'GET', `/v2/models/${name}`, name);
      await assertNotFound('globex', 'GET', `/v2/models/${name}/ready`, name);
      await assertNotFound('globex', 'GET', `/v2/models/${name}/config`, name);
      await assertNotFound('globex', 'GET', `/v2/models/${name}/stats`, name);
      await assertNotFound('globex', 'GET', `/v2/models/${name}/versions/1/stats`, name);
      await assertNotFound('globex', 'POST', `/v2/models/${name}/infer`, name, acmeRequest);
      await assertNotFound('globex', 'GET', `/v1/models/${name}`, name);
      await assertNotFound('globex', 'GET', `/v1/models/${name}/versions/1`, name);
      await assertNotFound('globex', 'PUT', `/v1/models/${name}/config`, name, { instances: 1 });
      await assertNotFound('globex', 'POST', `/v2/repository/models/${name}/unload`, name, {});
      await assertNotFound('globex', 'POST', `/v2/repository/models/${name}/load`, name, {});
      await assertNotFound('globex', 'DELETE', `/v1/models/${name}/versions/1`, name);
      await assertNotFound('globex', 'DELETE', `/v1/models/${name}`, name);
    }
    // The model survived all of that.
    const still = await call('acme', 'GET', '/v1/models/acme-only');
    assert.equal(still.status, 200, still.text);
    assert.equal(still.body.versions[0].state, 'READY');

    // Errors about a tenant's own model name it as written, without the tenant prefix.
    const missingVersion = await call('acme', 'GET', '/v2/models/shared/versions/9');
    assert.equal(missingVersion.status, 404);
    assert.equal(missingVersion.body.error, "Unknown version '9' of model 'shared'.");
    const badInput = await call('acme', 'POST', '/v2/models/shared/infer', globexRequest);
    assert.equal(badInput.status, 400);
    assertMentionsNoOtherTenant('acme', badInput.text);
  });

  test('lists show only the caller’s models; the admin sees every tenant’s, qualified, with the tenant', async () => {
    const listed = async (caller: Caller) => {
      const reply = await call(caller, 'GET', '/v1/models');
      assert.equal(reply.status, 200, reply.text);
      assertMentionsNoOtherTenant(caller, reply.text);
      return reply.body.models.map((model: { name: string; tenant: string }) => `${model.tenant}:${model.name}`).sort();
    };
    assert.deepEqual(await listed('acme'), ['acme:acme-only', 'acme:shared']);
    assert.deepEqual(await listed('globex'), ['globex:shared']);
    assert.deepEqual(await listed('acmeNarrow'), ['acme:shared']);
    const all = await listed('admin');
    for (const expected of ['acme:acme~acme-only', 'acme:acme~shared', 'globex:globex~shared'])
      assert.ok(all.includes(expected), `${expected} in ${all.join(', ')}`);

    const index = async (caller: Caller) => {
      const reply = await call(caller, 'POST', '/v2/repository/index', {});
      assert.equal(reply.status, 200, reply.text);
      assertMentionsNoOtherTenant(caller, reply.text);
      return reply.body.map((entry: { name: string; version: string }) => `${entry.name}/${entry.version}`).sort();
    };
    assert.deepEqual(await index('acme'), ['acme-only/1', 'shared/1']);
    assert.deepEqual(await index('globex'), ['shared/1']);
    assert.deepEqual(await index('acmeNarrow'), ['shared/1']);
    const adminIndex = await index('admin');
    for (const expected of ['acme~acme-only/1', 'acme~shared/1', 'globex~shared/1']) assert.ok(adminIndex.includes(expected));
  });

  test('statistics count each tenant’s own inferences only; metric labels differ', async () => {
    // Two more for globex, one more for acme, on top of the first test's.
    for (let index = 0; index < 2; index++) assert.equal((await call('globex', 'POST', '/v2/models/shared/infer', globexRequest)).status, 200);
    assert.equal((await call('acme', 'POST', '/v2/models/shared/infer', acmeRequest)).status, 200);

    // Workers write statistics in the background: wait until the counts are in.
    const statsOf = async (caller: Caller, urlPath: string) => {
      const reply = await call(caller, 'GET', urlPath);
      assert.equal(reply.status, 200, reply.text);
      assertMentionsNoOtherTenant(caller, reply.text);
      return reply.body.model_stats as Array<{ name: string; version: string; inference_count: number }>;
    };
    const deadline = Date.now() + 10_000;
    let acme = await statsOf('acme', '/v2/models/shared/stats');
    let globex = await statsOf('globex', '/v2/models/shared/versions/1/stats');
    while ((acme[0]?.inference_count !== 2 || globex[0]?.inference_count !== 3) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      acme = await statsOf('acme', '/v2/models/shared/stats');
      globex = await statsOf('globex', '/v2/models/shared/versions/1/stats');
    }
    assert.deepEqual(
      acme.map((stat) => [stat.name, stat.version, stat.inference_count]),
      [['shared', '1', 2]],
    );
    assert.deepEqual(
      globex.map((stat) => [stat.name, stat.version, stat.inference_count]),
      [['shared', '1', 3]],
    );

    const everyAcme = await statsOf('acme', '/v2/models/stats');
    assert.deepEqual(everyAcme.map((stat) => stat.name).sort(), ['acme-only', 'shared']);
    const everyGlobex = await statsOf('globex', '/v2/models/stats');
    assert.deepEqual(
      everyGlobex.map((stat) => stat.name),
      ['shared'],
    );
    const adminStats = await statsOf('admin', '/v2/models/globex~shared/stats');
    assert.deepEqual(
      adminStats.map((stat) => [stat.name, stat.inference_count]),
      [['globex~shared', 3]],
    );

    const metrics = await call('admin', 'GET', '/metrics');
    assert.equal(metrics.status, 200);
    const successes = (model: string) => {
      const line = metrics.text
        .split('\n')
        .find((row) => row.startsWith('gantry_inference_requests_total{') && row.includes(`model="${model}"`) && row.includes('outcome="success"'));
      return line === undefined ? undefined : Number(line.split(' ').at(-1));
    };
    assert.equal(successes('acme~shared'), 2);
    assert.equal(successes('globex~shared'), 3);
  });

  test("a key's model allow-list holds in every route", async () => {
    const allowed = await call('acmeNarrow', 'POST', '/v2/models/shared/infer', acmeRequest);
    assert.equal(allowed.status, 200, allowed.text);
    await assertNotFound('acmeNarrow', 'POST', '/v2/models/acme-only/infer', 'acme-only', acmeRequest);
    await assertNotFound('acmeNarrow', 'GET', '/v2/models/acme-only', 'acme-only');
    await assertNotFound('acmeNarrow', 'GET', '/v1/models/acme-only', 'acme-only');
    await assertNotFound('acmeNarrow', 'GET', '/v2/models/acme-only/stats', 'acme-only');
    await assertNotFound('acmeNarrow', 'GET', '/v2/models/acme~acme-only', 'acme~acme-only');
    const stats = await call('acmeNarrow', 'GET', '/v2/models/stats');
    assert.deepEqual(
      stats.body.model_stats.map((stat: { name: string }) => stat.name),
      ['shared'],
    );
  });

  test('the admin addresses each tenant’s model by its qualified name', async () => {
    const acme = await call('admin', 'POST', '/v2/models/acme~shared/infer', acmeRequest);
    assert.equal(acme.status, 200, acme.text);
    assert.equal(acme.body.model_name, 'acme~shared');
    assert.deepEqual(acme.body.outputs[0].data, [11, 22, 33, 44]);
    const globex = await call('admin', 'GET', '/v1/models/globex~shared');
    assert.equal(globex.status, 200, globex.text);
    assert.equal(globex.body.name, 'globex~shared');
    // The admin's own (default tenant's) namespace has no `shared`.
    assert.equal((await call('admin', 'GET', '/v2/models/shared')).status, 404);
  });

  test("unloading and deleting a tenant's model leaves the other tenant's model of the same name alone", async () => {
    assert.equal((await call('acme', 'POST', '/v2/repository/models/shared/unload', {})).status, 200);
    assert.equal((await call('acme', 'GET', '/v2/models/shared/ready')).status, 503);
    const globexReady = await call('globex', 'GET', '/v2/models/shared/ready');
    assert.deepEqual([globexReady.status, globexReady.body.ready], [200, true]);
    assert.equal((await call('globex', 'POST', '/v2/models/shared/infer', globexRequest)).status, 200);
    const reloaded = await call('acme', 'POST', '/v2/repository/models/shared/load', {});
    assert.equal(reloaded.status, 200, reloaded.text);

    const second = await upload('globex', 'shared', 'identity-float.onnx');
    assert.equal(second.status, 201, second.text);
    assert.equal((await call('globex', 'DELETE', '/v1/models/shared/versions/2')).status, 204);
    assert.equal((await call('acme', 'GET', '/v1/models/shared')).body.versions.length, 1);
  });

  test('per-tenant caps refuse uploads naming the cap (409 models/versions, 413 bytes); another tenant still uploads', async () => {
    const tinyBytes = (await readFile(fixturePath('tiny-mlp.onnx'))).length;
    // globex holds one model with one version (the second was deleted above).
    const capped = await call('admin', 'PATCH', '/v1/tenants/globex', { limits: { maxModels: 1, maxVersions: 2 } });
    assert.equal(capped.status, 200, capped.text);

    const newModel = await upload('globex', 'second', 'tiny-mlp.onnx');
    assert.equal(newModel.status, 409, newModel.text);
    assert.equal(newModel.body.code, 'FAILED_PRECONDITION');
    assert.match(newModel.body.error, /Tenant 'globex' has 1 models, its cap \(maxModels\)/);

    const newVersion = await upload('globex', 'shared', 'identity-float.onnx');
    assert.equal(newVersion.status, 201, newVersion.text);
    const pastVersions = await upload('globex', 'shared', 'identity-float.onnx');
    assert.equal(pastVersions.status, 409, pastVersions.text);
    assert.match(pastVersions.body.error, /Tenant 'globex' has 2 model versions, its cap \(maxVersions/);

    // Room for exactly one more tiny MLP's bytes, not two.
    const stored = await call('admin', 'GET', '/v1/models/globex~shared');
    const storedBytes = stored.body.versions.reduce((sum: number, version: { size: number }) => sum + version.size, 0);
    assert.equal((await call('admin', 'PATCH', '/v1/tenants/globex', { limits: { maxStoredBytes: storedBytes + tinyBytes + 10 } })).status, 200);
    assert.equal((await upload('globex', 'shared', 'tiny-mlp.onnx')).status, 201);
    const pastBytes = await upload('globex', 'shared', 'tiny-mlp.onnx');
    assert.equal(pastBytes.status, 413, pastBytes.text);
    assert.equal(pastBytes.body.code, 'PAYLOAD_TOO_LARGE');
    assert.match(
      pastBytes.body.error,
      new RegExp(
        `would take tenant 'globex' past its cap on stored model bytes \\(maxStoredBytes, ${storedBytes + tinyBytes + 10} bytes; ${storedBytes + tinyBytes} stored now\\)`,
      ),
    );

    // Acme has no caps and is not held back by globex's.
    const acmeUpload = await upload('acme', 'third', 'tiny-mlp.onnx');
    assert.equal(acmeUpload.status, 201, acmeUpload.text);

    // Refusals are counted per cap.
    const metrics = await call('admin', 'GET', '/metrics');
    for (const limit of ['tenant_models', 'tenant_versions', 'tenant_stored_bytes']) {
      assert.match(metrics.text, new RegExp(`gantry_limit_rejections_total\\{limit="${limit}"\\} [1-9]`), limit);
    }
  });
});
