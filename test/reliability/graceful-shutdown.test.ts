/**
 * SIGTERM drains: (a) `gantry start` under load turns unready at once, answers its in-flight requests with 200
 * and exits 0; (b) a separate worker answers the jobs it is running with 200 and exits 0.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { fixturePath, startGantry, uploadModel } from '../helpers/gantry-process.js';
import {
  activeJobs,
  Cleanup,
  countStatuses,
  describeReply,
  infer,
  isAlive,
  sharedDeployment,
  sleep,
  slowRequest,
  timedCall,
  waitUntil,
  workerChildOf,
} from '../helpers/reliability-harness.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

test('(a) SIGTERM to `gantry start` under load: ready → 503 quickly, in-flight requests 200, exit 0', { timeout: 60_000 }, async () => {
  const gantry = await startGantry({ env: { GANTRY_SHUTDOWN_TIMEOUT_MS: '15000' } });
  cleanup.add(() => gantry.cleanup());
  const workerPid = workerChildOf(gantry, cleanup);
  const upload = await uploadModel(gantry.baseUrl, 'slow', fixturePath('slow.onnx'));
  assert.equal(upload.status, 201, JSON.stringify(upload.body));

  // ~0.7 s each, one instance: the last finishes ~3 s after they start.
  const inFlight = Array.from({ length: 4 }, () => infer(gantry.baseUrl, 'slow', slowRequest(200_000), 30_000));
  await sleep(300);
  const exited = new Promise<number | null>((resolve) => gantry.child.once('exit', (code) => resolve(code)));
  const signalledAt = Date.now();
  gantry.child.kill('SIGTERM');
  let unreadyAfterMs: number | undefined;
  while (Date.now() - signalledAt < 5000) {
    const ready = await timedCall(`${gantry.baseUrl}/v2/health/ready`, { timeoutMs: 1000 });
    if (ready.status !== 200) {
      unreadyAfterMs = Date.now() - signalledAt;
      assert.ok(ready.status === 503 || ready.failure !== undefined, describeReply(ready));
      break;
    }
    await sleep(10);
  }
  const replies = await Promise.all(inFlight);
  const code = await exited;
  console.log(
    `# shutdown(a): unready after ${unreadyAfterMs} ms; in-flight ${JSON.stringify(countStatuses(replies))}; exit ${code} after ${Date.now() - signalledAt} ms`,
  );
  assert.ok(unreadyAfterMs !== undefined && unreadyAfterMs < 500, `readiness turned 503 after ${unreadyAfterMs} ms`);
  assert.deepEqual(replies.filter((reply) => reply.status !== 200).map(describeReply), [], 'every in-flight request finishes with 200');
  assert.equal(code, 0, `exit code:\n${gantry.output().slice(-2000)}`);
  await waitUntil(() => !isAlive(workerPid), 5000, 'the worker child to exit too');
});

test('(b) SIGTERM to a separate worker while it runs jobs: they finish with 200, it exits 0', { timeout: 60_000 }, async () => {
  const shared = await sharedDeployment(cleanup, 'drain');
  // One request per job, sent at once: the worker holds all three jobs when it is told to stop.
  const api = await startGantry({ ...shared, command: 'api', env: { GANTRY_MAX_REQUESTS_PER_JOB: '1', GANTRY_MAX_JOBS_IN_FLIGHT: '8' } });
  cleanup.add(() => api.stop('SIGKILL'));
  const worker = await startGantry({ ...shared, command: 'worker', env: { GANTRY_SHUTDOWN_TIMEOUT_MS: '15000' } });
  cleanup.add(() => worker.stop('SIGKILL'));
  const upload = await uploadModel(api.baseUrl, 'slow', fixturePath('slow.onnx'), '?wait=true');
  assert.equal(upload.status, 201, JSON.stringify(upload.body));

  const inFlight = Array.from({ length: 3 }, () => infer(api.baseUrl, 'slow', slowRequest(200_000), 30_000));
  await waitUntil(async () => (await activeJobs(shared.redisUrl, shared.prefix, 'slow')) === 3, 5000, 'the worker to hold all three jobs', 20);
  const exited = new Promise<number | null>((resolve) => worker.child.once('exit', (code) => resolve(code)));
  const signalledAt = Date.now();
  worker.child.kill('SIGTERM');
  const replies = await Promise.all(inFlight);
  const code = await exited;
  console.log(`# shutdown(b): in-flight ${JSON.stringify(countStatuses(replies))}; worker exit ${code} after ${Date.now() - signalledAt} ms`);
  assert.deepEqual(replies.filter((reply) => reply.status !== 200).map(describeReply), [], 'every job the worker held finishes with 200');
  assert.equal(code, 0, `worker exit code:\n${worker.output().slice(-2000)}`);
  assert.equal(await activeJobs(shared.redisUrl, shared.prefix, 'slow'), 0, 'no job left active (stalled) behind');
});
