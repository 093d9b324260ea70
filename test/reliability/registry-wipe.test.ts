/**
 * Issue 11, registry loss: a Redis without persistence restarts empty under a running API. The loss is never
 * silent: the API logs an error, readiness answers 503 with the reason and the metrics show it; the registry comes
 * back from the model store with the same versions, which answer as before; version numbers go on after the
 * highest the store knows (never reused, a deleted latest version included). `gantry repair`, run as a process,
 * restores a registry wiped while the API was down.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { cliPath, fixturePath, freePort, startGantry, uploadModel, type GantryProcess } from '../helpers/gantry-process.js';
import { Cleanup, describeReply, mlpRequest, sleep, timedCall, waitUntil } from '../helpers/reliability-harness.js';
import { versionKey } from '../../src/redis-keys.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

/** A redis-server with no persistence at all (no AOF, no RDB): a restart comes back empty. */
async function startVolatileRedis(): Promise<{ url: string; restartEmpty: () => Promise<void> }> {
  const port = await freePort();
  const directory = await mkdtemp(path.join(os.tmpdir(), 'gantry-volatile-redis-'));
  let child: ChildProcess;
  const launch = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--appendonly', 'no', '--save', '', '--dir', directory], { stdio: 'ignore' });
    const probe = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    await waitUntil(
      async () => {
        await probe.connect().catch(() => undefined);
        return (await probe.ping().catch(() => '')) === 'PONG';
      },
      10_000,
      'redis-server to answer',
    );
    probe.disconnect();
  };
  await launch();
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    spawnSync('redis-cli', ['-p', String(port), 'shutdown', 'nosave']);
    await exited;
  };
  cleanup.add(async () => {
    await stop();
    await rm(directory, { recursive: true, force: true });
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    restartEmpty: async () => {
      await stop();
      await launch();
    },
  };
}

const identityRequest = JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [0.5, -1, 2, 8] }] });
const mlpBody = JSON.stringify(mlpRequest(5));

async function inferVersion(baseUrl: string, model: string, version: string, body: string) {
  return timedCall(`${baseUrl}/v2/models/${model}/versions/${version}/infer`, { body, timeoutMs: 10_000 });
}

/** The last lines a process printed, for a failure message. */
function tail(output: string, lines = 20): string {
  return output.split('\n').slice(-lines).join('\n');
}

function metricValue(text: string, name: string): number {
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
}

async function metrics(gantry: GantryProcess): Promise<string> {
  return String((await timedCall(`${gantry.baseUrl}/metrics`)).body);
}

async function versionsOf(gantry: GantryProcess, model: string): Promise<Array<{ version: string; sha256: string; state: string }>> {
  const reply = await timedCall(`${gantry.baseUrl}/v1/models/${model}`);
  assert.equal(reply.status, 200, describeReply(reply));
  return reply.body.versions.map(({ version, sha256, state }: { version: string; sha256: string; state: string }) => ({ version, sha256, state }));
}

