/**
 * Traffic splits (issue 14) against real processes (a `gantry start` plus a second `gantry api` on the same Redis
 * prefix, real onnxruntime): the traffic routes (validation, 404s, scopes, tenants, deletes guarded by a policy),
 * a 95/5 canary over 10,000 requests, sticky splits by header (REST and gRPC) and by API key, a split version
 * unloaded, and a change reaching both API processes within a second.
 *
 * Each model has two versions with one input signature and different answers: version 1 is identity-float
 * (y = x), version 2 fixed-batch (y = 2x), so every answer shows which version computed it.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { Redis } from 'ioredis';
import { fixturePath, testAdminKey, withAdminKey, type GantryProcess } from '../helpers/gantry-process.js';
import { keyMetadata, unaryCall, type GrpcClient } from '../helpers/grpc-client.js';
import { httpCall } from '../helpers/http.js';
import { ModelLifecycle } from '../../src/registry/model-lifecycle.js';
import { modelTrafficKey } from '../../src/redis-keys.js';
import { assertError, call, waitUntil } from './support.js';
import { pairRequest, startTwoApiDeployment, type TwoApiDeployment } from '../helpers/two-api-deployment.js';

const request = pairRequest;

describe('traffic splits', { timeout: 240_000 }, () => {
  let deployment: TwoApiDeployment;
  let gantry: GantryProcess;
  let secondApi: GantryProcess;
  let inference: GrpcClient;
  let keys: TwoApiDeployment['keys'];

  const admin = (...args: Parameters<TwoApiDeployment['admin']>) => deployment.admin(...args);
  const as = (...args: Parameters<TwoApiDeployment['as']>) => deployment.as(...args);
  const uploadPair = (name: string) => deployment.uploadPair(name);

  /** Which version answered an unpinned request, checked against what it computed (y = x: 1, y = 2x: 2). */
  async function servedBy(model: string, headers: Record<string, string> = withAdminKey(), base = gantry.baseUrl): Promise<string> {
    const reply = await call(base, 'POST', `/v2/models/${model}/infer`, request, headers);
    assert.equal(reply.status, 200, reply.text);
    const version = reply.body.model_version as string;
    assert.equal(reply.body.outputs[0].data[0], Number(version), 'the answer comes from the version it names');
    return version;
  }

  /** Runs `total` calls of `run`, `concurrency` at a time. */
  async function inParallel(total: number, concurrency: number, run: (index: number) => Promise<void>): Promise<void> {
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < total) await run(next++);
      }),
    );
  }

  before(async () => {
    deployment = await startTwoApiDeployment();
    ({ gantry, secondApi, inference, keys } = deployment);
  });
  after(async () => {
    await deployment?.close();
  });

  test('PUT answers the policy (versions as strings, the header lower-cased); GET shows it ({} without one); DELETE 204', async () => {
    assert.deepEqual((await admin('GET', '/v1/models/pair/traffic')).body, {});
    const put = await admin('PUT', '/v1/models/pair/traffic', {
      splits: [
        { version: 1, weight: 3 },
        { version: '2', weight: 1 },
      ],
      stickyBy: 'header:X-User-Id',
    });
    assert.equal(put.status, 200, put.text);
    assert.deepEqual(put.body.splits, [
      { version: '1', weight: 3 },
      { version: '2', weight: 1 },
    ]);
    assert.equal(put.body.stickyBy, 'header:x-user-id');
    assert.equal(put.body.shadow, null);
    assert.ok(!Number.isNaN(Date.parse(put.body.updatedAt)));
    const got = await admin('GET', '/v1/models/pair/traffic');
    assert.deepEqual(got.body, put.body);
    assert.equal((await admin('DELETE', '/v1/models/pair/traffic')).status, 204);
    assert.deepEqual((await admin('GET', '/v1/models/pair/traffic')).body, {});
    // Deleting no policy of an existing model is still 204: the model ends with none either way.
    assert.equal((await admin('DELETE', '/v1/models/pair/traffic')).status, 204);
  });

  test('the OpenAPI document describes the traffic routes', async () => {
    const document = (await call(gantry.baseUrl, 'GET', '/docs/json', undefined, {})).body;
    const path = document.paths['/v1/models/{model}/traffic'];
    assert.ok(path?.put?.requestBody, 'PUT has a request body schema');
    assert.ok(path.put.responses['200']);
    assert.ok(path.get?.responses['200']);
    assert.ok(path.delete?.responses['204']);
  });

  test('bad bodies, unknown versions and models: 400 or 404 naming what was wrong, nothing stored', async () => {
    const bad: Array<[unknown, RegExp]> = [
      [{ splits: [{ version: 'production', weight: 1 }] }, /splits\.0\.version: must be an existing version number/],
      [{ splits: [{ version: '1', weight: 0 }] }, /splits\.0\.weight: must be at least 1/],
      [{ splits: [{ version: '1', weight: 1.5 }] }, /splits\.0\.weight: must be a whole number/],
      [
        {
          splits: [
            { version: '1', weight: 1 },
            { version: 1, weight: 2 },
          ],
        },
        /splits: must name each version once/,
      ],
      [{ splits: Array.from({ length: 17 }, (_, index) => ({ version: String(index + 1), weight: 1 })) }, /splits: must have at most 16 entries/],
      [{ stickyBy: 'cookie-jar' }, /stickyBy: must be "key", "header:<name>"/],
      [{ stickyBy: 'header:has space' }, /stickyBy: must be "key", "header:<name>"/],
      [{ stickyBy: 'header:Authorization' }, /stickyBy: must not name a header that carries credentials/],
      [{ shadow: { version: '2', percent: 101 } }, /shadow\.percent: must be from 0 to 100/],
      [{ splitz: [] }, /splitz/],
    ];
    for (const [body, message] of bad) assertError(await admin('PUT', '/v1/models/pair/traffic', body), 400, 'INVALID_ARGUMENT', message);
    assertError(
      await admin('PUT', '/v1/models/pair/traffic', {
        splits: [
          { version: '1', weight: 1 },
          { version: '99', weight: 1 },
        ],
      }),
      404,
      'NOT_FOUND',
      /version '99' of model 'pair'/,
    );
    assertError(await admin('PUT', '/v1/models/pair/traffic', { shadow: { version: '98', percent: 5 } }), 404, 'NOT_FOUND', /version '98'/);
    for (const method of ['GET', 'PUT', 'DELETE']) {
      const body = method === 'PUT' ? { splits: [{ version: '1', weight: 1 }] } : undefined;
      assertError(await admin(method, '/v1/models/nothing-here/traffic', body), 404, 'NOT_FOUND', /model 'nothing-here'/);
    }
    assert.deepEqual((await admin('GET', '/v1/models/pair/traffic')).body, {});
  });

  test("scopes and tenants: a reader cannot set a policy (403); another tenant's model is not found", async () => {
    assert.equal((await as(keys.reader, 'GET', '/v1/models/pair/traffic')).status, 200);
    const split = { splits: [{ version: '1', weight: 1 }] };
    assertError(await as(keys.reader, 'PUT', '/v1/models/pair/traffic', split), 403, 'PERMISSION_DENIED', /models:write/);
    assertError(await as(keys.reader, 'DELETE', '/v1/models/pair/traffic'), 403, 'PERMISSION_DENIED', /models:write/);
    const uploaded = await httpCall(gantry.baseUrl, 'POST', '/v1/models/own/versions', {
      headers: { authorization: `Bearer ${keys.alpha}`, 'content-type': 'application/octet-stream' },
      body: await readFile(fixturePath('identity-float.onnx')),
    });
    assert.equal(uploaded.status, 201, uploaded.text);
    assert.equal((await as(keys.alpha, 'PUT', '/v1/models/own/traffic', split)).status, 200);
    for (const [method, path] of [
      ['GET', '/v1/models/own/traffic'],
      ['PUT', '/v1/models/own/traffic'],
      ['DELETE', '/v1/models/own/traffic'],
      ['PUT', '/v1/models/alpha~own/traffic'],
    ] as const) {
      const reply = await as(keys.beta, method, path, method === 'PUT' ? split : undefined);
      assert.equal(reply.status, 404, `${method} ${path}: ${reply.text}`);
    }
    assert.equal((await admin('GET', '/v1/models/alpha~own/traffic')).body.splits[0].version, '1');
  });

  test('a canary at 5% receives 5% ± 1% of 10,000 requests, over both API processes; the metrics show the split', async () => {
    await uploadPair('canary');
    const put = await admin('PUT', '/v1/models/canary/traffic', {
      splits: [
        { version: '1', weight: 95 },
        { version: '2', weight: 5 },
      ],
    });
    assert.equal(put.status, 200, put.text);
    const counts = new Map<string, number>();
    await inParallel(10_000, 32, async (index) => {
      const version = await servedBy('canary', withAdminKey(), index % 2 === 0 ? gantry.baseUrl : secondApi.baseUrl);
      counts.set(version, (counts.get(version) ?? 0) + 1);
    });
    const canaryShare = (counts.get('2') ?? 0) / 10_000;
    assert.equal((counts.get('1') ?? 0) + (counts.get('2') ?? 0), 10_000);
    assert.ok(canaryShare >= 0.04 && canaryShare <= 0.06, `the canary served ${(canaryShare * 100).toFixed(2)}% of 10,000 requests`);
    // Inference metrics are labelled by the version that served: the split shows there as it did in the answers.
    const metrics = await httpCall(gantry.baseUrl, 'GET', '/metrics', { headers: { authorization: `Bearer ${testAdminKey}` } });
    const served = (version: string) => {
      const line = metrics.text
        .split('\n')
        .find(
          (entry) =>
            entry.startsWith('gantry_inference_requests_total{') &&
            entry.includes('model="canary"') &&
            entry.includes(`version="${version}"`) &&
            entry.includes('outcome="success"'),
        );
      return line === undefined ? 0 : Number(line.split(' ').at(-1));
    };
    assert.ok(served('2') > 0 && served('1') > 10 * served('2'), `metrics: version 1 ${served('1')}, version 2 ${served('2')} on the first process`);
  });

  test('sticky by header: 200 users × 5 requests, each user always on one version, both versions used; no header draws at random', async () => {
    await uploadPair('sticky');
    const put = await admin('PUT', '/v1/models/sticky/traffic', {
      splits: [
        { version: '1', weight: 1 },
        { version: '2', weight: 1 },
      ],
      stickyBy: 'header:x-user-id',
    });
    assert.equal(put.status, 200, put.text);
    const seen = new Map<string, Set<string>>();
    await inParallel(1000, 32, async (index) => {
      const user = `user-${index % 200}`;
      const base = index % 2 === 0 ? gantry.baseUrl : secondApi.baseUrl;
      const version = await servedBy('sticky', { ...withAdminKey(), 'x-user-id': user }, base);
      seen.set(user, (seen.get(user) ?? new Set()).add(version));
    });
    assert.equal(seen.size, 200);
    const switching = [...seen].filter(([, versions]) => versions.size > 1).map(([user]) => user);
    assert.deepEqual(switching, [], 'users served by more than one version');
    const onTwo = [...seen.values()].filter((versions) => versions.has('2')).length;
    assert.ok(onTwo > 50 && onTwo < 150, `${onTwo} of 200 users on version 2 at weights 1:1`);
    // gRPC metadata is the header there: the same user lands on the same version as over REST.
    const user = [...seen.keys()][0]!;
    const grpcRequest = { model_name: 'sticky', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } }] };
    const metadata = keyMetadata(testAdminKey);
    metadata.set('x-user-id', user);
    const viaGrpc = await unaryCall(inference, 'ModelInfer', grpcRequest, { metadata });
    assert.equal(viaGrpc.model_version, [...seen.get(user)!][0]);
    // Without the header each request draws anew: both versions answer.
    const unsticky = new Set<string>();
    for (let index = 0; index < 60 && unsticky.size < 2; index++) unsticky.add(await servedBy('sticky'));
    assert.equal(unsticky.size, 2, 'requests without the sticky header are spread over both versions');
  });

  test('sticky by key: each API key stays on one version', async () => {
    await uploadPair('by-key');
    const put = await admin('PUT', '/v1/models/by-key/traffic', {
      splits: [
        { version: '1', weight: 1 },
        { version: '2', weight: 1 },
      ],
      stickyBy: 'key',
    });
    assert.equal(put.status, 200, put.text);
    const perKey = new Map<string, Set<string>>();
    for (let index = 0; index < 16; index++) {
      const reply = await admin('POST', '/v1/keys', { name: `sticky-${index}`, scopes: ['infer'] });
      assert.equal(reply.status, 201, reply.text);
      const key = reply.body.key as string;
      const versions = new Set<string>();
      for (let repeat = 0; repeat < 5; repeat++) versions.add(await servedBy('by-key', { authorization: `Bearer ${key}` }));
      perKey.set(key, versions);
    }
    for (const versions of perKey.values()) assert.equal(versions.size, 1, 'a key served by more than one version');
  });

  test('a split version unloaded: all traffic on the other; both unloaded: 503 naming the split', async () => {
    await uploadPair('half');
    const put = await admin('PUT', '/v1/models/half/traffic', {
      splits: [
        { version: '1', weight: 50 },
        { version: '2', weight: 50 },
      ],
    });
    assert.equal(put.status, 200, put.text);
    // One version made UNAVAILABLE the way a fault at run time makes it (the repository unload takes every version).
    const redis = new Redis(gantry.redisUrl);
    try {
      assert.equal(await new ModelLifecycle(redis, gantry.prefix).markUnavailable('half', '2', 'unloaded by the test'), true);
    } finally {
      redis.disconnect();
    }
    await waitUntil(async () => (await admin('GET', '/v1/models/half/versions/2')).body.state === 'UNAVAILABLE', 5000, 'version 2 unloaded');
    for (let index = 0; index < 50; index++) assert.equal(await servedBy('half'), '1');
    assert.equal((await admin('POST', '/v2/repository/models/half/unload', {})).status, 200);
    assertError(await admin('POST', '/v2/models/half/infer', request), 503, 'UNAVAILABLE', /splits its traffic over \(1, 2\)/);
  });

  test('a named version or alias is never split; a split overrides production', async () => {
    await uploadPair('named');
    assert.equal((await admin('PUT', '/v1/models/named/aliases/production', { version: '1' })).status, 200);
    assert.equal((await admin('PUT', '/v1/models/named/traffic', { splits: [{ version: '2', weight: 1 }] })).status, 200);
    assert.equal(await servedBy('named'), '2');
    for (let index = 0; index < 20; index++) {
      assert.equal((await admin('POST', '/v2/models/named/versions/1/infer', request)).body.model_version, '1');
      assert.equal((await admin('POST', '/v2/models/named/versions/production/infer', request)).body.model_version, '1');
    }
    // The metadata of the model describes the split's version (fixed-batch's static shape).
    assert.deepEqual((await admin('GET', '/v2/models/named')).body.inputs[0].shape, [1, 4]);
    // So does its configuration (not production's version, which the split overrides).
    const config = await admin('GET', '/v2/models/named/config');
    assert.equal(config.status, 200, config.text);
    assert.deepEqual(config.body.input[0].dims, [1, 4]);
    assert.equal(config.body.max_batch_size, 0);
  });

  test('a version the policy names: DELETE is 409; ?force=true deletes it and leaves the policy; deleting the model deletes it', async () => {
    await uploadPair('guarded');
    assert.equal(
      (await admin('PUT', '/v1/models/guarded/traffic', { splits: [{ version: '2', weight: 1 }], shadow: { version: '1', percent: 0 } })).status,
      200,
    );
    for (const version of ['1', '2']) {
      assertError(await admin('DELETE', `/v1/models/guarded/versions/${version}`), 409, 'FAILED_PRECONDITION', /traffic policy.*\?force=true/);
    }
    assert.equal((await admin('DELETE', '/v1/models/guarded/versions/2?force=true')).status, 204);
    assert.equal((await admin('GET', '/v1/models/guarded/traffic')).body.splits[0].version, '2');
    assertError(await admin('POST', '/v2/models/guarded/infer', request), 503, 'UNAVAILABLE', /splits its traffic over \(2\)/);
    assert.equal((await admin('DELETE', '/v1/models/guarded')).status, 204);
    const redis = new Redis(gantry.redisUrl);
    try {
      assert.equal(await redis.exists(modelTrafficKey(gantry.prefix, 'guarded')), 0);
    } finally {
      redis.disconnect();
    }
  });

  test('a change reaches both API processes within 1 s, with no failed request', async () => {
    await uploadPair('rollout');
    assert.equal((await admin('PUT', '/v1/models/rollout/traffic', { splits: [{ version: '1', weight: 1 }] })).status, 200);
    for (const base of [gantry.baseUrl, secondApi.baseUrl]) {
      await waitUntil(async () => (await servedBy('rollout', withAdminKey(), base)) === '1', 5000, `${base} serving version 1`);
    }
    const answered: Array<{ base: string; sentAt: number; version: string }> = [];
    let running = true;
    const client = async (base: string) => {
      while (running) {
        const sentAt = Date.now();
        answered.push({ base, sentAt, version: await servedBy('rollout', withAdminKey(), base) });
      }
    };
    const clients = [gantry.baseUrl, secondApi.baseUrl, gantry.baseUrl, secondApi.baseUrl].map(client);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal((await admin('PUT', '/v1/models/rollout/traffic', { splits: [{ version: '2', weight: 1 }] })).status, 200);
    const moved = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 1500));
    running = false;
    await Promise.all(clients);
    for (const base of [gantry.baseUrl, secondApi.baseUrl]) {
      const late = answered.filter((reply) => reply.base === base && reply.sentAt >= moved + 1000);
      assert.ok(late.length > 0, `${base} answered requests sent a second after the change`);
      assert.deepEqual(
        late.filter((reply) => reply.version !== '2').map((reply) => reply.sentAt - moved),
        [],
        `${base}: requests sent ≥ 1 s after the change answered by version 1 (ms after it)`,
      );
    }
  });
});
