/**
 * Stored blobs are verified against their sha256 whenever a worker loads them: a blob corrupted on disk makes
 * its version UNAVAILABLE with a reason naming sha256, inference answers 503, and the worker stays up. (An
 * interrupted upload leaves a complete version or none: see malicious-models.test.ts, "cut off".)
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { fixturePath, startGantry, uploadModel, type GantryProcess } from '../helpers/gantry-process.js';
import { Cleanup, childPids, describeReply, infer, isAlive, mlpRequest, timedCall, waitUntil } from '../helpers/reliability-harness.js';

const cleanup = new Cleanup();
let gantry: GantryProcess;
after(() => cleanup.run());

before(async () => {
  gantry = await startGantry({ env: { GANTRY_SHUTDOWN_TIMEOUT_MS: '3000' } });
  cleanup.add(() => gantry.cleanup());
  cleanup.add(() => {
    for (const pid of childPids(gantry.child.pid!)) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  });
});

async function corrupt(sha256: string): Promise<void> {
  const file = path.join(gantry.dataDirectory, 'blobs', 'sha256', sha256);
  const handle = await open(file, 'r+');
  try {
    const { size } = await handle.stat();
    await handle.write(Buffer.from('corrupted!corrupted!'), 0, 20, Math.floor(size / 2));
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function assertUnavailable(model: string): Promise<void> {
  const version = await timedCall(`${gantry.baseUrl}/v1/models/${model}/versions/1`);
  assert.equal(version.status, 200, describeReply(version));
  assert.equal(version.body.state, 'UNAVAILABLE', describeReply(version));
  assert.match(version.body.reason ?? '', /sha256/i, describeReply(version));
  const reply = await infer(gantry.baseUrl, model, mlpRequest());
  assert.equal(reply.status, 503, describeReply(reply));
  assert.equal(typeof reply.body?.error, 'string');
}

test('corrupted blob + unload/load → UNAVAILABLE (reason names sha256), infer 503, worker alive', { timeout: 60_000 }, async () => {
  const upload = await uploadModel(gantry.baseUrl, 'mlp', fixturePath('tiny-mlp.onnx'));
  assert.equal(upload.status, 201, JSON.stringify(upload.body));
  assert.equal((await infer(gantry.baseUrl, 'mlp', mlpRequest())).status, 200);
  const workerPid = childPids(gantry.child.pid!)[0]!;
  await corrupt(upload.body.sha256);

  assert.equal((await timedCall(`${gantry.baseUrl}/v2/repository/models/mlp/unload`, { method: 'POST', body: '{}' })).status, 200);
  const load = await timedCall(`${gantry.baseUrl}/v2/repository/models/mlp/load`, { method: 'POST', body: '{}', timeoutMs: 20_000 });
  assert.ok(load.status >= 400, `loading a corrupted blob must fail: ${describeReply(load)}`);
  assert.equal(typeof load.body?.error, 'string');
  await assertUnavailable('mlp');
  assert.ok(isAlive(workerPid), 'the worker is alive');
  assert.deepEqual(childPids(gantry.child.pid!), [workerPid], 'the worker was not restarted');
  assert.equal((await timedCall(`${gantry.workerUrl}/ready`)).status, 200);
});

test('corrupted blob + worker restart (SIGKILL, supervisor restarts it) → UNAVAILABLE on next use, infer 503', { timeout: 60_000 }, async () => {
  const upload = await uploadModel(gantry.baseUrl, 'mlp2', fixturePath('identity-float.onnx'));
  assert.equal(upload.status, 201, JSON.stringify(upload.body));
  const request = { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 2], data: [1, 2] }] };
  assert.equal((await infer(gantry.baseUrl, 'mlp2', request)).status, 200);
  await corrupt(upload.body.sha256);

  const oldWorker = childPids(gantry.child.pid!)[0]!;
  process.kill(oldWorker, 'SIGKILL');
  await waitUntil(
    async () => {
      const now = childPids(gantry.child.pid!);
      return now.length === 1 && now[0] !== oldWorker && (await timedCall(`${gantry.workerUrl}/ready`, { timeoutMs: 1000 })).status === 200;
    },
    20_000,
    'the supervisor to restart the worker',
  );
  // The fresh worker has no session: the next request makes it load, verify and refuse the blob.
  const first = await infer(gantry.baseUrl, 'mlp2', request);
  assert.equal(first.status, 503, describeReply(first));
  assert.match(first.body?.error ?? '', /sha256/i, describeReply(first));
  const version = await timedCall(`${gantry.baseUrl}/v1/models/mlp2/versions/1`);
  assert.equal(version.body.state, 'UNAVAILABLE', describeReply(version));
  assert.match(version.body.reason ?? '', /sha256/i);
  const again = await infer(gantry.baseUrl, 'mlp2', request);
  assert.equal(again.status, 503, describeReply(again));
  const newWorker = childPids(gantry.child.pid!)[0]!;
  assert.ok(isAlive(newWorker), 'the new worker is alive');
});
