/**
 * Idempotent uploads: the file of a version a model has already answers with that version (200, `existing`) instead
 * of making another, unless ?duplicate=true; concurrent identical uploads make one version; and
 * PUT /v1/models/{m}/versions/{v} chooses the number of a new version.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Redis } from 'ioredis';
import { fixturePath, startGantry, uploadModel, withAdminKey, type GantryProcess } from '../helpers/gantry-process.js';
import { httpCall, type HttpReply } from '../helpers/http.js';
import { blobPendingKey, blobReferencesKey, unreferencedBlobsKey } from '../../src/redis-keys.js';
import { assertError, blobDirectory, call, sha256OfFile, waitUntil } from './support.js';

/** GANTRY_BLOB_GC_GRACE_MS for this file's gantry: short, so collections are seen to leave used files alone. */
const graceMs = 1000;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe('idempotent uploads', { timeout: 180_000 }, () => {
  let gantry: GantryProcess;
  let redis: Redis;
  const blobPath = (sha256: string) => path.join(blobDirectory(gantry.dataDirectory), sha256);

  /** Uploads a fixture with PUT (a chosen number) or POST, as the admin unless `headers` say otherwise. */
  async function send(method: 'POST' | 'PUT', urlPath: string, fixture: string, headers: Record<string, string> = withAdminKey()): Promise<HttpReply> {
    return httpCall(gantry.baseUrl, method, urlPath, {
      headers: { ...headers, 'content-type': 'application/octet-stream' },
      body: await readFile(fixturePath(fixture)),
    });
  }

  async function versionNumbers(model: string): Promise<string[]> {
    const reply = await call(gantry.baseUrl, 'GET', `/v1/models/${model}`);
    return reply.status === 404 ? [] : reply.body.versions.map((version: { version: string }) => version.version);
  }

  /** No upload's pending reference on the blob is left behind (each either became a version's or was dropped). */
  async function assertNoPendingReference(sha256: string): Promise<void> {
    assert.equal(await redis.zcard(blobPendingKey(gantry.prefix, sha256)), 0, 'no pending upload reference is left on the blob');
  }

  before(async () => {
    gantry = await startGantry({ env: { GANTRY_BLOB_GC_GRACE_MS: String(graceMs), GANTRY_BLOB_GC_INTERVAL_MS: '100' } });
    redis = new Redis(gantry.redisUrl);
  });
  after(async () => {
    redis?.disconnect();
    await gantry?.cleanup();
  });

  test('the same bytes twice: 200 with the existing version and one version; ?duplicate=true makes another', async () => {
    const file = fixturePath('tiny-mlp.onnx');
    const sha256 = await sha256OfFile(file);
    const first = await uploadModel(gantry.baseUrl, 'same', file);
    assert.equal(first.status, 201, JSON.stringify(first.body));
    assert.equal(first.body.existing, undefined, 'a created version is not "existing"');

    const again = await uploadModel(gantry.baseUrl, 'same', file);
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal(again.body.existing, true);
    assert.equal(again.body.version, '1');
    assert.equal(again.body.sha256, sha256);
    assert.equal(again.body.state, 'READY');
    assert.deepEqual(again.body.inputs, first.body.inputs, 'the answer is the full version record');
    assert.deepEqual(await versionNumbers('same'), ['1']);
    await assertNoPendingReference(sha256);

    const duplicate = await uploadModel(gantry.baseUrl, 'same', file, '?duplicate=true');
    assert.equal(duplicate.status, 201, JSON.stringify(duplicate.body));
    assert.equal(duplicate.body.version, '2');
    assert.deepEqual(await versionNumbers('same'), ['1', '2']);

    const different = await uploadModel(gantry.baseUrl, 'same', fixturePath('fixed-batch.onnx'));
    assert.equal(different.status, 201, JSON.stringify(different.body));
    assert.equal(different.body.version, '3');

    // With two versions of the bytes, deleting the first leaves the second to answer for them.
    assert.equal((await call(gantry.baseUrl, 'DELETE', '/v1/models/same/versions/1')).status, 204);
    const afterDelete = await uploadModel(gantry.baseUrl, 'same', file);
    assert.equal(afterDelete.status, 200, JSON.stringify(afterDelete.body));
    assert.equal(afterDelete.body.version, '2');
    assert.deepEqual(await versionNumbers('same'), ['2', '3']);
    await assertNoPendingReference(sha256);
  });

  test('an unloaded version is still the existing one (UNAVAILABLE: load it again), and ?wait=false answers the same', async () => {
    const file = fixturePath('identity-float.onnx');
    assert.equal((await uploadModel(gantry.baseUrl, 'unloaded', file)).status, 201);
    assert.equal((await call(gantry.baseUrl, 'POST', '/v2/repository/models/unloaded/unload', {})).status, 200);
    const again = await uploadModel(gantry.baseUrl, 'unloaded', file, '?wait=false');
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal(again.body.existing, true);
    assert.equal(again.body.version, '1');
    assert.equal(again.body.state, 'UNAVAILABLE');
    assert.deepEqual(await versionNumbers('unloaded'), ['1']);
  });

  test('20 concurrent identical uploads make exactly one version, and every answer names it', async () => {
    const file = fixturePath('multi-io.onnx');
    const sha256 = await sha256OfFile(file);
    const replies = await Promise.all(Array.from({ length: 20 }, () => uploadModel(gantry.baseUrl, 'crowd', file)));
    const statuses = replies.map((reply) => reply.status).sort();
    assert.deepEqual(statuses, [200, ...Array<number>(18).fill(200), 201].sort(), JSON.stringify(replies.map((reply) => reply.body)));
    for (const reply of replies) assert.equal(reply.body.version, '1', JSON.stringify(reply.body));
    // Each identical upload waited for the version's load, as the one that created it did.
    for (const reply of replies) assert.equal(reply.body.state, 'READY', JSON.stringify(reply.body));
    for (const reply of replies.filter((candidate) => candidate.status === 200)) assert.equal(reply.body.existing, true);
    assert.deepEqual(await versionNumbers('crowd'), ['1']);
    assert.deepEqual(await redis.smembers(blobReferencesKey(gantry.prefix, sha256)), ['crowd/1'], 'one version references the blob');
    await assertNoPendingReference(sha256);
  });

  test('concurrent identical uploads of a file that fails its load are each told why (422); no answer names a version that vanished', async () => {
    const file = fixturePath('random-bytes.onnx');
    for (let round = 0; round < 3; round++) {
      const model = `refused-${round}`;
      const replies = await Promise.all(Array.from({ length: 5 }, () => uploadModel(gantry.baseUrl, model, file)));
      for (const reply of replies) {
        assertError({ ...reply, headers: new Headers() }, 422, 'INVALID_MODEL', /not a loadable ONNX model: \S.{3,}/);
      }
      assert.deepEqual(await versionNumbers(model), [], 'no version is left');
      await assertNoPendingReference(await sha256OfFile(file));
    }
  });

  test('after the version is deleted the same bytes make a new version, and its file stays through collections', async () => {
    const file = fixturePath('identity-int32.onnx');
    const sha256 = await sha256OfFile(file);
    assert.equal((await uploadModel(gantry.baseUrl, 'again', file)).status, 201);
    assert.equal((await call(gantry.baseUrl, 'DELETE', '/v1/models/again/versions/1')).status, 204);

    const recreated = await uploadModel(gantry.baseUrl, 'again', file);
    assert.equal(recreated.status, 201, JSON.stringify(recreated.body));
    assert.equal(recreated.body.version, '2', 'the deleted version keeps its number');
    assert.equal(recreated.body.existing, undefined);
    assert.equal(await redis.zscore(unreferencedBlobsKey(gantry.prefix), sha256), null, 'the blob is referenced again: no grace period runs');

    // Several collection passes past the grace period: the file of a live version stays.
    await sleep(graceMs + 500);
    assert.ok(existsSync(blobPath(sha256)), 'the file of the re-created version is kept');
    const answer = await call(gantry.baseUrl, 'POST', '/v2/models/again/infer', {
      inputs: [{ name: 'input', datatype: 'INT32', shape: [1, 2], data: [7, -3] }],
    });
    assert.equal(answer.status, 200, answer.text);
    assert.deepEqual(answer.body.outputs[0].data, [7, -3]);

    // A re-upload now answers with version 2, and the file still goes once no version uses it.
    const existing = await uploadModel(gantry.baseUrl, 'again', file);
    assert.deepEqual([existing.status, existing.body.version], [200, '2']);
    await assertNoPendingReference(sha256);
    assert.equal((await call(gantry.baseUrl, 'DELETE', '/v1/models/again')).status, 204);
    await waitUntil(async () => !existsSync(blobPath(sha256)), graceMs + 5000, 'the file to go once no version uses it');
  });

  test('PUT with a chosen number: 201; 409 when taken, passed or deleted; 400 for a bad number; POST continues after it', async () => {
    const created = await send('PUT', '/v1/models/chosen/versions/5', 'identity-float.onnx');
    assert.equal(created.status, 201, created.text);
    assert.equal(created.body.version, '5');
    assert.equal(created.body.state, 'READY');

    const taken = await send('PUT', '/v1/models/chosen/versions/5', 'tiny-mlp.onnx');
    assertError(taken, 409, 'ALREADY_EXISTS', /Version 5 of model 'chosen' cannot be created: the model has had versions up to 5/);
    assertError(await send('PUT', '/v1/models/chosen/versions/3', 'tiny-mlp.onnx'), 409, 'ALREADY_EXISTS', /Choose a number above 5/);
    for (const bad of ['0', 'abc', '01', '1000000000', 'production']) {
      assertError(await send('PUT', `/v1/models/chosen/versions/${bad}`, 'tiny-mlp.onnx'), 400, 'INVALID_ARGUMENT', /a chosen version is a positive integer/);
    }

    const next = await send('POST', '/v1/models/chosen/versions', 'tiny-mlp.onnx');
    assert.equal(next.status, 201, next.text);
    assert.equal(next.body.version, '6', 'POST continues after the chosen number');
    assert.equal((await call(gantry.baseUrl, 'DELETE', '/v1/models/chosen/versions/6')).status, 204);
    assertError(await send('PUT', '/v1/models/chosen/versions/6', 'fixed-batch.onnx'), 409, 'ALREADY_EXISTS', /deleted versions keep their numbers/);

    // The same bytes: PUT of their own number is idempotent; another number names the version that has them.
    const same = await send('PUT', '/v1/models/chosen/versions/5', 'identity-float.onnx');
    assert.equal(same.status, 200, same.text);
    assert.deepEqual([same.body.version, same.body.existing], ['5', true]);
    assertError(await send('PUT', '/v1/models/chosen/versions/9', 'identity-float.onnx'), 409, 'ALREADY_EXISTS', /version 5 holds the same file/);
    const duplicated = await send('PUT', '/v1/models/chosen/versions/9?duplicate=true', 'identity-float.onnx');
    assert.equal(duplicated.status, 201, duplicated.text);
    assert.equal(duplicated.body.version, '9');
    assert.deepEqual(await versionNumbers('chosen'), ['5', '9']);
    await assertNoPendingReference(await sha256OfFile(fixturePath('identity-float.onnx')));
    await assertNoPendingReference(await sha256OfFile(fixturePath('tiny-mlp.onnx')));
  });

  test("another tenant's identical bytes are a new version of its own model", async () => {
    for (const id of ['idem-a', 'idem-b']) assert.equal((await call(gantry.baseUrl, 'POST', '/v1/tenants', { id })).status, 201, id);
    const keyOf = async (tenant: string) => {
      const created = await call(gantry.baseUrl, 'POST', '/v1/keys', { tenant, name: 'uploads', scopes: ['models:read', 'models:write', 'infer'] });
      assert.equal(created.status, 201, created.text);
      return { authorization: `Bearer ${created.body.key}` };
    };
    const a = await keyOf('idem-a');
    const b = await keyOf('idem-b');
    const fromA = await send('POST', '/v1/models/twin/versions', 'tiny-mlp.onnx', a);
    assert.equal(fromA.status, 201, fromA.text);
    const fromB = await send('POST', '/v1/models/twin/versions', 'tiny-mlp.onnx', b);
    assert.equal(fromB.status, 201, fromB.text);
    assert.equal(fromB.body.existing, undefined, "B's upload is not answered by A's version");
    assert.equal(fromB.body.version, '1');
    const againFromB = await send('POST', '/v1/models/twin/versions', 'tiny-mlp.onnx', b);
    assert.deepEqual([againFromB.status, againFromB.body.version, againFromB.body.existing], [200, '1', true]);
    const models = await call(gantry.baseUrl, 'GET', '/v1/models');
    const twins = models.body.models.filter((model: { name: string }) => model.name.endsWith('twin'));
    assert.deepEqual(twins.map((model: { name: string; versions: unknown[] }) => [model.name, model.versions.length]).sort(), [
      ['idem-a~twin', 1],
      ['idem-b~twin', 1],
    ]);
  });
});
