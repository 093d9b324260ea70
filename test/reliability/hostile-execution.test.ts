/**
 * Hostile execution (issue 10, "Killable execution" and "Threads by the operator"), against real `gantry start`
 * processes (API + supervised worker), real Redis and real onnxruntime:
 * - a never-ending run (slow.onnx, 2^62 iterations) is stopped at GANTRY_MAX_RUN_MS for real: the worker restarts
 *   itself, its CPU stops, the caller is answered, a well-behaved caller of another model is answered, and after
 *   GANTRY_MAX_RUN_STRIKES stopped runs the version is UNAVAILABLE with the reason;
 * - models whose warm-up never ends (forever.onnx) cannot block other uploads and end UNAVAILABLE at
 *   GANTRY_LOAD_DEADLINE_MS;
 * - deleting a model during its never-ending run stops the CPU within about a second;
 * - GANTRY_MAX_THREADS_PER_WORKER refuses a 1,024-thread configuration and keeps the worker's threads bounded.
 *
 * onnxruntime's runs cannot be interrupted (see src/worker/run-watchdog.ts), so "stopped" always means the worker
 * process ended itself and the supervisor started a new one; the API process never changes.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fixturePath, startGantry, uploadModel, type GantryProcess } from '../helpers/gantry-process.js';
import {
  Cleanup,
  childPids,
  countStatuses,
  cpuTimeMs,
  describeReply,
  infer,
  isAlive,
  mlpRequest,
  peakRssBytes,
  putConfig,
  resetPeakRss,
  sharedDeployment,
  sleep,
  timedCall,
  waitUntil,
  type TimedReply,
} from '../helpers/reliability-harness.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

const megabyte = 1024 * 1024;
/** Peak RSS bounds (VmHWM) for these cases: measured API ~110–140 MB, worker ~150–230 MB on the dev box. */
const apiPeakBoundBytes = 350 * megabyte;
const workerPeakBoundBytes = 600 * megabyte;

/** A slow.onnx request that would run ~530,000 years: 2^62 iterations (as a string: beyond 2^53). */
function neverEndingRequest(timeoutMs: number): unknown {
  return {
    parameters: { timeout: timeoutMs * 1000 },
    inputs: [
      { name: 'iterations', datatype: 'INT64', shape: [], data: ['4611686018427387904'] },
      { name: 'x', datatype: 'FP32', shape: [1, 256], data: new Array<number>(256).fill(0.5) },
    ],
  };
}

async function threadCount(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/Threads:\s+(\d+)/.exec(status)?.[1] ?? NaN);
}

async function startWithWorker(env: Record<string, string>): Promise<{ gantry: GantryProcess; workerPid: number }> {
  const gantry = await startGantry({ env: { GANTRY_JOB_LOCK_MS: '2000', GANTRY_SHUTDOWN_TIMEOUT_MS: '3000', ...env } });
  cleanup.add(() => gantry.cleanup());
  // Every worker the supervisor ever starts is SIGKILLed at cleanup, not only the first.
  cleanup.add(() => {
    for (const pid of childPids(gantry.child.pid!)) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  });
  const workerPid = childPids(gantry.child.pid!)[0];
  assert.ok(workerPid !== undefined, 'the start command has a worker child');
  return { gantry, workerPid };
}

/** The supervisor's current worker, once it is a different process from `previous` and answers /ready. */
async function nextWorker(gantry: GantryProcess, previous: number, timeoutMs: number): Promise<number> {
  let next: number | undefined;
  await waitUntil(
    async () => {
      next = childPids(gantry.child.pid!).find((pid) => pid !== previous);
      return next !== undefined && (await fetch(`${gantry.workerUrl}/ready`)).status === 200;
    },
    timeoutMs,
    'the supervisor to start a new worker',
    50,
  );
  return next!;
}

/** Samples a process's peak RSS until it ends (a worker that restarts itself takes its VmHWM with it). */
function trackPeak(pid: number): { peak: () => number; stop: () => void } {
  let peak = 0;
  const timer = setInterval(() => {
    peakRssBytes(pid).then(
      (bytes) => (peak = Math.max(peak, bytes)),
      () => undefined,
    );
  }, 100);
  timer.unref();
  cleanup.add(() => clearInterval(timer));
  return { peak: () => peak, stop: () => clearInterval(timer) };
}

