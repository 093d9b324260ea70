/**
 * Issue 16, first "Done when": a batch file of 2,000 lines survives kill -9 of the API, of the worker and of Redis
 * (AOF, fsync always), one after the other while it runs. After each restart the batch moves on by itself, and at
 * the end the results file has exactly one line per input line, in input order, each answered with what
 * synchronous inference answers for the same request.
 *
 * The model is slow.onnx with a few thousand loop iterations per line (~3.6 µs each): about 15–20 ms a line on a
 * 2-core box, so the batch runs long enough (~30–40 s of compute) for every kill to land in the middle of it.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { fixturePath, startGantry, uploadModel, withAdminKey, type GantryProcess, type StartOptions } from '../helpers/gantry-process.js';
import { Cleanup, describeReply, floats, infer, sleep, startPrivateRedis, timedCall, waitUntil, type TimedReply } from '../helpers/reliability-harness.js';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { JsonBody } from '../../support/json-body.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

const model = 'slow';
const lineCount = 2000;
/** Loop iterations of every line: ~15 ms of compute each on the dev box (3.6 µs an iteration). */
const iterations = 4000;
/**
 * Distinct inputs the lines cycle through (line i uses input i mod distinctInputs). Prime, so that no whole-chunk
 * shift of answers (chunks are 64 lines, GANTRY_BATCH_CHUNK_LINES) lands on a line with the same input: a line
 * answered with another line's output is caught unless the two are a multiple of 127 lines apart.
 */
const distinctInputs = 127;
/** Lines per queue job (GANTRY_BATCH_CHUNK_LINES, set so the count of chunks below is known). */
const chunkLines = 64;

interface BatchStatus {
  id: string;
  state: string;
  total: number;
  succeeded: number;
  failed: number;
  running: number;
  attempts: number;
}

function lineRequest(index: number): { id: string; inputs: unknown[] } {
  return {
    id: `line-${index}`,
    inputs: [
      { name: 'iterations', datatype: 'INT64', shape: [], data: [iterations] },
      { name: 'x', datatype: 'FP32', shape: [1, 256], data: floats(1000 + (index % distinctInputs), 256) },
    ],
  };
}

async function batchStatus(baseUrl: string, id: string): Promise<BatchStatus> {
  const reply = await timedCall(`${baseUrl}/v1/batches/${id}`, { timeoutMs: 5000 });
  if (reply.status !== 200) throw new Error(`batch status: ${describeReply(reply)}`);
  return reply.body as BatchStatus;
}

/** The status, or undefined while the deployment cannot answer (a process or Redis is down). */
async function tryBatchStatus(baseUrl: string, id: string): Promise<BatchStatus | undefined> {
  try {
    return await batchStatus(baseUrl, id);
  } catch {
    return undefined;
  }
}

/** Lines done (succeeded or failed) once the batch's status answers. */
async function doneLines(baseUrl: string, id: string): Promise<number> {
  const status = await batchStatus(baseUrl, id);
  return status.succeeded + status.failed;
}

/** Waits until at least `lines` lines are done, and asserts the batch is not finished yet (the next kill lands mid-run). */
async function waitForProgress(baseUrl: string, id: string, lines: number, what: string): Promise<number> {
  let done = 0;
  await waitUntil(
    async () => {
      done = await doneLines(baseUrl, id);
      return done >= lines;
    },
    120_000,
    `${lines} lines done (${what})`,
    100,
  );
  const status = await batchStatus(baseUrl, id);
  assert.notEqual(status.state, 'succeeded', `the batch finished before ${what}: pick more iterations per line`);
  return status.succeeded + status.failed;
}

/** Waits until more than `before` lines are done: the batch moves again after a restart. */
async function waitUntilMoving(baseUrl: string, id: string, before: number, what: string): Promise<number> {
  let done = before;
  const waitedMs = await waitUntil(
    async () => {
      const status = await tryBatchStatus(baseUrl, id);
      if (status === undefined) return false;
      done = status.succeeded + status.failed;
      return done > before;
    },
    60_000,
    `the batch to move again after ${what} (stuck at ${before} lines)`,
    100,
  );
  console.log(`# batch-crash: moving again ${waitedMs} ms after ${what} came back (${done} lines done)`);
  return done;
}

