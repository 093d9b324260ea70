/**
 * A worker killed with SIGKILL in the middle of its jobs: every request still gets an HTTP answer (200, or 504
 * at its own timeout; never a connection error or a hang), and the dead worker's in-flight jobs are taken over
 * by the surviving worker well before BullMQ's default 30 s stalled-job interval (GANTRY_JOB_LOCK_MS).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { fixturePath, startGantry, uploadModel } from '../helpers/gantry-process.js';
import {
  Cleanup,
  countStatuses,
  describeReply,
  infer,
  isAlive,
  sharedDeployment,
  sleep,
  slowRequest,
  waitUntil,
  workerChildOf,
  workerRequestsTotal,
  type TimedReply,
} from '../helpers/reliability-harness.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

test('SIGKILL of one of two workers mid-batch: every request answered, its jobs recovered in < 10 s', { timeout: 120_000 }, async () => {
  const shared = await sharedDeployment(cleanup, 'crash');
  // Small job lock, so a dead worker's jobs are found stalled within a few seconds (BullMQ's default is 30 s).
  const env = { GANTRY_JOB_LOCK_MS: '2000', GANTRY_INFER_TIMEOUT_MS: '20000', GANTRY_SHUTDOWN_TIMEOUT_MS: '3000' };
  // One request per job and many jobs in flight, so both workers get work at once.
  const api = await startGantry({ ...shared, command: 'api', env: { ...env, GANTRY_MAX_REQUESTS_PER_JOB: '1', GANTRY_MAX_JOBS_IN_FLIGHT: '16' } });
  cleanup.add(() => api.stop('SIGKILL'));
  const [victim, survivor] = await Promise.all([startGantry({ ...shared, command: 'worker', env }), startGantry({ ...shared, command: 'worker', env })]);
  cleanup.add(() => victim!.stop('SIGKILL'));
  cleanup.add(() => survivor!.stop('SIGKILL'));

  const upload = await uploadModel(api.baseUrl, 'slow', fixturePath('slow.onnx'), '?wait=true');
  assert.equal(upload.status, 201, JSON.stringify(upload.body));
  const warm = await infer(api.baseUrl, 'slow', slowRequest(1));
  assert.equal(warm.status, 200, describeReply(warm));

  const clients = 8;
  const loadMs = 5000;
  const killAt = 1500;
  const perRequestTimeoutMs = 25_000;
  const replies: TimedReply[] = [];
  const loadStarted = Date.now();
  let killedAt = 0;
  const client = async () => {
    while (Date.now() - loadStarted < loadMs) replies.push(await infer(api.baseUrl, 'slow', slowRequest(20_000), perRequestTimeoutMs));
  };
  const load = Promise.all(Array.from({ length: clients }, client));
  await sleep(killAt);
  // Make sure the victim really is working (it finished requests already) before the kill.
  await waitUntil(async () => (await workerRequestsTotal(victim!.workerUrl)) > 1, 5000, 'the victim worker to take jobs');
  assert.ok(victim!.child.kill('SIGKILL'));
  killedAt = Date.now();
  await load;

  const counts = countStatuses(replies);
  const bad = replies.filter((reply) => reply.status !== 200 && reply.status !== 504);
  assert.deepEqual(bad.map(describeReply), [], `every request gets 200 or 504; statuses ${JSON.stringify(counts)}`);

  // Requests that were outstanding when the worker died: how long after the kill each one was answered.
  const outstanding = replies.filter((reply) => reply.startedAt <= killedAt && reply.finishedAt >= killedAt);
  const recoveryMs = Math.max(0, ...outstanding.map((reply) => reply.finishedAt - killedAt));
  console.log(
    `# worker-crash: ${replies.length} requests ${JSON.stringify(counts)}; ${outstanding.length} outstanding at the kill; slowest answered ${recoveryMs} ms after it`,
  );
  assert.ok(outstanding.length > 0, 'some requests were in flight at the kill');
  assert.ok(
    recoveryMs < 10_000,
    `the dead worker's jobs were answered ${recoveryMs} ms after the kill (must be < 10 s; BullMQ's default stalled interval is 30 s)`,
  );
  // They were re-run, not timed out: the survivor took them over.
  assert.ok(
    outstanding.every((reply) => reply.status === 200),
    `outstanding requests: ${outstanding.map(describeReply).join('; ')}`,
  );

  // The survivor still serves.
  const after = await infer(api.baseUrl, 'slow', slowRequest(1));
  assert.equal(after.status, 200, describeReply(after));
  assert.equal(survivor!.child.exitCode, null, 'the surviving worker is alive');
});

test('SIGKILL of a `gantry start` process: its worker child notices and exits instead of serving on as an orphan', { timeout: 60_000 }, async () => {
  const gantry = await startGantry({ env: { GANTRY_SHUTDOWN_TIMEOUT_MS: '3000' } });
  cleanup.add(() => gantry.cleanup());
  const workerPid = workerChildOf(gantry, cleanup);
  const upload = await uploadModel(gantry.baseUrl, 'mlp', fixturePath('tiny-mlp.onnx'));
  assert.equal(upload.status, 201, JSON.stringify(upload.body));
  assert.ok(gantry.child.kill('SIGKILL'));
  const goneAfter = await waitUntil(() => !isAlive(workerPid), 15_000, 'the orphaned worker to exit', 50);
  console.log(`# orphan: the worker exited ${goneAfter} ms after its start process was SIGKILLed`);
});