/** CPU the process used over `ms` (it is not spinning when this is well under `ms`). */
async function cpuOver(pid: number, ms: number): Promise<number> {
  const before = await cpuTimeMs(pid);
  await sleep(ms);
  return (await cpuTimeMs(pid)) - before;
}

/** A well-behaved caller: tiny-mlp every `everyMs` until stopped; a 503 is retried (counted) until a 200. */
function wellBehavedCaller(baseUrl: string, model: string, everyMs: number) {
  const finals: TimedReply[] = [];
  const retried: TimedReply[] = [];
  let running = true;
  const pending: Promise<void>[] = [];
  const loop = (async () => {
    for (let index = 0; running; index++) {
      pending.push(
        (async () => {
          for (let attempt = 0; attempt < 20; attempt++) {
            const reply = await infer(baseUrl, model, mlpRequest(index), 30_000);
            if (reply.status === 503) {
              retried.push(reply);
              await sleep(Number(reply.headers.get('retry-after') ?? 1) * 250);
              continue;
            }
            finals.push(reply);
            return;
          }
        })(),
      );
      await sleep(everyMs);
    }
  })();
  const stop = async () => {
    running = false;
    await loop;
    await Promise.all(pending);
  };
  // A failed test must not leave the caller running.
  cleanup.add(() => {
    running = false;
  });
  return { finals, retried, stop };
}

test(
  'a never-ending run is stopped at GANTRY_MAX_RUN_MS: caller answered, CPU stops, others served, UNAVAILABLE after the strikes',
  { timeout: 120_000 },
  async () => {
    const maxRunMs = 2000;
    const { gantry, workerPid } = await startWithWorker({ GANTRY_MAX_RUN_MS: String(maxRunMs), GANTRY_MAX_RUN_STRIKES: '2' });
    const apiPid = gantry.child.pid!;
    assert.equal((await uploadModel(gantry.baseUrl, 'slow', fixturePath('slow.onnx'), '?wait=true')).status, 201);
    assert.equal((await uploadModel(gantry.baseUrl, 'mlp', fixturePath('tiny-mlp.onnx'), '?wait=true')).status, 201);
    await resetPeakRss(apiPid);
    await resetPeakRss(workerPid);
    const workerPeak = trackPeak(workerPid);

    // Strike 1: the caller's own timeout (1 s) answers it first; the run goes on inside onnxruntime until the
    // watchdog stops it at 2 s, and the worker ends itself.
    const caller = wellBehavedCaller(gantry.baseUrl, 'mlp', 200);
    const sentAt = Date.now();
    const hostile = await infer(gantry.baseUrl, 'slow', neverEndingRequest(1000), 10_000);
    assert.equal(hostile.status, 504, describeReply(hostile));
    assert.equal(hostile.body?.code, 'DEADLINE_EXCEEDED');
    // A quarter of a core at least, even on a crowded 2-core box: the run goes on after its caller's 504.
    const busyCpu = await cpuOver(workerPid, 400);
    assert.ok(busyCpu > 100, `the run is still going inside onnxruntime after the caller's 504 (worker CPU ${busyCpu} ms in 400 ms)`);
    await waitUntil(() => !isAlive(workerPid), maxRunMs + 6000, 'the worker running the never-ending model to end', 20);
    const endedAfterMs = Date.now() - sentAt;
    workerPeak.stop();
    const secondWorker = await nextWorker(gantry, workerPid, 20_000);
    const quietCpu = await cpuOver(secondWorker, 1000);
    await caller.stop();
    console.log(
      `# run deadline: 504 after ${hostile.ms.toFixed(0)} ms; worker ${workerPid} ended ${endedAfterMs} ms after the send (limit ${maxRunMs} ms); ` +
        `new worker ${secondWorker} used ${quietCpu} ms CPU in 1 s; well-behaved caller: ${JSON.stringify(countStatuses(caller.finals))}, ` +
        `${caller.retried.length} retried 503(s), slowest ${Math.max(...caller.finals.map((reply) => reply.ms)).toFixed(0)} ms; worker peak RSS ${(workerPeak.peak() / megabyte).toFixed(0)} MB`,
    );
    // The run may go on at most GANTRY_MAX_RUN_MS plus the watchdog's tick and the restart's bound (2 s).
    assert.ok(endedAfterMs < maxRunMs + 4000, `the stuck worker ended ${endedAfterMs} ms after the send`);
    assert.ok(quietCpu < 500, `the new worker is not running the stopped request again (${quietCpu} ms CPU in 1 s)`);
    assert.ok(
      caller.finals.length > 5 && caller.finals.every((reply) => reply.status === 200),
      `well-behaved caller: ${caller.finals
        .filter((reply) => reply.status !== 200)
        .map(describeReply)
        .join('; ')}`,
    );

    // Strike 2, with the caller's own timeout long: the stop itself answers, and the version goes UNAVAILABLE.
    const second = await infer(gantry.baseUrl, 'slow', neverEndingRequest(60_000), 20_000);
    assert.equal(second.status, 504, describeReply(second));
    assert.match(second.body.error, /GANTRY_MAX_RUN_MS \(2000 ms\)/);
    assert.ok(second.ms < maxRunMs + 2000, `answered by the stop itself, ${second.ms.toFixed(0)} ms after the send`);
    await waitUntil(() => !isAlive(secondWorker), 6000, 'the second worker to end', 20);
    const versions = (await timedCall(`${gantry.baseUrl}/v1/models/slow`)).body.versions;
    assert.equal(versions[0].state, 'UNAVAILABLE', JSON.stringify(versions));
    assert.match(versions[0].reason, /stopped 2 times for running longer than GANTRY_MAX_RUN_MS/);
    const refused = await infer(gantry.baseUrl, 'slow', neverEndingRequest(60_000), 10_000);
    assert.equal(refused.status, 503, describeReply(refused));

    const thirdWorker = await nextWorker(gantry, secondWorker, 20_000);
    const served = await infer(gantry.baseUrl, 'mlp', mlpRequest(99), 20_000);
    assert.equal(served.status, 200, describeReply(served));
    assert.ok(isAlive(apiPid) && gantry.child.exitCode === null, 'the API process never restarts');
    assert.deepEqual(childPids(apiPid), [thirdWorker], 'exactly one worker, the latest');
    const apiPeak = await peakRssBytes(apiPid);
    console.log(`# run deadline: API peak RSS ${(apiPeak / megabyte).toFixed(0)} MB`);
    assert.ok(apiPeak < apiPeakBoundBytes, `API peak RSS ${apiPeak}`);
    assert.ok(workerPeak.peak() < workerPeakBoundBytes, `worker peak RSS ${workerPeak.peak()}`);
  },
);

