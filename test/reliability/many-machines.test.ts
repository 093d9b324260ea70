/**
 * Issue 15, the many-machine proof: two API processes and three workers, each with a data directory of its own and
 * no shared filesystem, one Redis (a private redis-server) and the S3 store (moto's server). A model uploaded
 * through one API serves through the other from every worker, each worker fetching and verifying the blob once; a
 * process killed with SIGKILL under load and restarted leaves every request answered (200, or 503/504 with
 * Retry-After for the ones caught in flight) and no model or version lost.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fixturePath, startGantry, uploadModel, type GantryProcess } from '../helpers/gantry-process.js';
import { sampleValue } from '../helpers/metrics-text.js';
import { Cleanup, countStatuses, describeReply, mlpRequest, startPrivateRedis, timedCall, waitUntil, type TimedReply } from '../helpers/reliability-harness.js';
import { gantryS3Environment, startS3Server } from '../../support/s3-server.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

const bucket = 'gantry-many';
const prefix = `many-${process.pid}`;

interface Deployment {
  redisUrl: string;
  env: Record<string, string>;
  apis: GantryProcess[];
  workers: GantryProcess[];
}

/** One "machine": a process with a data directory of its own. */
async function startMachine(deployment: Pick<Deployment, 'redisUrl' | 'env'>, command: 'api' | 'worker'): Promise<GantryProcess> {
  const dataDirectory = await mkdtemp(path.join(os.tmpdir(), `gantry-machine-${command}-`));
  cleanup.add(() => rm(dataDirectory, { recursive: true, force: true }));
  const machine = await startGantry({ command, prefix, dataDirectory, redisUrl: deployment.redisUrl, env: deployment.env });
  cleanup.add(() => machine.stop('SIGKILL'));
  return machine;
}

async function workerMetrics(worker: GantryProcess): Promise<string> {
  return (await fetch(`${worker.workerUrl}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
}

const request = JSON.stringify(mlpRequest(3));
const infer = (api: GantryProcess, timeoutMs = 20_000) => timedCall(`${api.baseUrl}/v2/models/mlp/infer`, { body: request, timeoutMs });

test('two APIs and three workers on separate data directories serve one upload from S3; SIGKILL under load loses nothing', { timeout: 240_000 }, async () => {
  const redis = await startPrivateRedis();
  cleanup.add(() => redis.cleanup());
  const s3 = await startS3Server();
  cleanup.add(() => s3.stop());
  await s3.createBucket(bucket);
  const env = {
    ...gantryS3Environment(s3, bucket, { prefix: 'proof' }),
    // Jobs spread over the workers rather than each taking a whole burst.
    GANTRY_MAX_REQUESTS_PER_JOB: '1',
  };
  const deployment: Deployment = { redisUrl: redis.url, env, apis: [], workers: [] };
  deployment.apis.push(await startMachine(deployment, 'api'), await startMachine(deployment, 'api'));
  for (let index = 0; index < 3; index++) deployment.workers.push(await startMachine(deployment, 'worker'));
  const [first, second] = deployment.apis as [GantryProcess, GantryProcess];

  const upload = await uploadModel(first.baseUrl, 'mlp', fixturePath('tiny-mlp.onnx'));
  assert.equal(upload.status, 201, JSON.stringify(upload.body));
  const sha256 = upload.body.sha256 as string;
  for (const machine of [...deployment.apis, ...deployment.workers]) {
    const localBlobs = await readdir(path.join(machine.dataDirectory, 'blobs', 'sha256')).catch(() => [] as string[]);
    assert.ok(!localBlobs.includes(sha256), 'no process keeps the blob in a local store: it is in S3');
  }

  // Served through the other API, by every worker: concurrent clients until each worker has answered some.
  const expected = (await infer(second)).body?.outputs;
  assert.ok(expected !== undefined, 'the second API answers');
  await waitUntil(
    async () => {
      const replies = await Promise.all(Array.from({ length: 12 }, (_, index) => infer(deployment.apis[index % 2]!)));
      for (const reply of replies) assert.equal(reply.status, 200, describeReply(reply));
      const served = await Promise.all(
        deployment.workers.map(async (worker) =>
          sampleValue(await workerMetrics(worker), 'gantry_worker_requests_total', { model: 'mlp', version: '1', outcome: 'success' }),
        ),
      );
      return served.every((count) => count > 0);
    },
    60_000,
    'every worker to serve the model',
    0,
  );
  for (const worker of deployment.workers) {
    const metrics = await workerMetrics(worker);
    assert.equal(sampleValue(metrics, 'gantry_worker_blob_verifications_total', { outcome: 'ok' }), 1, 'one verification per worker per blob');
    assert.ok((await readdir(path.join(worker.dataDirectory, 'cache', 'blobs'))).includes(sha256), 'the worker keeps its copy in its own cache');
  }

  // Under steady load, kill -9 one worker, then one API, and restart each: every request is answered.
  interface Sent {
    reply: TimedReply;
    /** The API process the request went to, and whether it is the one killed. */
    process: GantryProcess;
  }
  const sent: Sent[] = [];
  let running = true;
  const client = async (index: number) => {
    while (running) {
      const api = deployment.apis[index % 2]!;
      const reply = await infer(api, 30_000);
      sent.push({ process: api, reply });
      // A client whose server is gone backs off a little instead of spinning on refused connections.
      if (reply.status === 0) await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  const clients = [0, 1, 2, 3].map(client);
  const killed: GantryProcess[] = [];
  for (const [kind, index] of [
    ['worker', 0],
    ['api', 1],
  ] as const) {
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const list = kind === 'api' ? deployment.apis : deployment.workers;
    killed.push(list[index]!);
    await list[index]!.stop('SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, 1000));
    list[index] = await startMachine(deployment, kind);
  }
  await new Promise((resolve) => setTimeout(resolve, 1500));
  running = false;
  await Promise.all(clients);

  const replies = sent.map(({ reply }) => reply);
  const statuses = countStatuses(replies);
  for (const { reply, process: api } of sent.filter(({ reply }) => reply.status !== 200)) {
    if (reply.status === 0) {
      // The API process killed held these connections; a load balancer would retry them elsewhere. None elsewhere.
      assert.ok(
        killed.includes(api) && reply.failure !== undefined && !/TimeoutError/.test(reply.failure),
        `only the killed API drops connections: ${describeReply(reply)}`,
      );
      continue;
    }
    assert.ok([503, 504].includes(reply.status), describeReply(reply));
    assert.ok(reply.headers.get('retry-after') !== null, `Retry-After on ${describeReply(reply)}`);
  }
  assert.ok((statuses['200'] ?? 0) > (replies.length - (statuses['0'] ?? 0)) / 2, JSON.stringify(statuses));
  for (const reply of replies.filter((candidate) => candidate.status === 200)) assert.deepEqual(reply.body.outputs, expected);

  // Nothing was lost: the version is listed and READY, and serves through both APIs (the restarted one too).
  for (const api of deployment.apis) {
    const listed = await timedCall(`${api.baseUrl}/v1/models/mlp`);
    assert.equal(listed.status, 200, describeReply(listed));
    assert.deepEqual(
      listed.body.versions.map((version: { version: string; state: string }) => [version.version, version.state]),
      [['1', 'READY']],
    );
    const answer = await infer(api);
    assert.equal(answer.status, 200, describeReply(answer));
  }
});
