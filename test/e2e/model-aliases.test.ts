/**
 * Aliases (issue 14) over HTTP and gRPC against real processes (a `gantry start` plus a second `gantry api` on the
 * same Redis prefix, real onnxruntime): the alias routes (validation, 404s, scopes, tenants, the bound), requests
 * naming an alias, unpinned requests following `production`, deletes guarded by aliases, and the move of
 * `production` reaching both API processes within a second with no failed request.
 *
 * The model `pair` has two versions with one input signature and different answers: version 1 is
 * identity-float (y = x, shape ["batch", "width"]), version 2 fixed-batch (y = 2x, shape [1, 4]).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { Redis } from 'ioredis';
import { fixturePath, testAdminKey, uploadModel, type GantryProcess } from '../helpers/gantry-process.js';
import { unaryCall, type GrpcClient, type GrpcFailure } from '../helpers/grpc-client.js';
import { httpCall } from '../helpers/http.js';
import { modelAliasesKey } from '../../src/redis-keys.js';
import { assertError, call, waitUntil, type JsonReply } from './support.js';
import { pairRequest, startTwoApiDeployment, type TwoApiDeployment } from '../helpers/two-api-deployment.js';

const request = pairRequest;
const maxAliases = 4;

describe('model aliases', { timeout: 240_000 }, () => {
  let deployment: TwoApiDeployment;
  let gantry: GantryProcess;
  let secondApi: GantryProcess;
  let inference: GrpcClient;
  let keys: TwoApiDeployment['keys'];

  const admin = (...args: Parameters<TwoApiDeployment['admin']>) => deployment.admin(...args);
  const as = (...args: Parameters<TwoApiDeployment['as']>) => deployment.as(...args);
  const uploadPair = (name: string) => deployment.uploadPair(name);

  /** The version that answered an unpinned (or `version`-named) request, and its first output value. */
  async function answer(base: string, model: string, version?: string): Promise<{ status: number; version: string; first: number; body: JsonReply['body'] }> {
    const path = version === undefined ? `/v2/models/${model}/infer` : `/v2/models/${model}/versions/${version}/infer`;
    const reply = await call(base, 'POST', path, request);
    return { status: reply.status, version: reply.body.model_version, first: reply.body.outputs?.[0]?.data?.[0], body: reply.body };
  }

  before(async () => {
    deployment = await startTwoApiDeployment({ GANTRY_MAX_ALIASES_PER_MODEL: String(maxAliases) });
    ({ gantry, secondApi, inference, keys } = deployment);
  });
  after(async () => {
    await deployment?.close();
  });

  test('PUT answers the alias record; GET lists them; DELETE removes one (204), then 404', async () => {
    const put = await admin('PUT', '/v1/models/pair/aliases/stable', { version: '1' });
    assert.equal(put.status, 200, put.text);
    assert.equal(put.body.alias, 'stable');
    assert.equal(put.body.version, '1');
    assert.ok(!Number.isNaN(Date.parse(put.body.updatedAt)));
    // A number is taken as the version number too; moving an alias is setting it again.
    assert.equal((await admin('PUT', '/v1/models/pair/aliases/stable', { version: 2 })).body.version, '2');
    const list = await admin('GET', '/v1/models/pair/aliases');
    assert.equal(list.status, 200);
    assert.deepEqual(
      list.body.aliases.map((alias: { alias: string; version: string }) => [alias.alias, alias.version]),
      [['stable', '2']],
    );
    assert.equal((await admin('DELETE', '/v1/models/pair/aliases/stable')).status, 204);
    assertError(await admin('DELETE', '/v1/models/pair/aliases/stable'), 404, 'NOT_FOUND', /no alias 'stable'/);
    assert.deepEqual((await admin('GET', '/v1/models/pair/aliases')).body.aliases, []);
  });

  test('the OpenAPI document describes the alias routes with their bodies and answers', async () => {
    const document = (await call(gantry.baseUrl, 'GET', '/docs/json', undefined, {})).body;
    const aliasPath = document.paths['/v1/models/{model}/aliases/{alias}'];
    assert.ok(aliasPath?.put?.requestBody, 'PUT has a request body schema');
    assert.ok(aliasPath.put.responses['200'], 'PUT documents its answer');
    assert.ok(aliasPath.delete?.responses['204']);
    assert.ok(document.paths['/v1/models/{model}/aliases']?.get?.responses['200']);
    assert.ok(document.paths['/v1/models/{model}/versions/{version}'].delete.parameters.some((parameter: { name: string }) => parameter.name === 'force'));
  });

  test('bad names, bodies, versions and models: 400 or 404 naming what was wrong', async () => {
    for (const bad of ['Prod', '123', '-x', 'a'.repeat(64), 'has.dot']) {
      assertError(await admin('PUT', `/v1/models/pair/aliases/${bad}`, { version: '1' }), 400, 'INVALID_ARGUMENT', /Invalid alias/);
    }
    assertError(await admin('PUT', '/v1/models/pair/aliases/latest', { version: '1' }), 400, 'INVALID_ARGUMENT', /'latest' is reserved/);
    for (const body of [{}, { version: 'production' }, { version: '0' }, { version: 1.5 }, [1]]) {
      assertError(await admin('PUT', '/v1/models/pair/aliases/ok', body), 400, 'INVALID_ARGUMENT', /"version"/);
    }
    assertError(await admin('PUT', '/v1/models/pair/aliases/ok', { version: '99' }), 404, 'NOT_FOUND', /version '99' of model 'pair'/);
    assertError(await admin('PUT', '/v1/models/nothing-here/aliases/ok', { version: '1' }), 404, 'NOT_FOUND', /model 'nothing-here'/);
    assertError(await admin('GET', '/v1/models/nothing-here/aliases'), 404, 'NOT_FOUND', /model 'nothing-here'/);
    assertError(await admin('DELETE', '/v1/models/nothing-here/aliases/ok'), 404, 'NOT_FOUND', /model 'nothing-here'/);
    // Nothing was created by the refusals.
    assert.deepEqual((await admin('GET', '/v1/models/pair/aliases')).body.aliases, []);
  });

  test(`at most GANTRY_MAX_ALIASES_PER_MODEL (${maxAliases}) aliases: 409 past it, moving an existing one still works`, async () => {
    await uploadPair('crowded');
    for (let index = 0; index < maxAliases; index++) assert.equal((await admin('PUT', `/v1/models/crowded/aliases/a${index}`, { version: '1' })).status, 200);
    assertError(await admin('PUT', '/v1/models/crowded/aliases/one-more', { version: '1' }), 409, 'FAILED_PRECONDITION', /GANTRY_MAX_ALIASES_PER_MODEL/);
    assert.equal((await admin('PUT', '/v1/models/crowded/aliases/a0', { version: '2' })).status, 200);
    const metrics = await httpCall(gantry.baseUrl, 'GET', '/metrics', { headers: { authorization: `Bearer ${testAdminKey}` } });
    assert.match(metrics.text, /gantry_limit_rejections_total\{limit="aliases_per_model"\} [1-9]/);
    assert.equal((await admin('DELETE', '/v1/models/crowded')).status, 204);
  });

  test('scopes: a key without models:write reads aliases but cannot set or delete them (403)', async () => {
    assert.equal((await admin('PUT', '/v1/models/pair/aliases/scoped', { version: '1' })).status, 200);
    assert.equal((await as(keys.reader, 'GET', '/v1/models/pair/aliases')).status, 200);
    assertError(await as(keys.reader, 'PUT', '/v1/models/pair/aliases/scoped', { version: '2' }), 403, 'PERMISSION_DENIED', /models:write/);
    assertError(await as(keys.reader, 'DELETE', '/v1/models/pair/aliases/scoped'), 403, 'PERMISSION_DENIED', /models:write/);
    assert.equal((await admin('GET', '/v1/models/pair/aliases')).body.aliases[0].version, '1');
    assert.equal((await admin('DELETE', '/v1/models/pair/aliases/scoped')).status, 204);
  });

  test("tenants: another tenant's model is not found, and its aliases are its own", async () => {
    const uploaded = await httpCall(gantry.baseUrl, 'POST', '/v1/models/own/versions', {
      headers: { authorization: `Bearer ${keys.alpha}`, 'content-type': 'application/octet-stream' },
      body: await readFile(fixturePath('identity-float.onnx')),
    });
    assert.equal(uploaded.status, 201, uploaded.text);
    assert.equal((await as(keys.alpha, 'PUT', '/v1/models/own/aliases/production', { version: '1' })).status, 200);
    for (const [method, path, body] of [
      ['GET', '/v1/models/own/aliases', undefined],
      ['PUT', '/v1/models/own/aliases/production', { version: '1' }],
      ['DELETE', '/v1/models/own/aliases/production', undefined],
      ['PUT', '/v1/models/alpha~own/aliases/production', { version: '1' }],
      ['POST', '/v2/models/own/versions/production/infer', request],
    ] as const) {
      const reply = await as(keys.beta, method, path, body);
      assert.equal(reply.status, 404, `${method} ${path}: ${reply.text}`);
      // Only what beta wrote comes back: nothing of alpha's.
      if (!path.includes('alpha~')) assert.ok(!reply.text.includes('alpha'), reply.text);
    }
    // The admin sees alpha's alias under the qualified name; alpha's own infer follows it.
    assert.equal((await admin('GET', '/v1/models/alpha~own/aliases')).body.aliases[0].alias, 'production');
    const inferred = await as(keys.alpha, 'POST', '/v2/models/own/versions/production/infer', request);
    assert.equal(inferred.status, 200, inferred.text);
    assert.equal(inferred.body.model_version, '1');
    assert.equal(inferred.body.model_name, 'own');
  });

  test('REST: infer, metadata, readiness and config via an alias describe its version and answer with the concrete number', async () => {
    assert.equal((await admin('PUT', '/v1/models/pair/aliases/canary', { version: '2' })).status, 200);
    const viaAlias = await answer(gantry.baseUrl, 'pair', 'canary');
    assert.equal(viaAlias.status, 200, JSON.stringify(viaAlias.body));
    assert.equal(viaAlias.version, '2');
    assert.equal(viaAlias.first, 2);
    const metadata = await admin('GET', '/v2/models/pair/versions/canary');
    assert.equal(metadata.status, 200, metadata.text);
    // fixed-batch's static shape, not identity-float's dynamic one; the version list holds numbers only.
    assert.deepEqual(metadata.body.inputs[0].shape, [1, 4]);
    assert.deepEqual(metadata.body.versions, ['1', '2']);
    assert.equal((await admin('GET', '/v2/models/pair/versions/canary/ready')).status, 200);
    const config = await admin('GET', '/v2/models/pair/versions/canary/config');
    assert.equal(config.status, 200, config.text);
    assert.deepEqual(config.body.input[0].dims, [1, 4]);
    const stats = await admin('GET', '/v2/models/pair/versions/canary/stats');
    assert.equal(stats.status, 200, stats.text);
    assert.deepEqual(
      stats.body.model_stats.map((entry: { version: string }) => entry.version),
      ['2'],
      "an alias's statistics are its version's",
    );
    assertError(await admin('GET', '/v2/models/pair/versions/nope/stats'), 404, 'NOT_FOUND', /'nope'/);
    assertError(await admin('POST', '/v2/models/pair/versions/nope/infer', request), 404, 'NOT_FOUND', /no version or alias 'nope'/);
    assertError(await admin('GET', '/v2/models/pair/versions/nope'), 404, 'NOT_FOUND', /'nope'/);
    assertError(await admin('POST', '/v2/models/pair/versions/latest/infer', request), 400, 'INVALID_ARGUMENT', /'latest' is reserved/);
    assert.equal((await admin('DELETE', '/v1/models/pair/aliases/canary')).status, 204);
  });

  test('gRPC: model_version may name an alias; the answer names the concrete version', async () => {
    assert.equal((await admin('PUT', '/v1/models/pair/aliases/canary', { version: '2' })).status, 200);
    const inferRequest = (version: string) => ({
      model_name: 'pair',
      model_version: version,
      inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } }],
    });
    const options = { key: testAdminKey };
    const response = await unaryCall(inference, 'ModelInfer', inferRequest('canary'), options);
    assert.equal(response.model_version, '2');
    const metadata = await unaryCall(inference, 'ModelMetadata', { name: 'pair', version: 'canary' }, options);
    assert.deepEqual(metadata.inputs[0].shape.map(Number), [1, 4]);
    const failure = await unaryCall(inference, 'ModelInfer', inferRequest('nope'), options).then(
      () => assert.fail('an unknown alias must fail'),
      (error: GrpcFailure) => error,
    );
    assert.equal(failure.code, 5); // NOT_FOUND
    assert.match(failure.details, /no version or alias 'nope'/);
    assert.equal((await admin('DELETE', '/v1/models/pair/aliases/canary')).status, 204);
  });

  test('unpinned requests follow production, newest READY without it; readiness follows the same rule', async () => {
    assert.equal((await answer(gantry.baseUrl, 'pair')).version, '2');
    assert.equal((await admin('PUT', '/v1/models/pair/aliases/production', { version: '1' })).status, 200);
    const pinned = await answer(gantry.baseUrl, 'pair');
    assert.equal(pinned.version, '1');
    assert.equal(pinned.first, 1);
    // The metadata with no version named describes production's version (identity-float's dynamic shape).
    assert.deepEqual((await admin('GET', '/v2/models/pair')).body.inputs[0].shape, [-1, -1]);
    // A named version still wins over production.
    assert.equal((await answer(gantry.baseUrl, 'pair', '2')).version, '2');
    assert.equal((await admin('DELETE', '/v1/models/pair/aliases/production')).status, 204);
    assert.equal((await answer(gantry.baseUrl, 'pair')).version, '2');
  });

  test('production pinned to an unloaded version: unpinned requests get 503 naming the alias, never another version', async () => {
    await uploadPair('pinned');
    assert.equal((await admin('PUT', '/v1/models/pinned/aliases/production', { version: '1' })).status, 200);
    assert.equal((await admin('POST', '/v2/repository/models/pinned/unload', {})).status, 200);
    const refused = await admin('POST', '/v2/models/pinned/infer', request);
    assertError(refused, 503, 'UNAVAILABLE', /Alias 'production' of model 'pinned' points at version 1/);
    assert.notEqual((await admin('GET', '/v2/models/pinned/ready')).status, 200);
    // Its configuration can still be read, described by production's version (identity-float batches: dims [-1]).
    assert.deepEqual((await admin('GET', '/v2/models/pinned/config')).body.input[0].dims, [-1]);
    assert.equal((await admin('DELETE', '/v1/models/pinned')).status, 204);
  });

  test('a version an alias points at: DELETE is 409 naming the aliases; ?force=true deletes it and them', async () => {
    await uploadPair('guarded');
    for (const alias of ['production', 'rollback']) assert.equal((await admin('PUT', `/v1/models/guarded/aliases/${alias}`, { version: '1' })).status, 200);
    assertError(await admin('DELETE', '/v1/models/guarded/versions/1'), 409, 'FAILED_PRECONDITION', /'production', 'rollback'.*\?force=true/);
    assert.equal((await admin('GET', '/v1/models/guarded/versions/1')).status, 200);
    assert.equal((await admin('DELETE', '/v1/models/guarded/versions/1?force=true')).status, 204);
    assert.equal((await admin('GET', '/v1/models/guarded/versions/1')).status, 404);
    assert.deepEqual((await admin('GET', '/v1/models/guarded/aliases')).body.aliases, []);
    assert.equal((await answer(gantry.baseUrl, 'guarded')).version, '2');
  });

  test('deleting a model deletes its aliases: a new model of that name starts with none', async () => {
    await uploadPair('recycled');
    assert.equal((await admin('PUT', '/v1/models/recycled/aliases/production', { version: '1' })).status, 200);
    assert.equal((await admin('DELETE', '/v1/models/recycled')).status, 204);
    const redis = new Redis(gantry.redisUrl);
    try {
      assert.equal(await redis.exists(modelAliasesKey(gantry.prefix, 'recycled')), 0);
    } finally {
      redis.disconnect();
    }
    await uploadPair('recycled');
    assert.deepEqual((await admin('GET', '/v1/models/recycled/aliases')).body.aliases, []);
  });

  test('concurrent alias moves and version deletes leave no alias pointing at a missing version', async () => {
    await uploadPair('contended');
    for (let round = 0; round < 10; round++) {
      const uploaded = await uploadModel(gantry.baseUrl, 'contended', fixturePath('identity-float.onnx'), '?duplicate=true');
      assert.equal(uploaded.status, 201);
      const version = uploaded.body.version as string;
      const outcomes = await Promise.all([
        admin('PUT', '/v1/models/contended/aliases/moving', { version }),
        admin('DELETE', `/v1/models/contended/versions/${version}?force=true`, undefined, secondApi.baseUrl),
        admin('PUT', '/v1/models/contended/aliases/other', { version }, secondApi.baseUrl),
      ]);
      for (const outcome of outcomes) assert.ok([200, 204, 404].includes(outcome.status), outcome.text);
      const aliases = (await admin('GET', '/v1/models/contended/aliases')).body.aliases as Array<{ alias: string; version: string }>;
      for (const alias of aliases) {
        assert.equal((await admin('GET', `/v1/models/contended/versions/${alias.version}`)).status, 200, `round ${round}: ${alias.alias} → ${alias.version}`);
      }
    }
  });

  test('a delete without force racing an alias set and a traffic policy either refuses (409) or leaves nothing naming the version', async () => {
    await uploadPair('raced');
    const outcomes = { deleted: 0, refused: 0 };
    for (let round = 0; round < 20; round++) {
      const uploaded = await uploadModel(gantry.baseUrl, 'raced', fixturePath('identity-float.onnx'), '?duplicate=true');
      assert.equal(uploaded.status, 201);
      const version = uploaded.body.version as string;
      const [aliasSet, deleted, policySet] = await Promise.all([
        admin('PUT', '/v1/models/raced/aliases/racing', { version }),
        admin('DELETE', `/v1/models/raced/versions/${version}`, undefined, secondApi.baseUrl),
        admin(
          'PUT',
          '/v1/models/raced/traffic',
          {
            splits: [
              { version: '1', weight: 9 },
              { version, weight: 1 },
            ],
          },
          secondApi.baseUrl,
        ),
      ]);
      const exists = (await admin('GET', `/v1/models/raced/versions/${version}`)).status === 200;
      const aliases = (await admin('GET', '/v1/models/raced/aliases')).body.aliases as Array<{ alias: string; version: string }>;
      const policy = (await admin('GET', '/v1/models/raced/traffic')).body as { splits?: Array<{ version: string }> };
      const named = aliases.some((alias) => alias.version === version) || (policy.splits ?? []).some((split) => split.version === version);
      if (deleted.status === 204) {
        outcomes.deleted++;
        assert.equal(exists, false, `round ${round}`);
        assert.equal(named, false, `round ${round}: a deleted version is named (alias ${aliasSet.status}, policy ${policySet.status})`);
      } else {
        outcomes.refused++;
        assert.equal(deleted.status, 409, deleted.text);
        assert.equal(exists, true, `round ${round}`);
        assert.ok(named, `round ${round}: the delete was refused, so something names the version`);
      }
      // The next round starts with nothing naming a version.
      assert.ok([200, 204, 404].includes((await admin('DELETE', '/v1/models/raced/traffic')).status));
      assert.ok([204, 404].includes((await admin('DELETE', '/v1/models/raced/aliases/racing')).status));
    }
    assert.equal(outcomes.deleted + outcomes.refused, 20);
  });

  test('moving production reaches both API processes within 1 s, with no failed request during the move', async () => {
    await uploadPair('rollout');
    assert.equal((await admin('PUT', '/v1/models/rollout/aliases/production', { version: '1' })).status, 200);
    for (const base of [gantry.baseUrl, secondApi.baseUrl]) {
      await waitUntil(async () => (await answer(base, 'rollout')).version === '1', 5000, `${base} serving version 1`);
    }
    interface Answered {
      base: string;
      sentAt: number;
      status: number;
      version: string;
      first: number;
    }
    const answered: Answered[] = [];
    let running = true;
    const client = async (base: string) => {
      while (running) {
        const sentAt = Date.now();
        const reply = await answer(base, 'rollout');
        answered.push({ base, sentAt, status: reply.status, version: reply.version, first: reply.first });
      }
    };
    const clients = [gantry.baseUrl, secondApi.baseUrl, gantry.baseUrl, secondApi.baseUrl].map(client);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const move = await admin('PUT', '/v1/models/rollout/aliases/production', { version: '2' });
    const moved = Date.now();
    assert.equal(move.status, 200, move.text);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    running = false;
    await Promise.all(clients);

    const failed = answered.filter((reply) => reply.status !== 200);
    assert.deepEqual(failed.slice(0, 3), [], `${failed.length} of ${answered.length} requests failed during the move`);
    for (const reply of answered) assert.equal(reply.first, Number(reply.version), 'each answer comes from the version it names');
    for (const base of [gantry.baseUrl, secondApi.baseUrl]) {
      const late = answered.filter((reply) => reply.base === base && reply.sentAt >= moved + 1000);
      assert.ok(late.length > 0, `${base} answered requests sent a second after the move`);
      assert.deepEqual(
        late.filter((reply) => reply.version !== '2').map((reply) => reply.sentAt - moved),
        [],
        `${base}: requests sent ≥ 1 s after the move answered by version 1 (ms after the move)`,
      );
      assert.ok(
        answered.some((reply) => reply.base === base && reply.sentAt < moved && reply.version === '1'),
        `${base} served version 1 before the move`,
      );
    }
  });

  test('a change whose event was lost still reaches every API process (the cache expires)', async () => {
    await uploadPair('quiet');
    for (const base of [gantry.baseUrl, secondApi.baseUrl]) assert.equal((await answer(base, 'quiet')).version, '2');
    // Written behind the API's back: no registry event announces it.
    const redis = new Redis(gantry.redisUrl);
    try {
      await redis.hset(modelAliasesKey(gantry.prefix, 'quiet'), 'production', JSON.stringify({ version: '1', updatedAt: new Date().toISOString() }));
    } finally {
      redis.disconnect();
    }
    for (const base of [gantry.baseUrl, secondApi.baseUrl]) {
      await waitUntil(async () => (await answer(base, 'quiet')).version === '1', 10_000, `${base} following the unannounced alias`);
    }
  });
});