test('models whose warm-up never ends cannot block other uploads and end UNAVAILABLE at GANTRY_LOAD_DEADLINE_MS', { timeout: 120_000 }, async () => {
  const loadDeadlineMs = 3000;
  const { gantry, workerPid } = await startWithWorker({ GANTRY_LOAD_DEADLINE_MS: String(loadDeadlineMs), GANTRY_WORKER_CONCURRENCY: '4' });
  const apiPid = gantry.child.pid!;
  await resetPeakRss(apiPid);
  const workerPeak = trackPeak(workerPid);
  const names = ['forever-1', 'forever-2', 'forever-3', 'forever-4'];
  const startedAt = Date.now();
  for (const name of names) {
    const upload = await uploadModel(gantry.baseUrl, name, fixturePath('forever.onnx'), '?wait=false');
    assert.equal(upload.status, 202, JSON.stringify(upload.body));
  }
  // Four never-ending loads used to hold all of GANTRY_WORKER_CONCURRENCY's 4 slots: this upload stayed LOADING.
  const tiny = await uploadModel(gantry.baseUrl, 'mlp', fixturePath('tiny-mlp.onnx'), '?wait=false');
  assert.equal(tiny.status, 202, JSON.stringify(tiny.body));
  const stateOf = async (name: string) => (await timedCall(`${gantry.baseUrl}/v1/models/${name}`)).body?.versions?.[0];
  await waitUntil(async () => (await stateOf('mlp'))?.state === 'READY', loadDeadlineMs, 'tiny-mlp to be READY before the forever loads are stopped', 20);
  const tinyReadyAfterMs = Date.now() - startedAt;
  const stillLoading = await Promise.all(names.map(stateOf));
  assert.ok(
    stillLoading.every((version) => version.state === 'LOADING'),
    `tiny-mlp was READY while the never-ending loads were still going: ${JSON.stringify(stillLoading.map((version) => version.state))}`,
  );

  await waitUntil(
    async () => (await Promise.all(names.map(stateOf))).every((version) => version.state === 'UNAVAILABLE'),
    loadDeadlineMs + 10_000,
    'the forever versions to end UNAVAILABLE',
    100,
  );
  const endedAfterMs = Date.now() - startedAt;
  for (const version of await Promise.all(names.map(stateOf)))
    assert.match(version.reason, /did not load and warm up within GANTRY_LOAD_DEADLINE_MS \(3000 ms\)/);
  await waitUntil(() => !isAlive(workerPid), 6000, 'the worker with the stuck loads to end', 20);
  workerPeak.stop();
  const secondWorker = await nextWorker(gantry, workerPid, 20_000);
  const quietCpu = await cpuOver(secondWorker, 1000);
  const served = await infer(gantry.baseUrl, 'mlp', mlpRequest(3), 20_000);
  assert.equal(served.status, 200, describeReply(served));
  // The re-run of a stopped load (if its job was not completed in time) must find the version decided.
  assert.ok(quietCpu < 500, `the new worker does not load the forever models again (${quietCpu} ms CPU in 1 s)`);
  const upload = await uploadModel(gantry.baseUrl, 'mlp-2', fixturePath('tiny-mlp.onnx'), '?wait=true');
  assert.equal(upload.status, 201, JSON.stringify(upload.body));
  const apiPeak = await peakRssBytes(apiPid);
  console.log(
    `# load deadline: tiny-mlp READY ${tinyReadyAfterMs} ms after the first forever upload; forever versions UNAVAILABLE after ${endedAfterMs} ms ` +
      `(deadline ${loadDeadlineMs} ms); new worker ${quietCpu} ms CPU in 1 s; peak RSS API ${(apiPeak / megabyte).toFixed(0)} MB, worker ${(workerPeak.peak() / megabyte).toFixed(0)} MB`,
  );
  assert.ok(tinyReadyAfterMs < loadDeadlineMs, `tiny-mlp READY after ${tinyReadyAfterMs} ms`);
  assert.ok(isAlive(apiPid) && gantry.child.exitCode === null, 'the API process never restarts');
  assert.ok(apiPeak < apiPeakBoundBytes, `API peak RSS ${apiPeak}`);
  assert.ok(workerPeak.peak() < workerPeakBoundBytes, `worker peak RSS ${workerPeak.peak()}`);
});