/** How long the batch may go without a line done before it counts as stuck (a restart and a stalled lock take seconds). */
const stuckAfterMs = 45_000;

/** Waits until the batch ends; fails early when no line is done for stuckAfterMs (lines lost: it would never end). */
async function waitForEnd(baseUrl: string, id: string): Promise<BatchStatus> {
  let last = await batchStatus(baseUrl, id);
  let movedAt = Date.now();
  while (['receiving', 'queued', 'running'].includes(last.state)) {
    assert.ok(Date.now() - movedAt < stuckAfterMs, `the batch is stuck: no line done for ${stuckAfterMs} ms (${JSON.stringify(last)})`);
    await sleep(250);
    const status = (await tryBatchStatus(baseUrl, id)) ?? last;
    if (status.succeeded + status.failed > last.succeeded + last.failed) movedAt = Date.now();
    last = status;
  }
  return last;
}

/** The results file as lines of JSON. */
async function resultLines(baseUrl: string, id: string): Promise<JsonBody[]> {
  const response = await fetch(`${baseUrl}/v1/batches/${id}/results`, { headers: withAdminKey(), signal: AbortSignal.timeout(60_000) });
  const text = await response.text();
  assert.equal(response.status, 200, text.slice(0, 500));
  assert.match(response.headers.get('content-type') ?? '', /^application\/x-ndjson/);
  return text
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as JsonBody);
}

