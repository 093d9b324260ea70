/**
 * A worker that cannot get a Redis connection for a model's queue (Redis at maxclients) answers that model's
 * queued callers 503 and logs why, instead of leaving them to their timeout; once connections are free again the
 * model answers (issue 11).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { fixturePath, inferJson, startGantry, uploadModel, type GantryProcess } from '../helpers/gantry-process.js';
import { startPrivateRedis, sleep, type PrivateRedis } from '../helpers/reliability-harness.js';

const request = { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] };

describe('Redis refusing new connections', { timeout: 120_000 }, () => {
  let redis: PrivateRedis;
  let gantry: GantryProcess;
  let probe: Redis;

  before(async () => {
    redis = await startPrivateRedis();
    gantry = await startGantry({ command: 'start', redisUrl: redis.url, env: { GANTRY_INFER_TIMEOUT_MS: '60000' } });
    probe = new Redis(redis.url);
  });

  after(async () => {
    probe?.disconnect();
    await gantry?.cleanup();
    await redis?.cleanup();
  });

  test('a model whose queue cannot be consumed is answered 503 at once, and answers again once Redis has room', async () => {
    const upload = await uploadModel(gantry.baseUrl, 'crowded', fixturePath('identity-float.onnx'));
    assert.equal(upload.status, 201, JSON.stringify(upload.body));
    // Every slot taken by the connections open now: the worker's next one (for this model's queue) is refused.
    const clients = ((await probe.client('LIST')) as string).trim().split('\n').length;
    await probe.config('SET', 'maxclients', String(clients));
    try {
      const started = Date.now();
      const refused = await inferJson(gantry.baseUrl, 'crowded', request);
      const waitedMs = Date.now() - started;
      assert.equal(refused.status, 503, JSON.stringify(refused.body));
      assert.match(refused.body.error, /Redis connection/);
      assert.ok(waitedMs < 30_000, `answered after ${waitedMs} ms, well before the 60 s timeout`);
      assert.match(gantry.output(), /could not get a Redis connection/);
    } finally {
      await probe.config('SET', 'maxclients', '10000');
    }
    let reply = await inferJson(gantry.baseUrl, 'crowded', request);
    for (let attempt = 0; attempt < 40 && reply.status !== 200; attempt++) {
      await sleep(500);
      reply = await inferJson(gantry.baseUrl, 'crowded', request);
    }
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    assert.deepEqual(reply.body.outputs[0].data, [1, 2, 3, 4]);
  });
});