test('deleting a model during its never-ending run stops the CPU within about a second', { timeout: 120_000 }, async () => {
  // GANTRY_MAX_RUN_MS well beyond the test: only the delete can stop this run.
  const { gantry, workerPid } = await startWithWorker({ GANTRY_MAX_RUN_MS: '600000' });
  const apiPid = gantry.child.pid!;
  assert.equal((await uploadModel(gantry.baseUrl, 'slow', fixturePath('slow.onnx'), '?wait=true')).status, 201);
  assert.equal((await uploadModel(gantry.baseUrl, 'mlp', fixturePath('tiny-mlp.onnx'), '?wait=true')).status, 201);
  await resetPeakRss(apiPid);
  const workerPeak = trackPeak(workerPid);
  const hostile = infer(gantry.baseUrl, 'slow', neverEndingRequest(60_000), 60_000);
  await waitUntil(async () => (await cpuOver(workerPid, 200)) > 50, 10_000, 'the never-ending run to be using CPU', 0);
  const deleted = await timedCall(`${gantry.baseUrl}/v1/models/slow`, { method: 'DELETE' });
  assert.equal(deleted.status, 204, describeReply(deleted));
  const deletedAt = deleted.finishedAt;
  await waitUntil(() => !isAlive(workerPid), 10_000, 'the worker running the deleted model to end', 10);
  const stoppedAfterMs = Date.now() - deletedAt;
  const answer = await hostile;
  const secondWorker = await nextWorker(gantry, workerPid, 20_000);
  const quietCpu = await cpuOver(secondWorker, 1000);
  const served = await infer(gantry.baseUrl, 'mlp', mlpRequest(5), 20_000);
  console.log(
    `# delete: worker ended ${stoppedAfterMs} ms after the DELETE answered; the never-ending caller got ${describeReply(answer)}; new worker ${quietCpu} ms CPU in 1 s`,
  );
  // The bound is a second; the slack is for a loaded 2-core box (grace 500 ms + the restart).
  assert.ok(stoppedAfterMs < 2000, `the deleted model's CPU stopped ${stoppedAfterMs} ms after the delete`);
  assert.ok(answer.status === 503 || answer.status === 504, describeReply(answer));
  assert.ok(answer.ms < 10_000, `the caller of the deleted model is answered, not left to its 60 s timeout (${answer.ms.toFixed(0)} ms)`);
  assert.ok(quietCpu < 500, `the new worker is idle (${quietCpu} ms CPU in 1 s)`);
  assert.equal(served.status, 200, describeReply(served));
  assert.ok(isAlive(apiPid) && gantry.child.exitCode === null, 'the API process never restarts');
  workerPeak.stop();
  const apiPeak = await peakRssBytes(apiPid);
  console.log(`# delete: peak RSS API ${(apiPeak / megabyte).toFixed(0)} MB, worker ${(workerPeak.peak() / megabyte).toFixed(0)} MB`);
  assert.ok(apiPeak < apiPeakBoundBytes, `API peak RSS ${apiPeak}`);
  assert.ok(workerPeak.peak() < workerPeakBoundBytes, `worker peak RSS ${workerPeak.peak()}`);
});

