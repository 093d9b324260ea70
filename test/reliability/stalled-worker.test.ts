/**
 * A worker whose event loop stalls past its job lock (here: SIGSTOP for several lock periods) loses its jobs to
 * another worker, which runs them again (BullMQ's stalled-job recovery). When the stalled worker wakes up it must
 * not count or answer those jobs a second time: every caller gets one answer, and the model's statistics count
 * each request exactly once (issue 11; before the job fence, the stalled worker's jobs were counted twice).
 *
 * To make the stall land while the worker holds a job, the victim runs alone with GANTRY_WORKER_CONCURRENCY=1 on
 * a slow model, is stopped only once Redis shows a job active (no other worker exists yet to hold it), and the
 * second worker is started only after the stop. Concurrency 1 also gives a clean signal that the victim has
 * dealt with its stale job after waking: it takes no new job before that one is finished.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { fixturePath, startGantry, uploadModel, withAdminKey } from '../helpers/gantry-process.js';
import {
  activeJobs,
  Cleanup,
  countStatuses,
  describeReply,
  infer,
  sharedDeployment,
  sleep,
  slowRequest,
  sumMetric,
  waitUntil,
  workerRequestsTotal,
  type TimedReply,
} from '../helpers/reliability-harness.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

/** The model's statistics summed over its versions (one version here). */
async function modelStatistics(baseUrl: string, model: string): Promise<{ inferences: number; successes: number; failures: number }> {
  const response = await fetch(`${baseUrl}/v2/models/${model}/stats`, { headers: withAdminKey(), signal: AbortSignal.timeout(5000) });
  assert.equal(response.status, 200);
  const body = (await response.json()) as {
    model_stats: Array<{ inference_count: number; inference_stats: { success: { count: number }; fail: { count: number } } }>;
  };
  let inferences = 0;
  let successes = 0;
  let failures = 0;
  for (const stats of body.model_stats) {
    inferences += stats.inference_count;
    successes += stats.inference_stats.success.count;
    failures += stats.inference_stats.fail.count;
  }
  return { inferences, successes, failures };
}

async function workerMetric(workerUrl: string, name: string): Promise<number> {
  const response = await fetch(`${workerUrl}/metrics`, { signal: AbortSignal.timeout(5000) });
  assert.equal(response.status, 200);
  return sumMetric(await response.text(), name);
}

test('a worker stalled past its job lock: every request answered once and counted once in the statistics', { timeout: 120_000 }, async () => {
  const shared = await sharedDeployment(cleanup, 'stall');
  const lockMs = 1000;
  const env = { GANTRY_JOB_LOCK_MS: String(lockMs), GANTRY_INFER_TIMEOUT_MS: '30000', GANTRY_SHUTDOWN_TIMEOUT_MS: '3000' };
  // One request per job, so each job is one request and one count.
  const api = await startGantry({ ...shared, command: 'api', env: { ...env, GANTRY_MAX_REQUESTS_PER_JOB: '1', GANTRY_MAX_JOBS_IN_FLIGHT: '16' } });
  cleanup.add(() => api.stop('SIGKILL'));
  const victim = await startGantry({ ...shared, command: 'worker', env: { ...env, GANTRY_WORKER_CONCURRENCY: '1' } });
  // In case the test fails while the victim is stopped.
  cleanup.add(() => {
    victim.child.kill('SIGCONT');
    return victim.stop('SIGKILL');
  });

  const upload = await uploadModel(api.baseUrl, 'slow', fixturePath('slow.onnx'), '?wait=true');
  assert.equal(upload.status, 201, JSON.stringify(upload.body));
  let sent = 0;
  const warm = await infer(api.baseUrl, 'slow', slowRequest(1));
  sent += 1;
  assert.equal(warm.status, 200, describeReply(warm));

  // ~300 ms a request (slow.onnx: ~3.6 µs an iteration), one at a time on the victim.
  const requests = 8;
  const replies: TimedReply[] = [];
  const load = Promise.all(
    Array.from({ length: requests }, async (_, index) => {
      const reply = await infer(api.baseUrl, 'slow', slowRequest(80_000 + index), 40_000);
      replies.push(reply);
    }),
  );
  sent += requests;
  // The victim is in the middle of the sequence: it has answered one of them and holds the next.
  await waitUntil(async () => (await workerRequestsTotal(victim.workerUrl)) >= 2, 20_000, 'the victim to answer a first slow request', 20);
  assert.ok(victim.child.kill('SIGSTOP'));
  const stoppedAt = Date.now();
  // Nobody else consumes the queue yet, so an active job now is the stopped victim's.
  const heldAtStop = await activeJobs(shared.redisUrl, shared.prefix, 'slow');
  assert.ok(heldAtStop >= 1, `the victim holds a job while stopped (active jobs: ${heldAtStop})`);

  const rescuer = await startGantry({ ...shared, command: 'worker', env });
  cleanup.add(() => rescuer.stop('SIGKILL'));
  await load;
  // The rescuer may be quicker than that; the stall still lasts several lock periods.
  await sleep(Math.max(0, stoppedAt + 4 * lockMs - Date.now()));
  const stalledMs = Date.now() - stoppedAt;
  console.log(
    `# stall: victim stopped for ${stalledMs} ms (${(stalledMs / lockMs).toFixed(1)} lock periods) holding ${heldAtStop} job(s); replies ${JSON.stringify(countStatuses(replies))}`,
  );
  assert.deepEqual(replies.filter((reply) => reply.status !== 200).map(describeReply), [], 'every caller gets a 200 from the rescuer');

  // Wake the victim, and let it be the only worker: a probe it answers was taken after its stale job was done.
  assert.ok(victim.child.kill('SIGCONT'));
  assert.equal(await rescuer.stop(), 0, rescuer.output());
  const probe = await infer(api.baseUrl, 'slow', slowRequest(1000), 20_000);
  sent += 1;
  assert.equal(probe.status, 200, describeReply(probe));

  // Statistics are written ~20 ms after a count; wait for every request's count, then a little longer for any
  // extra one (the stale job's, if it were counted again, is flushed well before the probe's answer).
  await waitUntil(async () => (await modelStatistics(api.baseUrl, 'slow')).inferences >= sent, 10_000, 'the statistics of every request');
  await sleep(500);
  const statistics = await modelStatistics(api.baseUrl, 'slow');
  assert.deepEqual(statistics, { inferences: sent, successes: sent, failures: 0 }, `each of the ${sent} requests is counted exactly once`);

  // The victim noticed it had lost its job rather than the count being right by luck.
  assert.ok((await workerMetric(victim.workerUrl, 'gantry_worker_fenced_jobs_total')) >= 1, victim.output());
  assert.equal(victim.child.exitCode, null, 'the victim is alive and serving');
});