test(
  'Redis restarts empty under a running API: error logged, readiness 503 with the reason, registry rebuilt with the same versions, numbers go on',
  { timeout: 120_000 },
  async () => {
    const redis = await startVolatileRedis();
    const api = await startGantry({ command: 'api', redisUrl: redis.url, env: { GANTRY_REGISTRY_CHECK_INTERVAL_MS: '500' } });
    cleanup.add(() => api.cleanup());
    const firstWorker = await startGantry({ command: 'worker', redisUrl: redis.url, prefix: api.prefix, dataDirectory: api.dataDirectory });
    cleanup.add(() => firstWorker.cleanup());
    assert.match(api.output(), /Redis has no persistence.*appendonly yes/, 'start-up says loudly that this Redis has no persistence');

    const v1 = await uploadModel(api.baseUrl, 'wiped', fixturePath('tiny-mlp.onnx'));
    const v2 = await uploadModel(api.baseUrl, 'wiped', fixturePath('identity-float.onnx'));
    assert.equal(v1.status, 201, JSON.stringify(v1.body));
    assert.equal(v2.status, 201, JSON.stringify(v2.body));
    assert.deepEqual([v1.body.version, v2.body.version], ['1', '2']);
    const configured = await timedCall(`${api.baseUrl}/v1/models/wiped/config`, { method: 'PUT', body: JSON.stringify({ maxBatchSize: 4 }) });
    assert.equal(configured.status, 200, describeReply(configured));
    // Routing and warm-up samples are records too: the rollback pin, a split and a sample come back with the versions.
    const put = (urlPath: string, body: unknown) => timedCall(`${api.baseUrl}${urlPath}`, { method: 'PUT', body: JSON.stringify(body) });
    assert.equal((await put('/v1/models/wiped/aliases/production', { version: '1' })).status, 200);
    assert.equal((await put('/v1/models/wiped/aliases/canary', { version: '2' })).status, 200);
    const policy = {
      splits: [
        { version: '1', weight: 3 },
        { version: '2', weight: 1 },
      ],
      stickyBy: 'key',
    };
    assert.equal((await put('/v1/models/wiped/traffic', policy)).status, 200);
    const sample = await timedCall(`${api.baseUrl}/v1/models/wiped/versions/2/warmup`, { body: identityRequest });
    assert.equal(sample.status, 200, describeReply(sample));
    const routingBefore = {
      aliases: (await timedCall(`${api.baseUrl}/v1/models/wiped/aliases`)).body,
      traffic: (await timedCall(`${api.baseUrl}/v1/models/wiped/traffic`)).body,
    };
    const inspector = new Redis(redis.url);
    cleanup.add(() => inspector.quit());
    const sampleBefore = await inspector.hget(versionKey(api.prefix, 'wiped', '2'), 'warmupSample');
    assert.match(sampleBefore ?? '', /^[0-9a-f]{64}$/);
    const before1 = await inferVersion(api.baseUrl, 'wiped', '1', mlpBody);
    const before2 = await inferVersion(api.baseUrl, 'wiped', '2', identityRequest);
    assert.equal(before1.status, 200, describeReply(before1));
    assert.equal(before2.status, 200, describeReply(before2));
    const versionsBefore = await versionsOf(api, 'wiped');

    // Without a worker the restored versions cannot load, so the unready state lasts long enough to be seen.
    await firstWorker.stop();
    await redis.restartEmpty();
    let unready: Awaited<ReturnType<typeof timedCall>> | undefined;
    await waitUntil(
      async () => {
        const ready = await timedCall(`${api.baseUrl}/v2/health/ready`, { timeoutMs: 2000 });
        // 'lost' while the rebuild runs (milliseconds), then 'rebuilt …; still loading' until a worker loads them.
        if (ready.status === 503 && /restored version\(s\) are still loading/.test(ready.body?.reason ?? '')) unready = ready;
        return unready !== undefined;
      },
      15_000,
      'readiness to answer 503 saying the registry was rebuilt and is loading',
    );
    assert.equal(unready!.body.ready, false);
    assert.match(unready!.body.reason, /Redis lost its data; 2 restored version\(s\) are still loading/);
    assert.match(api.output(), /"level":50[^\n]*the model registry in Redis is lost/, 'an error-level log line names the loss');
    const whileLost = await metrics(api);
    assert.equal(metricValue(whileLost, 'gantry_registry_losses_total'), 1);
    assert.equal(metricValue(whileLost, 'gantry_registry_lost'), 1);
    // The registry itself is back (versions LOADING until a worker loads them).
    assert.deepEqual(
      (await versionsOf(api, 'wiped')).map(({ version, sha256 }) => ({ version, sha256 })),
      versionsBefore.map(({ version, sha256 }) => ({ version, sha256 })),
    );

    const worker = await startGantry({ command: 'worker', redisUrl: redis.url, prefix: api.prefix, dataDirectory: api.dataDirectory });
    cleanup.add(() => worker.cleanup());
    await waitUntil(
      async () => (await timedCall(`${api.baseUrl}/v2/health/ready`, { timeoutMs: 2000 })).status === 200,
      30_000,
      'readiness once the restored versions loaded',
    );
    assert.deepEqual(await versionsOf(api, 'wiped'), versionsBefore, 'the same versions, READY again');
    // The API rings the work doorbell at most once a second per model, and its last ring went with the wiped Redis:
    // a request within that second would wait for the next ring (reported; queue/work-doorbell.ts is not this test's).
    await sleep(1100);
    const after1 = await inferVersion(api.baseUrl, 'wiped', '1', mlpBody);
    const after2 = await inferVersion(api.baseUrl, 'wiped', '2', identityRequest);
    const logs = () => `\n--- api:\n${tail(api.output())}\n--- worker:\n${tail(worker.output())}`;
    assert.equal(after1.status, 200, describeReply(after1) + logs());
    assert.equal(after2.status, 200, describeReply(after2) + logs());
    assert.deepEqual(after1.body.outputs, before1.body.outputs);
    assert.deepEqual(after2.body.outputs, before2.body.outputs);
    const config = await timedCall(`${api.baseUrl}/v2/models/wiped/config`);
    assert.equal(config.body?.gantry?.maxBatchSize, 4, `the configuration came back: ${describeReply(config)}`);
    assert.deepEqual(
      {
        aliases: (await timedCall(`${api.baseUrl}/v1/models/wiped/aliases`)).body,
        traffic: (await timedCall(`${api.baseUrl}/v1/models/wiped/traffic`)).body,
      },
      routingBefore,
      'the aliases and the traffic policy came back',
    );
    assert.equal(await inspector.hget(versionKey(api.prefix, 'wiped', '2'), 'warmupSample'), sampleBefore, 'the warm-up sample came back');
    assert.equal(metricValue(await metrics(api), 'gantry_registry_lost'), 0);

    const v3 = await uploadModel(api.baseUrl, 'wiped', fixturePath('tiny-mlp.onnx'), '?duplicate=true');
    assert.equal(v3.status, 201, JSON.stringify(v3.body));
    assert.equal(v3.body.version, '3', 'an upload after the wipe goes on after the highest version the store knows');

    // A second wipe with the worker running: detected again, and everything serves again on the same processes.
    await redis.restartEmpty();
    await sleep(200);
    await waitUntil(async () => metricValue(await metrics(api), 'gantry_registry_losses_total') === 2, 15_000, 'the second loss to be detected');
    await waitUntil(
      async () => (await timedCall(`${api.baseUrl}/v2/health/ready`, { timeoutMs: 2000 })).status === 200,
      30_000,
      'readiness after the second rebuild',
    );
    await sleep(1100); // the doorbell's ring interval, as above
    for (const [version, body, expected] of [
      ['1', mlpBody, before1],
      ['2', identityRequest, before2],
      ['3', mlpBody, before1],
    ] as const) {
      const answer = await inferVersion(api.baseUrl, 'wiped', version, body);
      assert.equal(answer.status, 200, `v${version}: ${describeReply(answer)}`);
      assert.deepEqual(answer.body.outputs, expected.body.outputs);
    }
  },
);