test(
  'GANTRY_MAX_THREADS_PER_WORKER: a 1,024-thread config is refused (400), configs within it work, and the worker stays under it',
  { timeout: 120_000 },
  async () => {
    const budget = 12;
    const { gantry, workerPid } = await startWithWorker({ GANTRY_MAX_THREADS_PER_WORKER: String(budget), GANTRY_MAX_RUN_MS: '600000' });
    const apiPid = gantry.child.pid!;
    await sleep(500);
    // What the worker runs besides onnxruntime's threads: Node's own (main, V8 platform, libuv) and onnxruntime's
    // environment. Measured before any model is loaded.
    const baseline = await threadCount(workerPid);
    let peakThreads = baseline;
    const sampler = setInterval(() => {
      threadCount(workerPid).then(
        (count) => (peakThreads = Math.max(peakThreads, count)),
        () => undefined,
      );
    }, 20);
    sampler.unref();
    try {
      for (const name of ['a', 'b', 'c']) assert.equal((await uploadModel(gantry.baseUrl, name, fixturePath('tiny-mlp.onnx'), '?wait=true')).status, 201);
      assert.equal((await uploadModel(gantry.baseUrl, 'slow', fixturePath('slow.onnx'), '?wait=true')).status, 201);

      const huge = await putConfig(gantry.baseUrl, 'a', { instances: 16, intraOpThreads: 64, interOpThreads: 64 });
      assert.equal(huge.status, 400, describeReply(huge));
      assert.match(huge.body.error, /needs 2048 onnxruntime threads .*GANTRY_MAX_THREADS_PER_WORKER \(12\)/);

      // Within the budget alone (8 and 6 threads), but not together with each other: the worker unloads the least
      // recently used idle model to make room.
      assert.equal((await putConfig(gantry.baseUrl, 'a', { instances: 2, intraOpThreads: 4 })).status, 200);
      assert.equal((await putConfig(gantry.baseUrl, 'b', { instances: 2, intraOpThreads: 3 })).status, 200);
      assert.equal((await putConfig(gantry.baseUrl, 'c', { instances: 1, intraOpThreads: 1 })).status, 200);
      assert.equal((await putConfig(gantry.baseUrl, 'slow', { instances: 1, intraOpThreads: 8 })).status, 200);
      for (const name of ['a', 'b', 'c', 'a', 'b', 'c']) {
        const reply = await infer(gantry.baseUrl, name, mlpRequest(1), 20_000);
        assert.equal(reply.status, 200, `${name}: ${describeReply(reply)}`);
      }

      // A busy model cannot be unloaded: with slow (8 threads) inside a run, a (8 threads) does not fit.
      const running = infer(
        gantry.baseUrl,
        'slow',
        {
          inputs: [
            { name: 'iterations', datatype: 'INT64', shape: [], data: [1_500_000] },
            { name: 'x', datatype: 'FP32', shape: [1, 256], data: new Array<number>(256).fill(0.5) },
          ],
        },
        60_000,
      );
      await waitUntil(async () => (await cpuOver(workerPid, 200)) > 50, 20_000, 'the slow run to be using CPU', 0);
      const refused = await infer(gantry.baseUrl, 'a', mlpRequest(2), 20_000);
      assert.equal(refused.status, 503, describeReply(refused));
      assert.match(refused.body.error, /needs 8 onnxruntime threads.*GANTRY_MAX_THREADS_PER_WORKER/);
      assert.equal((await running).status, 200);
      // Once slow is idle again it can be unloaded for a.
      const retried = await infer(gantry.baseUrl, 'a', mlpRequest(2), 20_000);
      assert.equal(retried.status, 200, describeReply(retried));
      const metrics = await (await fetch(`${gantry.workerUrl}/metrics`)).text();
      assert.match(metrics, /gantry_worker_limit_trips_total\{limit="thread_budget"\} [1-9]/);
      // Others' uploads still work.
      assert.equal((await uploadModel(gantry.baseUrl, 'd', fixturePath('tiny-mlp.onnx'), '?wait=true')).status, 201);
    } finally {
      clearInterval(sampler);
    }
    // Overhead beyond the baseline: onnxruntime's environment (1 thread, started with the first session) and up to
    // 4 libuv pool threads, should the first file-system work come after the baseline was read.
    const overhead = 5;
    const [apiPeak, workerPeak] = [await peakRssBytes(apiPid), await peakRssBytes(workerPid)];
    console.log(
      `# thread budget ${budget}: worker threads baseline ${baseline}, peak ${peakThreads} (bound ${baseline + budget + overhead}); ` +
        `peak RSS API ${(apiPeak / megabyte).toFixed(0)} MB, worker ${(workerPeak / megabyte).toFixed(0)} MB`,
    );
    assert.ok(apiPeak < apiPeakBoundBytes, `API peak RSS ${apiPeak}`);
    assert.ok(workerPeak < workerPeakBoundBytes, `worker peak RSS ${workerPeak}`);
    assert.ok(peakThreads <= baseline + budget + overhead, `worker threads peaked at ${peakThreads}`);
    assert.equal(childPids(apiPid).length, 1);
    assert.deepEqual(childPids(apiPid), [workerPid], 'the worker never restarted');
  },
);

