/**
 * Schedule policy extension (shared/reference/triton-protocol/extension_schedule_policy.md, "Dynamic Batcher")
 * and client disconnects, against a real gantry. slow.onnx (~3.6 µs per iteration) keeps the model's single
 * instance busy so later requests wait in the queue.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { JsonBody } from '../../support/json-body.js';
import { startGantry, uploadModel, fixturePath, type GantryProcess } from '../helpers/gantry-process.js';
import { assertErrorBody, http, inferJson, modelStats, pollFor, sleep, type Reply } from './support.js';

let gantry: GantryProcess;
let base: string;

/** ~2 s of work on the dev box; long enough to queue requests behind it. */
const busyIterations = 600_000;

const slowRequest = (iterations: number, parameters?: Record<string, unknown>) => ({
  ...(parameters === undefined ? {} : { parameters }),
  inputs: [
    { name: 'iterations', shape: [], datatype: 'INT64', data: [iterations] },
    { name: 'x', shape: [1, 256], datatype: 'FP32', data: new Array(256).fill(0.1) },
  ],
});

before(async () => {
  gantry = await startGantry();
  base = gantry.baseUrl;
  for (const name of ['slow-timeout', 'slow-abort', 'slow-priority']) {
    const reply = await uploadModel(base, name, fixturePath('slow.onnx'));
    assert.equal(reply.status, 201, `upload ${name}: ${JSON.stringify(reply.body)}`);
    // One instance, no batching: queued requests run strictly one after another.
    const put = await http(base, 'PUT', `/v1/models/${name}/config`, { instances: 1, maxBatchSize: 0 });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    const ready = await pollFor(
      () => http(base, 'GET', `/v2/models/${name}/ready`),
      (value) => value.status === 200,
      10_000,
    );
    assert.equal(ready.status, 200);
    // Warm-up, so session creation does not count as queue time below.
    assert.equal((await inferJson(base, name, slowRequest(1))).status, 200);
  }
});

after(async () => {
  await gantry?.cleanup();
});

/** Waits until the worker's counters settle at `success` successful requests, then returns the stats. */
async function settledStats(model: string, success: number): Promise<JsonBody> {
  await pollFor(
    () => modelStats(base, model),
    (value) => value.inference_stats.success.count >= success,
  );
  await sleep(150); // anything late would show up now
  return modelStats(base, model);
}

describe('schedule policy: timeout (µs)', () => {
  test('a request still queued at its timeout answers 504 DEADLINE_EXCEEDED and never runs', async () => {
    const model = 'slow-timeout';
    const before = await settledStats(model, 1);
    const busy = inferJson(base, model, slowRequest(busyIterations));
    await sleep(300);

    // "timeout": int64 microseconds; 200 000 µs = 200 ms.
    const timedOut = await inferJson(base, model, slowRequest(1, { timeout: 200_000 }));
    assertErrorBody(timedOut, 504, 'DEADLINE_EXCEEDED');
    assert.ok(timedOut.elapsedMs >= 150, `answered after ${timedOut.elapsedMs} ms, before its deadline`);
    assert.ok(timedOut.elapsedMs < 1_000, `answered after ${timedOut.elapsedMs} ms`);

    const busyReply = await busy;
    assert.equal(busyReply.status, 200, JSON.stringify(busyReply.body));
    // A marker behind it: with one instance, a not-dropped request would have run before this one finishes.
    assert.equal((await inferJson(base, model, slowRequest(1))).status, 200);

    const stats = await settledStats(model, before.inference_stats.success.count + 2);
    assert.equal(stats.inference_stats.success.count - before.inference_stats.success.count, 2, 'only the busy and the marker request succeeded');
    assert.equal(stats.execution_count - before.execution_count, 2, 'the timed-out request was never executed');
  });
});

describe('schedule policy: priority', () => {
  test('priority 1 overtakes queued priority-5 requests', async () => {
    const model = 'slow-priority';
    const completed: string[] = [];
    const track = (label: string, reply: Promise<Reply>) =>
      reply.then((value) => {
        assert.equal(value.status, 200, `${label}: ${JSON.stringify(value.body)}`);
        completed.push(label);
      });

    const busy = track('busy', inferJson(base, model, slowRequest(busyIterations)));
    await sleep(300);
    // Each queued request runs ~70 ms so completion order at the client is unambiguous.
    const queued = [1, 2, 3, 4].map((index) => track(`low-${index}`, inferJson(base, model, slowRequest(20_000, { priority: 5 }))));
    await sleep(300);
    // "priority": lower values are higher priority; 1 is the highest.
    const high = track('high', inferJson(base, model, slowRequest(20_000, { priority: 1 })));
    await Promise.all([busy, ...queued, high]);

    assert.equal(completed[0], 'busy');
    assert.equal(completed[1], 'high', `completion order: ${completed.join(', ')}`);
  });

  test('priority outside 0…int range or not an integer is refused', async () => {
    assertErrorBody(await inferJson(base, 'slow-priority', slowRequest(1, { priority: -1 })), 400, 'INVALID_ARGUMENT');
    assertErrorBody(await inferJson(base, 'slow-priority', slowRequest(1, { timeout: 'soon' })), 400, 'INVALID_ARGUMENT');
    // 0 means "the default" for both parameters.
    assert.equal((await inferJson(base, 'slow-priority', slowRequest(1, { priority: 0, timeout: 0 }))).status, 200);
  });
});

describe('client disconnect', () => {
  test('a queued request whose client went away is never executed', async () => {
    const model = 'slow-abort';
    const before = await settledStats(model, 1);
    const busy = inferJson(base, model, slowRequest(busyIterations));
    await sleep(300);

    const controller = new AbortController();
    const aborted = inferJson(base, model, slowRequest(1), undefined, controller.signal);
    setTimeout(() => controller.abort(), 100);
    await assert.rejects(aborted, (error: Error) => error.name === 'AbortError');

    const busyReply = await busy;
    assert.equal(busyReply.status, 200, JSON.stringify(busyReply.body));
    assert.equal((await inferJson(base, model, slowRequest(1))).status, 200);

    const stats = await settledStats(model, before.inference_stats.success.count + 2);
    assert.equal(stats.inference_stats.success.count - before.inference_stats.success.count, 2, 'only the busy and the marker request succeeded');
    assert.equal(stats.execution_count - before.execution_count, 2, 'the abandoned request was never executed');
  });
});