test(
  'a 2,000-line batch survives kill -9 of the API, the worker and Redis in turn: each line answered once, as /infer answers',
  { timeout: 300_000 },
  async () => {
    const redis = await startPrivateRedis();
    cleanup.add(() => redis.cleanup());
    const dataDirectory = await mkdtemp(path.join(os.tmpdir(), 'gantry-batch-crash-'));
    cleanup.add(() => rm(dataDirectory, { recursive: true, force: true }));
    // A short job lock, so the killed worker's chunk is found stalled and re-run within seconds.
    const env = { GANTRY_JOB_LOCK_MS: '2000', GANTRY_SHUTDOWN_TIMEOUT_MS: '3000', GANTRY_BATCH_CHUNK_LINES: String(chunkLines) };
    const shared: StartOptions = { prefix: `rel-batch-crash-${randomBytes(4).toString('hex')}`, dataDirectory, redisUrl: redis.url, env };
    const processes: GantryProcess[] = [];
    cleanup.add(() => Promise.all(processes.map((process) => process.stop('SIGKILL'))));
    const start = async (command: 'api' | 'worker') => {
      const started = await startGantry({ ...shared, command });
      processes.push(started);
      return started;
    };
    let api = await start('api');
    let worker = await start('worker');

    const upload = await uploadModel(api.baseUrl, model, fixturePath('slow.onnx'), '?wait=true');
    assert.equal(upload.status, 201, JSON.stringify(upload.body));

    // What synchronous inference answers for each distinct input, before anything is killed.
    const syncStarted = Date.now();
    const expected: JsonBody[] = [];
    for (let input = 0; input < distinctInputs; input++) {
      const reply: TimedReply = await infer(api.baseUrl, model, lineRequest(input));
      assert.equal(reply.status, 200, describeReply(reply));
      expected.push(reply.body);
    }
    console.log(`# batch-crash: ${distinctInputs} synchronous answers in ${Date.now() - syncStarted} ms`);

    const body = Array.from({ length: lineCount }, (_, index) => JSON.stringify(lineRequest(index))).join('\n') + '\n';
    const submitted = await timedCall(`${api.baseUrl}/v1/models/${model}/batches`, {
      body,
      headers: { 'content-type': 'application/x-ndjson' },
      timeoutMs: 60_000,
    });
    assert.equal(submitted.status, 202, describeReply(submitted));
    const batchId = submitted.body.id as string;
    assert.equal(typeof batchId, 'string');
    assert.equal(submitted.body.total, lineCount, describeReply(submitted));
    const runStarted = Date.now();

    // 1. The API.
    const atApiKill = await waitForProgress(api.baseUrl, batchId, 200, 'the API kill');
    api.child.kill('SIGKILL');
    console.log(`# batch-crash: API killed with ${atApiKill}/${lineCount} lines done`);
    await sleep(500);
    api = await start('api');
    const afterApi = await waitUntilMoving(api.baseUrl, batchId, atApiKill, 'the API restart');

    // 2. The worker.
    const atWorkerKill = await waitForProgress(api.baseUrl, batchId, Math.max(afterApi + 150, 700), 'the worker kill');
    worker.child.kill('SIGKILL');
    console.log(`# batch-crash: worker killed with ${atWorkerKill}/${lineCount} lines done`);
    await sleep(500);
    // Done lines may still rise a little: answers the dead worker wrote just before it died.
    const beforeWorkerRestart = await doneLines(api.baseUrl, batchId);
    worker = await start('worker');
    const afterWorker = await waitUntilMoving(api.baseUrl, batchId, beforeWorkerRestart, 'the worker restart');

    // 3. Redis (the API and the worker stay up and must reconnect by themselves).
    const atRedisKill = await waitForProgress(api.baseUrl, batchId, Math.max(afterWorker + 150, 1200), 'the Redis kill');
    redis.process().kill('SIGKILL');
    console.log(`# batch-crash: Redis killed with ${atRedisKill}/${lineCount} lines done`);
    await sleep(1000);
    await redis.restart();
    await waitUntilMoving(api.baseUrl, batchId, atRedisKill, 'the Redis restart');

    const final = await waitForEnd(api.baseUrl, batchId);
    console.log(`# batch-crash: finished ${JSON.stringify(final)} ${Date.now() - runStarted} ms after submission`);
    assert.equal(final.state, 'succeeded', JSON.stringify(final));
    assert.equal(final.total, lineCount);
    assert.equal(final.succeeded, lineCount, JSON.stringify(final));
    assert.equal(final.failed, 0, JSON.stringify(final));
    assert.equal(final.running, 0, JSON.stringify(final));
    // The killed worker held chunks it had started (it runs several at once): they were started again, so the
    // exactly-once check below is over lines that really ran twice.
    const chunks = Math.ceil(lineCount / chunkLines);
    console.log(`# batch-crash: ${final.attempts} chunk starts for ${chunks} chunks`);
    assert.ok(final.attempts > chunks, `some chunk was started again after a kill (${final.attempts} starts, ${chunks} chunks)`);

    const results = await resultLines(api.baseUrl, batchId);
    assert.equal(results.length, lineCount, `the results file has ${results.length} lines for ${lineCount} input lines`);
    const mismatches: string[] = [];
    results.forEach((line, index) => {
      const id = `line-${index}`;
      if (line.id !== id) mismatches.push(`results line ${index} is for ${JSON.stringify(line.id)}, expected ${id}`);
      else if (line.error !== undefined) mismatches.push(`${id} failed: ${JSON.stringify(line.error)}`);
      else {
        // The synchronous answer for the same input, with this line's request id echoed (as /infer echoes it).
        const want = { ...expected[index % distinctInputs], id };
        try {
          assert.deepStrictEqual(line.response, want);
        } catch {
          mismatches.push(`${id}: ${JSON.stringify(line.response).slice(0, 200)} is not the synchronous ${JSON.stringify(want).slice(0, 200)}`);
        }
      }
    });
    assert.deepEqual(mismatches.slice(0, 20), [], `${mismatches.length} of ${lineCount} result lines are wrong`);
    // The restarted processes rode out the Redis kill themselves (no restart of theirs hid a reconnect failure).
    assert.equal(api.child.exitCode, null, 'the API restarted after its kill is still running');
    assert.equal(worker.child.exitCode, null, 'the worker restarted after its kill is still running');
  },
);