test(
  'SIGTERM to a standalone worker inside a never-ending run ends it within GANTRY_SHUTDOWN_TIMEOUT_MS (Node alone would hang at exit)',
  { timeout: 60_000 },
  async () => {
    const deployment = await sharedDeployment(cleanup, 'stuck-shutdown');
    const env = { GANTRY_MAX_RUN_MS: '600000', GANTRY_SHUTDOWN_TIMEOUT_MS: '2000', GANTRY_JOB_LOCK_MS: '2000' };
    const api = await startGantry({ command: 'api', ...deployment, env });
    cleanup.add(() => api.stop('SIGKILL'));
    const worker = await startGantry({ command: 'worker', ...deployment, env });
    cleanup.add(() => worker.stop('SIGKILL'));
    assert.equal((await uploadModel(api.baseUrl, 'slow', fixturePath('slow.onnx'), '?wait=true')).status, 201);
    const hostile = infer(api.baseUrl, 'slow', neverEndingRequest(60_000), 60_000);
    await waitUntil(async () => (await cpuOver(worker.child.pid!, 200)) > 50, 10_000, 'the never-ending run to be using CPU', 0);
    const signalledAt = Date.now();
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      worker.child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    worker.child.kill('SIGTERM');
    const outcome = await Promise.race([exited, sleep(15_000).then(() => undefined)]);
    const exitedAfterMs = Date.now() - signalledAt;
    console.log(`# stuck shutdown: worker exited ${exitedAfterMs} ms after SIGTERM with ${JSON.stringify(outcome)}`);
    assert.ok(outcome !== undefined, 'the worker exited (it used to hang at exit, joining the stuck thread)');
    assert.equal(outcome.signal, 'SIGKILL', 'it ended itself by SIGKILL: a thread inside onnxruntime blocks any normal exit');
    assert.ok(isAlive(api.child.pid!), 'the API stays up');
    void hostile;
  },
);