test("`gantry repair` restores a registry wiped while the API was down; a deleted latest version's number is never reused", { timeout: 120_000 }, async () => {
  const redis = await startVolatileRedis();
  const firstApi = await startGantry({ command: 'api', redisUrl: redis.url });
  cleanup.add(() => firstApi.cleanup());
  const worker = await startGantry({ command: 'worker', redisUrl: redis.url, prefix: firstApi.prefix, dataDirectory: firstApi.dataDirectory });
  cleanup.add(() => worker.cleanup());

  const v1 = await uploadModel(firstApi.baseUrl, 'repaired', fixturePath('tiny-mlp.onnx'));
  const v2 = await uploadModel(firstApi.baseUrl, 'repaired', fixturePath('identity-float.onnx'));
  assert.deepEqual([v1.status, v2.status], [201, 201], JSON.stringify([v1.body, v2.body]));
  assert.equal((await timedCall(`${firstApi.baseUrl}/v1/models/repaired/versions/2`, { method: 'DELETE' })).status, 204);
  const before1 = await inferVersion(firstApi.baseUrl, 'repaired', '1', mlpBody);
  assert.equal(before1.status, 200, describeReply(before1));

  await firstApi.stop();
  await redis.restartEmpty();
  const environment = {
    PATH: process.env.PATH ?? '',
    REDIS_URL: redis.url,
    GANTRY_QUEUE_PREFIX: firstApi.prefix,
    GANTRY_DATA_DIR: firstApi.dataDirectory,
    LOG_LEVEL: 'warn',
  };
  const repair = spawnSync(process.execPath, [cliPath, 'repair'], { env: environment, encoding: 'utf8', timeout: 60_000 });
  assert.equal(repair.status, 0, `gantry repair exit code ${repair.status}:\n${repair.stdout}\n${repair.stderr}`);
  assert.match(repair.stdout, /no deployment marker/);
  assert.match(repair.stdout, /Restored 1 version\(s\)/);
  assert.match(repair.stdout, /repaired v1 \(sha256 [0-9a-f]{12}…\)\s+LOADING/);
  assert.match(repair.stdout, /repaired v1 .*READY/, 'the running worker loaded the restored version');
  assert.doesNotMatch(repair.stdout, /repaired v2/, 'a deleted version is not restored');

  const api = await startGantry({ command: 'api', redisUrl: redis.url, prefix: firstApi.prefix, dataDirectory: firstApi.dataDirectory });
  cleanup.add(() => api.cleanup());
  assert.equal(metricValue(await metrics(api), 'gantry_registry_losses_total'), 0, 'the repaired registry is intact for the new API');
  const after1 = await inferVersion(api.baseUrl, 'repaired', '1', mlpBody);
  assert.equal(after1.status, 200, describeReply(after1));
  assert.deepEqual(after1.body.outputs, before1.body.outputs);
  const next = await uploadModel(api.baseUrl, 'repaired', fixturePath('tiny-mlp.onnx'), '?duplicate=true');
  assert.equal(next.status, 201, JSON.stringify(next.body));
  assert.equal(next.body.version, '3', 'the deleted version 2 keeps its number: the next upload is 3');

  // Repair again with nothing lost: nothing to restore. And with no Redis at all: it says what to do.
  const again = spawnSync(process.execPath, [cliPath, 'repair'], { env: environment, encoding: 'utf8', timeout: 60_000 });
  assert.equal(again.status, 0, again.stdout + again.stderr);
  assert.match(again.stdout, /intact[\s\S]*Nothing to restore/);
  const nowhere = spawnSync(process.execPath, [cliPath, 'repair'], {
    env: { ...environment, REDIS_URL: `redis://127.0.0.1:${await freePort()}` },
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(nowhere.status, 1);
  assert.match(nowhere.stdout, /No Redis answers at 127\.0\.0\.1:\d+\. Start the Redis this deployment uses, or set REDIS_URL/);
});
