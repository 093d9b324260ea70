/**
 * A request slower than its timeout is answered 504 at the timeout and leaves the worker usable; a request that
 * kills every worker running it ("poison") is given up after GANTRY_MAX_JOB_ATTEMPTS starts with a clear error
 * (never a hang, never an endless crash loop), and later requests still work.
 *
 * No fixture crashes onnxruntime, so the crash is simulated: the worker running the job is SIGKILLed each time
 * it picks the job up, and a fresh worker is started in its place.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { deleteKeys, fixturePath, startGantry, uploadModel, type GantryProcess } from '../helpers/gantry-process.js';
import { jobAttemptsStarted, Cleanup, describeReply, infer, sleep, slowRequest, waitUntil } from '../helpers/reliability-harness.js';

const cleanup = new Cleanup();
const redisUrl = 'redis://127.0.0.1:6379';
const prefix = `rel-poison-${randomBytes(4).toString('hex')}`;
let dataDirectory: string;
let api: GantryProcess;
let worker: GantryProcess;
const maxAttempts = 2;
const workerEnv = { GANTRY_JOB_LOCK_MS: '1500', GANTRY_MAX_JOB_ATTEMPTS: String(maxAttempts), GANTRY_SHUTDOWN_TIMEOUT_MS: '2000' };

async function startWorker(): Promise<GantryProcess> {
  const started = await startGantry({ command: 'worker', prefix, dataDirectory, redisUrl, env: workerEnv });
  cleanup.add(() => started.stop('SIGKILL'));
  return started;
}

before(async () => {
  dataDirectory = await mkdtemp(path.join(os.tmpdir(), 'gantry-rel-poison-'));
  cleanup.add(() => rm(dataDirectory, { recursive: true, force: true }));
  cleanup.add(() => deleteKeys(redisUrl, prefix));
  api = await startGantry({
    command: 'api',
    prefix,
    dataDirectory,
    redisUrl,
    env: { ...workerEnv, GANTRY_INFER_TIMEOUT_MS: '500' },
  });
  cleanup.add(() => api.stop('SIGKILL'));
  worker = await startWorker();
  const upload = await uploadModel(api.baseUrl, 'slow', fixturePath('slow.onnx'), '?wait=true');
  assert.equal(upload.status, 201, JSON.stringify(upload.body));
});
after(() => cleanup.run());

test('a request slower than GANTRY_INFER_TIMEOUT_MS=500 → 504 within ~1 s; the worker then serves again', { timeout: 60_000 }, async () => {
  const slow = await infer(api.baseUrl, 'slow', slowRequest(2_000_000), 10_000);
  assert.equal(slow.status, 504, describeReply(slow));
  assert.equal(slow.body?.code, 'DEADLINE_EXCEEDED', describeReply(slow));
  assert.ok(slow.ms >= 450 && slow.ms < 1200, `504 after ${slow.ms.toFixed(0)} ms`);
  // The abandoned run (~7 s at 3.6 µs/iteration) cannot be interrupted; once it ends a fast request succeeds.
  const waited = await waitUntil(
    async () => (await infer(api.baseUrl, 'slow', slowRequest(1), 5000)).status === 200,
    40_000,
    'a fast request after the slow one',
    250,
  );
  console.log(`# slow: 504 after ${slow.ms.toFixed(0)} ms; the worker served again ${waited} ms later`);
  assert.equal(worker.child.exitCode, null, 'the worker is alive');
});

test(`a job that kills its worker every time ends with a clear error after ${maxAttempts} attempts`, { timeout: 90_000 }, async () => {
  // ~11 s of work with its own 60 s timeout: long enough to be killed while running.
  const poisoned = infer(api.baseUrl, 'slow', slowRequest(3_000_000, { timeout: 60_000_000 }), 60_000);
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    // Wait until the current worker has started the job for the attempt-th time (BullMQ's `ats` counter: a dead
    // worker's job stays in the active list until found stalled, so the list alone says nothing), then kill it.
    const tookMs = await waitUntil(
      async () => (await jobAttemptsStarted(redisUrl, prefix, 'slow')).attemptsStarted >= attempt,
      15_000,
      `attempt ${attempt} to start (a dead worker's job must be re-queued well before BullMQ's default 30 s)`,
      50,
    );
    await sleep(300);
    assert.ok(worker.child.kill('SIGKILL'));
    await new Promise((resolve) =>
      worker.child.exitCode !== null || worker.child.signalCode !== null ? resolve(undefined) : worker.child.once('exit', resolve),
    );
    console.log(`# poison: attempt ${attempt} started ${tookMs} ms after waiting began; worker killed`);
    worker = await startWorker();
  }
  const killedLast = Date.now();
  const reply = await poisoned;
  const endedAfter = Date.now() - killedLast;
  console.log(`# poison: answered ${reply.status} ${endedAfter} ms after the last kill: ${JSON.stringify(reply.body).slice(0, 300)}`);
  assert.equal(reply.failure, undefined, describeReply(reply));
  assert.ok(reply.status === 500 || reply.status === 503, `the poisoned request must end with 500/503, not run a third time: ${describeReply(reply)}`);
  assert.equal(typeof reply.body?.error, 'string');
  assert.match(reply.body.error, /worker|attempt|crash|time\(s\)/i, 'the error says why');
  assert.ok(endedAfter < 20_000, `answered ${endedAfter} ms after the last kill`);

  // Later requests work on the fresh worker.
  const later = await infer(api.baseUrl, 'slow', slowRequest(1), 10_000);
  assert.equal(later.status, 200, describeReply(later));
  assert.equal(worker.child.exitCode, null, 'the last worker is alive');
});
