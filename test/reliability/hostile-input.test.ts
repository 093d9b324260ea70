/**
 * Hostile input against a real `gantry start` (issue 10, the API's input path): every body is bounded before it is
 * buffered. Each case checks the offending request's clear answer (4xx/503, never 500, never a hang), that the API
 * and worker keep their pids, that their peak RSS (VmHWM, reset before the case) stays under the bound stated in
 * the case, and that a well-behaved caller (tiny-mlp JSON requests in a loop) gets every request answered 200.
 *
 * Two deployments: one with small limits (64 MiB in flight, 16 MiB JSON, 2 s body idle, 6 s whole request,
 * 64 connections) so the crowd cases stay light, and one at the real defaults for the large single requests.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readdir } from 'node:fs/promises';
import { adminAuthorization, fixturePath, startGantry, uploadModel, withAdminKey, type GantryProcess } from '../helpers/gantry-process.js';
import {
  Cleanup,
  countStatuses,
  describeReply,
  floats,
  infer,
  isAlive,
  mlpRequest,
  peakRssBytes,
  resetPeakRss,
  rssBytes,
  sleep,
  timedCall,
  waitUntil,
  workerChildOf,
  type TimedReply,
} from '../helpers/reliability-harness.js';

const MiB = 1024 ** 2;
const mb = (bytes: number) => `${(bytes / MiB).toFixed(0)} MB`;

/** tiny-mlp requests one after another until stopped; every reply is kept. */
function startGoodCaller(baseUrl: string): { stop: () => Promise<TimedReply[]> } {
  const replies: TimedReply[] = [];
  let running = true;
  const loop = (async () => {
    let seed = 1;
    while (running) {
      replies.push(await infer(baseUrl, 'mlp', mlpRequest(seed++), 20_000));
      await sleep(20);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return replies;
    },
  };
}

function assertAllAnswered(replies: TimedReply[], what: string): void {
  assert.ok(replies.length > 0, `the good caller sent requests during ${what}`);
  const bad = replies.filter((reply) => reply.status !== 200);
  assert.equal(bad.length, 0, `good caller during ${what}: ${JSON.stringify(countStatuses(replies))}; ${bad.slice(0, 3).map(describeReply).join('; ')}`);
}

async function openDescriptors(pid: number): Promise<number> {
  return (await readdir(`/proc/${pid}/fd`)).length;
}

/** A raw HTTP/1.1 connection: what the server sent, and when it closed. */
interface RawConnection {
  socket: net.Socket;
  received: () => string;
  closed: Promise<number>;
}

function rawConnection(port: number): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    const closed = new Promise<number>((done) => socket.once('close', () => done(Date.now())));
    socket.once('connect', () => resolve({ socket, received: () => text, closed }));
    socket.once('error', reject);
  });
}

function requestHead(path: string, headers: Record<string, string | number>): string {
  const lines = Object.entries({ host: '127.0.0.1', authorization: adminAuthorization, ...headers }).map(([name, value]) => `${name}: ${value}`);
  return `POST ${path} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`;
}

function portOf(gantry: GantryProcess): number {
  return Number(new URL(gantry.baseUrl).port);
}

async function metricsText(gantry: GantryProcess): Promise<string> {
  const reply = await timedCall(`${gantry.baseUrl}/metrics`, { timeoutMs: 10_000 });
  return String(reply.body);
}

function limitCount(text: string, limit: string): number {
  const line = text.split('\n').find((row) => row.startsWith(`gantry_limit_rejections_total{limit="${limit}"}`));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

interface Deployment {
  gantry: GantryProcess;
  apiPid: number;
  workerPid: number;
}

async function deploy(cleanup: Cleanup, env: Record<string, string>, models: Record<string, string>): Promise<Deployment> {
  const gantry = await startGantry({ env: { GANTRY_SHUTDOWN_TIMEOUT_MS: '3000', ...env } });
  cleanup.add(() => gantry.cleanup());
  for (const [name, file] of Object.entries(models)) {
    const upload = await uploadModel(gantry.baseUrl, name, fixturePath(file));
    assert.equal(upload.status, 201, JSON.stringify(upload.body));
  }
  const warm = await infer(gantry.baseUrl, 'mlp', mlpRequest());
  assert.equal(warm.status, 200, describeReply(warm));
  return { gantry, apiPid: gantry.child.pid!, workerPid: workerChildOf(gantry, cleanup) };
}

/** Resets both peaks, runs `attack` with the good caller alongside, then checks pids, peaks and the good caller. */
async function underAttack(
  deployment: Deployment,
  what: string,
  bounds: { apiPeakBytes: number; workerPeakBytes: number },
  attack: () => Promise<void>,
): Promise<void> {
  const { gantry, apiPid, workerPid } = deployment;
  await resetPeakRss(apiPid);
  await resetPeakRss(workerPid);
  const baseline = { api: await rssBytes(apiPid), worker: await rssBytes(workerPid) };
  const caller = startGoodCaller(gantry.baseUrl);
  try {
    await attack();
  } finally {
    const replies = await caller.stop();
    const peaks = { api: await peakRssBytes(apiPid), worker: await peakRssBytes(workerPid) };
    console.log(
      `# ${what}: API RSS ${mb(baseline.api)} → peak ${mb(peaks.api)} (bound ${mb(bounds.apiPeakBytes)}); worker ${mb(baseline.worker)} → peak ${mb(peaks.worker)} (bound ${mb(bounds.workerPeakBytes)}); good caller ${JSON.stringify(countStatuses(replies))}`,
    );
    assert.ok(isAlive(apiPid) && gantry.child.exitCode === null, `the API (pid ${apiPid}) is still running after ${what}`);
    assert.ok(isAlive(workerPid), `the worker (pid ${workerPid}) is still running after ${what}`);
    assert.ok(peaks.api < bounds.apiPeakBytes, `API peak RSS ${mb(peaks.api)} during ${what} is under ${mb(bounds.apiPeakBytes)}`);
    assert.ok(peaks.worker < bounds.workerPeakBytes, `worker peak RSS ${mb(peaks.worker)} during ${what} is under ${mb(bounds.workerPeakBytes)}`);
    assertAllAnswered(replies, what);
  }
}

describe('small limits: crowds of large, stalled and trickling bodies', () => {
  const cleanup = new Cleanup();
  let deployment: Deployment;
  const inflightLimit = 64 * MiB;
  const bodyBytes = 10 * MiB;

  before(async () => {
    deployment = await deploy(
      cleanup,
      {
        GANTRY_MAX_INFLIGHT_BYTES: String(inflightLimit),
        GANTRY_MAX_JSON_REQUEST_BYTES: String(16 * MiB),
        GANTRY_BODY_IDLE_TIMEOUT_MS: '2000',
        GANTRY_HEADERS_TIMEOUT_MS: '2000',
        GANTRY_REQUEST_TIMEOUT_MS: '6000',
        GANTRY_MAX_CONNECTIONS: '64',
      },
      { mlp: 'tiny-mlp.onnx' },
    );
  });
  after(() => cleanup.run());

  test(
    '16 bodies of 10 MB that stop after 8 MB: 6 fit the 64 MiB budget, the rest get 503 + Retry-After before sending a byte; the 6 are cut at the 2 s idle timeout and release memory and descriptors',
    { timeout: 90_000 },
    async () => {
      const { gantry, apiPid } = deployment;
      const descriptorsBefore = await openDescriptors(apiPid);
      const before = await metricsText(gantry);
      const admitted: RawConnection[] = [];
      const refused: string[] = [];
      await underAttack(
        deployment,
        'stalled bodies',
        { apiPeakBytes: (await rssBytes(apiPid)) + 6 * bodyBytes + 150 * MiB, workerPeakBytes: 400 * MiB },
        async () => {
          // All heads at once (the idle timer of an admitted body starts at its head): a refusal comes from the
          // head alone, at once; an admitted request waits for its body.
          const connections = await Promise.all(Array.from({ length: 16 }, () => rawConnection(portOf(gantry))));
          for (const connection of connections) {
            connection.socket.write(requestHead('/v2/models/mlp/infer', { 'content-type': 'application/json', 'content-length': bodyBytes }));
          }
          // Ten refusals are expected: wait for them (a loaded box may take a moment), but not past the idle timeout.
          const answered = () => connections.filter((connection) => connection.received().length > 0).length;
          await waitUntil(() => answered() >= 10, 1500, 'ten refusals').catch(() => undefined);
          await sleep(100);
          for (const connection of connections) {
            if (connection.received().length > 0) {
              refused.push(connection.received());
              connection.socket.destroy();
            } else {
              connection.socket.write(Buffer.alloc(8 * MiB, 0x20));
              admitted.push(connection);
            }
          }
          const started = Date.now();
          const closedAt = await Promise.race([Promise.all(admitted.map((connection) => connection.closed)), sleep(15_000).then(() => undefined)]);
          assert.ok(closedAt !== undefined, `every stalled body is cut by the server (open after 15 s: ${admitted.filter((c) => !c.socket.destroyed).length})`);
          console.log(`# stalled bodies: ${admitted.length} admitted, cut within ${Math.max(...closedAt.map((at) => at - started))} ms of the last write`);
        },
      );
      assert.equal(admitted.length, 6, `64 MiB holds six 10 MiB bodies: admitted ${admitted.length}, refused ${refused.length}`);
      for (const text of refused) {
        assert.match(text, /^HTTP\/1\.1 503 /, text.slice(0, 300));
        assert.match(text, /\r\nretry-after: \d+\r\n/i, text.slice(0, 300));
        assert.match(text, /GANTRY_MAX_INFLIGHT_BYTES/, text.slice(0, 500));
      }
      for (const connection of admitted) assert.match(connection.received(), /^(HTTP\/1\.1 408 |$)/, connection.received().slice(0, 200));
      await waitUntil(async () => (await openDescriptors(apiPid)) <= descriptorsBefore + 2, 5000, 'the cut connections’ descriptors to be closed');
      // The budget came back: six 10 MB bodies at once are read again (and refused as the bad JSON they are, 400).
      const again = await Promise.all(
        Array.from({ length: 6 }, () =>
          timedCall(`${gantry.baseUrl}/v2/models/mlp/infer`, { body: Buffer.alloc(bodyBytes, 0x20).fill('x', 0, 1), timeoutMs: 20_000 }),
        ),
      );
      assert.deepEqual(countStatuses(again), { 400: 6 }, again.map(describeReply).join('; '));
      const after = await metricsText(gantry);
      assert.ok(limitCount(after, 'inflight_bytes') - limitCount(before, 'inflight_bytes') >= refused.length, 'refusals counted as inflight_bytes');
      assert.ok(limitCount(after, 'body_timeout') - limitCount(before, 'body_timeout') >= admitted.length, 'cuts counted as body_timeout');
    },
  );

  test(
    '40 trickling inference bodies and 10 trickling uploads (a byte every 300 ms, under the idle timeout) are cut at the 6 s request timeout with 408, descriptors released',
    { timeout: 90_000 },
    async () => {
      const { gantry, apiPid } = deployment;
      const descriptorsBefore = await openDescriptors(apiPid);
      const connections: RawConnection[] = [];
      await underAttack(deployment, 'trickling bodies', { apiPeakBytes: (await rssBytes(apiPid)) + 100 * MiB, workerPeakBytes: 400 * MiB }, async () => {
        for (let index = 0; index < 50; index++) {
          const connection = await rawConnection(portOf(gantry));
          const upload = index >= 40;
          connection.socket.write(
            upload
              ? requestHead('/v1/models/trickled/versions', { 'content-type': 'application/octet-stream', 'content-length': MiB })
              : requestHead('/v2/models/mlp/infer', { 'content-type': 'application/json', 'content-length': MiB }),
          );
          connections.push(connection);
        }
        const trickle = setInterval(() => {
          for (const connection of connections) if (!connection.socket.destroyed) connection.socket.write(' ');
        }, 300);
        try {
          const started = Date.now();
          const closed = await Promise.race([Promise.all(connections.map((connection) => connection.closed)), sleep(20_000).then(() => undefined)]);
          assert.ok(closed !== undefined, `every trickling body is cut (still open after 20 s: ${connections.filter((c) => !c.socket.destroyed).length})`);
          console.log(`# trickling bodies: all 50 cut after ${Math.max(...closed.map((at) => at - started))} ms`);
        } finally {
          clearInterval(trickle);
        }
      });
      for (const connection of connections) assert.match(connection.received(), /^HTTP\/1\.1 408 /, connection.received().slice(0, 200));
      await waitUntil(async () => (await openDescriptors(apiPid)) <= descriptorsBefore + 2, 5000, 'the trickling connections’ descriptors to be closed');
    },
  );

  test(
    '80 connections that send nothing: past GANTRY_MAX_CONNECTIONS (64) they are closed at accept; the rest go at the 2 s headers timeout',
    { timeout: 60_000 },
    async () => {
      const { gantry, apiPid } = deployment;
      const descriptorsBefore = await openDescriptors(apiPid);
      const before = await metricsText(gantry);
      const connections: RawConnection[] = [];
      await underAttack(deployment, 'idle connections', { apiPeakBytes: (await rssBytes(apiPid)) + 100 * MiB, workerPeakBytes: 400 * MiB }, async () => {
        for (let index = 0; index < 80; index++) connections.push(await rawConnection(portOf(gantry)));
        await sleep(500);
        const droppedAtOnce = connections.filter((connection) => connection.socket.destroyed).length;
        console.log(`# idle connections: ${droppedAtOnce} of 80 closed at accept`);
        assert.ok(droppedAtOnce >= 80 - 64, `at least 16 connections past the cap are closed at once, got ${droppedAtOnce}`);
        const closed = await Promise.race([Promise.all(connections.map((connection) => connection.closed)), sleep(15_000).then(() => undefined)]);
        assert.ok(
          closed !== undefined,
          `idle connections are closed by the headers timeout (still open: ${connections.filter((c) => !c.socket.destroyed).length})`,
        );
      });
      await waitUntil(async () => (await openDescriptors(apiPid)) <= descriptorsBefore + 2, 5000, 'the idle connections’ descriptors to be closed');
      const after = await metricsText(gantry);
      assert.ok(limitCount(after, 'connections') - limitCount(before, 'connections') >= 16, 'closed-at-accept connections are counted');
      const fresh = await infer(gantry.baseUrl, 'mlp', mlpRequest(3));
      assert.equal(fresh.status, 200, describeReply(fresh));
    },
  );

  test(
    'a JSON body over GANTRY_MAX_JSON_REQUEST_BYTES (16 MiB here) is 413 from its Content-Length, before it is read; chunked, it is cut at the limit',
    { timeout: 60_000 },
    async () => {
      const { gantry } = deployment;
      const connection = await rawConnection(portOf(gantry));
      connection.socket.write(requestHead('/v2/models/mlp/infer', { 'content-type': 'application/json', 'content-length': 17 * MiB }));
      await waitUntil(() => connection.received().includes('\r\n\r\n{'), 5000, 'the 413');
      assert.match(connection.received(), /^HTTP\/1\.1 413 /);
      assert.match(connection.received(), /GANTRY_MAX_JSON_REQUEST_BYTES/);
      connection.socket.destroy();
      // Without a Content-Length (chunked), the reader stops at the limit.
      const chunked = await fetch(`${gantry.baseUrl}/v2/models/mlp/infer`, {
        method: 'POST',
        headers: withAdminKey({ 'content-type': 'application/json' }),
        body: new ReadableStream({
          start(controller) {
            for (let index = 0; index < 20; index++) controller.enqueue(new Uint8Array(MiB).fill(0x20));
            controller.close();
          },
        }),
        duplex: 'half',
        signal: AbortSignal.timeout(20_000),
      } as RequestInit).then(
        async (response) => ({ status: response.status, text: await response.text() }),
        (error: Error) => ({ status: 0, text: String(error.cause ?? error) }),
      );
      // The 413 may race the rest of the upload (the connection closes after it): a reset is the other outcome.
      assert.ok(chunked.status === 413 || chunked.status === 0, `chunked over the limit: ${chunked.status} ${chunked.text.slice(0, 200)}`);
      if (chunked.status === 413) assert.match(chunked.text, /GANTRY_MAX_JSON_REQUEST_BYTES/);
    },
  );
});

describe('event-loop pressure', () => {
  const cleanup = new Cleanup();
  let pressured: Deployment;
  before(async () => {
    // A 20 ms threshold, so that one frozen second is well past it (the histogram's mean decides).
    pressured = await deploy(cleanup, { GANTRY_MAX_EVENT_LOOP_DELAY_MS: '20' }, { mlp: 'tiny-mlp.onnx' });
  });
  after(() => cleanup.run());

  test(
    'liveness under event-loop pressure (API frozen 2.5 s): /v2/health/live answers 200 while inferences are shed with 503',
    { timeout: 60_000 },
    async () => {
      const { gantry, apiPid } = pressured;
      process.kill(apiPid, 'SIGSTOP');
      let resumed = false;
      try {
        await sleep(100);
        const lives = Array.from({ length: 5 }, () => timedCall(`${gantry.baseUrl}/v2/health/live`, { timeoutMs: 20_000 }));
        const inferences = Array.from({ length: 5 }, () => infer(gantry.baseUrl, 'mlp', mlpRequest(2), 20_000));
        await sleep(2400);
        process.kill(apiPid, 'SIGCONT');
        resumed = true;
        const [liveReplies, inferReplies] = [await Promise.all(lives), await Promise.all(inferences)];
        // Probes sent once the loop runs again, while the measured delay is still high.
        const later = await Promise.all(Array.from({ length: 5 }, () => timedCall(`${gantry.baseUrl}/v2/health/live`, { timeoutMs: 5000 })));
        console.log(
          `# liveness under pressure: live ${JSON.stringify(countStatuses([...liveReplies, ...later]))}, inferences ${JSON.stringify(countStatuses(inferReplies))}`,
        );
        for (const reply of [...liveReplies, ...later]) assert.equal(reply.status, 200, describeReply(reply));
        assert.ok(
          inferReplies.some((reply) => reply.status === 503),
          `the frozen loop sheds inferences: ${inferReplies.map(describeReply).join('; ')}`,
        );
      } finally {
        if (!resumed) process.kill(apiPid, 'SIGCONT');
      }
    },
  );
});

describe('real defaults: one large hostile request', () => {
  const cleanup = new Cleanup();
  let deployment: Deployment;

  before(async () => {
    deployment = await deploy(cleanup, {}, { mlp: 'tiny-mlp.onnx', text: 'identity-string.onnx' });
  });
  after(() => cleanup.run());

  const bytesBody = (shape: number[], elements: number) => {
    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', datatype: 'BYTES', shape, parameters: { binary_data_size: elements * 4 } }] }));
    return { header, body: Buffer.concat([header, Buffer.alloc(elements * 4)]) };
  };
  const postBinary = (gantry: GantryProcess, model: string, header: Buffer, body: Buffer) =>
    timedCall(`${gantry.baseUrl}/v2/models/${model}/infer`, {
      body,
      headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.byteLength) },
      timeoutMs: 60_000,
    });

  test(
    '100 MB binary BYTES input of 25 M empty elements: 400 naming GANTRY_MAX_BYTES_ELEMENTS (or the shape), API and worker memory bounded',
    { timeout: 120_000 },
    async () => {
      const { gantry, apiPid } = deployment;
      const elements = 25_000_000;
      await underAttack(
        deployment,
        '100 MB of empty BYTES elements',
        { apiPeakBytes: (await rssBytes(apiPid)) + 400 * MiB, workerPeakBytes: 400 * MiB },
        async () => {
          const wide = bytesBody([1, elements], elements);
          const declaredWide = await postBinary(gantry, 'text', wide.header, wide.body);
          assert.equal(declaredWide.status, 400, describeReply(declaredWide));
          assert.match(declaredWide.body.error, /25000000 BYTES elements, more than GANTRY_MAX_BYTES_ELEMENTS \(1000000\)/);
          // The shape says one element, the bytes hold 25 M: counted without an object per element, and refused.
          const narrow = bytesBody([1, 1], elements);
          const declaredNarrow = await postBinary(gantry, 'text', narrow.header, narrow.body);
          assert.equal(declaredNarrow.status, 400, describeReply(declaredNarrow));
          assert.match(declaredNarrow.body.error, /needs 1 BYTES elements but its binary data holds more than 1/);
        },
      );
    },
  );

  test('1 M empty BYTES elements (the cap) run through the model: 200, worker memory bounded', { timeout: 120_000 }, async () => {
    const { gantry, apiPid, workerPid } = deployment;
    const elements = 1_000_000;
    await underAttack(
      deployment,
      '1 M BYTES elements',
      { apiPeakBytes: (await rssBytes(apiPid)) + 400 * MiB, workerPeakBytes: (await rssBytes(workerPid)) + 300 * MiB },
      async () => {
        const { header, body } = bytesBody([1, elements], elements);
        const reply = await postBinary(gantry, 'text', header, body);
        assert.equal(reply.status, 200, describeReply(reply));
        assert.equal(reply.body.outputs[0].data.length, elements);
      },
    );
  });

  test('a 50 MB priority string: 400 of under 2,000 bytes that does not echo it', { timeout: 60_000 }, async () => {
    const { gantry, apiPid } = deployment;
    await underAttack(deployment, '50 MB priority string', { apiPeakBytes: (await rssBytes(apiPid)) + 600 * MiB, workerPeakBytes: 400 * MiB }, async () => {
      const request = JSON.stringify({ parameters: { priority: 'p'.repeat(50 * 1000 * 1000) }, inputs: (mlpRequest(4) as { inputs: unknown[] }).inputs });
      const reply = await timedCall(`${gantry.baseUrl}/v2/models/mlp/infer`, { body: request, timeoutMs: 60_000 });
      assert.equal(reply.status, 400, describeReply(reply));
      const length = JSON.stringify(reply.body).length;
      assert.ok(length < 2000, `the 400 is ${length} bytes`);
      assert.match(reply.body.error, /Request parameter 'priority' must be a non-negative integer, got "p+… \(50000002 characters\)/);
    });
    assert.ok(!gantry.output().includes('p'.repeat(10_000)), 'the value is not logged whole');
  });

  test('200,000-deep arrays: in data, in priority, in binary_data_size, in classification: 400, never 500', { timeout: 60_000 }, async () => {
    const { gantry } = deployment;
    const depth = 200_000;
    const deep = `${'['.repeat(depth)}1${']'.repeat(depth)}`;
    const row = JSON.stringify((mlpRequest(5) as { inputs: Array<{ data: number[] }> }).inputs[0]!.data);
    const input = (data: string) => `{"name":"input","datatype":"FP32","shape":[1,256],"data":${data}}`;
    const cases: Array<[string, string, RegExp]> = [
      ['deep data', `{"inputs":[${input(deep)}]}`, /'data' is nested more than 4 levels deep/],
      ['deep element among 255 good ones', `{"inputs":[${input(`[${deep}${',1'.repeat(255)}]`)}]}`, /'data' is nested more than 4 levels deep/],
      ['deep priority', `{"parameters":{"priority":${deep}},"inputs":[${input(row)}]}`, /'priority' must be a non-negative integer, got an array/],
      [
        'deep binary_data_size',
        `{"inputs":[{"name":"input","datatype":"FP32","shape":[1,256],"parameters":{"binary_data_size":${deep}}}]}`,
        /binary_data_size' must be a non-negative integer/,
      ],
      [
        'deep classification',
        `{"inputs":[${input(row)}],"outputs":[{"name":"output","parameters":{"classification":${deep}}}]}`,
        /'classification' must be a positive integer/,
      ],
    ];
    const before = await metricsText(gantry);
    for (const [what, body, expected] of cases) {
      const reply = await timedCall(`${gantry.baseUrl}/v2/models/mlp/infer`, { body, timeoutMs: 30_000 });
      assert.equal(reply.status, 400, `${what}: ${describeReply(reply)}`);
      assert.match(reply.body.error, expected, what);
    }
    const after = await metricsText(gantry);
    assert.equal(limitCount(after, 'nesting_depth') - limitCount(before, 'nesting_depth'), 2);
  });

  test(
    '/v2/health/live answers 200 within 2 s all through a 58 MB JSON request at the real defaults (parsed off the event loop)',
    { timeout: 120_000 },
    async () => {
      const { gantry, apiPid } = deployment;
      const rows = 12_000;
      const data = Array.from({ length: rows * 256 }, (_, index) => Math.fround(Math.sin(index)));
      const body = JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [rows, 256], data }] });
      const lives: TimedReply[] = [];
      let running = true;
      await underAttack(
        deployment,
        `a ${mb(body.length)} JSON request`,
        { apiPeakBytes: (await rssBytes(apiPid)) + 700 * MiB, workerPeakBytes: 600 * MiB },
        async () => {
          const probing = (async () => {
            while (running) {
              lives.push(await timedCall(`${gantry.baseUrl}/v2/health/live`, { timeoutMs: 10_000 }));
              await sleep(25);
            }
          })();
          const reply = await timedCall(`${gantry.baseUrl}/v2/models/mlp/infer`, { body, timeoutMs: 60_000 });
          running = false;
          await probing;
          assert.equal(reply.status, 200, describeReply(reply));
          assert.deepEqual(reply.body.outputs[0].shape, [rows, 16]);
          console.log(
            `# liveness during a ${mb(body.length)} JSON request (answered in ${reply.ms.toFixed(0)} ms): ${lives.length} probes, slowest ${Math.max(...lives.map((live) => live.ms)).toFixed(0)} ms`,
          );
        },
      );
      for (const live of lives) {
        assert.equal(live.status, 200, describeReply(live));
        assert.ok(live.ms < 2000, `liveness took ${live.ms.toFixed(0)} ms`);
      }
    },
  );

  test(
    'a body over the JSON limit (64 MiB by default) is 413 naming GANTRY_MAX_JSON_REQUEST_BYTES; the same bytes as a binary body are read',
    { timeout: 60_000 },
    async () => {
      const { gantry } = deployment;
      const connection = await rawConnection(portOf(gantry));
      connection.socket.write(requestHead('/v2/models/mlp/infer', { 'content-type': 'application/json', 'content-length': 65 * MiB }));
      await waitUntil(() => connection.received().includes('\r\n\r\n{'), 5000, 'the 413');
      assert.match(connection.received(), /^HTTP\/1\.1 413 /);
      assert.match(connection.received(), /GANTRY_MAX_JSON_REQUEST_BYTES \(67108864 bytes\)/);
      connection.socket.destroy();
      // A binary-extension body of that size is under GANTRY_MAX_REQUEST_BYTES: it is read (and its JSON checked).
      const header = Buffer.from(
        JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [17_000, 1000], parameters: { binary_data_size: 17_000 * 1000 * 4 } }] }),
      );
      const reply = await postBinary(gantry, 'mlp', header, Buffer.concat([header, Buffer.alloc(17_000 * 1000 * 4)]));
      assert.equal(reply.status, 400, describeReply(reply));
      assert.match(reply.body.error, /dimension 1 must be 256/);
    },
  );
});

describe('large JSON bodies are parsed off the event loop (GANTRY_JSON_PARSE_THREADS)', () => {
  const cleanup = new Cleanup();
  let deployment: Deployment;

  before(async () => {
    deployment = await deploy(cleanup, {}, { mlp: 'tiny-mlp.onnx' });
  });
  after(() => cleanup.run());

  /** /v2/health/live probed one after another (25 ms apart) while `work` runs; every probe's reply is kept. */
  async function probingLiveness(gantry: GantryProcess, work: () => Promise<void>): Promise<TimedReply[]> {
    const lives: TimedReply[] = [];
    let running = true;
    const probing = (async () => {
      while (running) {
        lives.push(await timedCall(`${gantry.baseUrl}/v2/health/live`, { timeoutMs: 20_000 }));
        await sleep(25);
      }
    })();
    try {
      await work();
    } finally {
      running = false;
      await probing;
    }
    return lives;
  }

  function assertLivenessKept(lives: TimedReply[], what: string): void {
    const slowest = Math.max(...lives.map((live) => live.ms));
    console.log(`# liveness during ${what}: ${lives.length} probes, slowest ${slowest.toFixed(0)} ms`);
    assert.ok(lives.length >= 5, `liveness was probed during ${what} (${lives.length} probes)`);
    for (const live of lives) assert.equal(live.status, 200, describeReply(live));
    // A hang-guard, far above a probe's few ms and far below the 17 s a main-thread parse of the bomb took.
    assert.ok(slowest < 1000, `every liveness probe during ${what} answered within 1 s (slowest ${slowest.toFixed(0)} ms)`);
  }

  test(
    'a 64 MiB body of empty arrays (22 M of them): 400 from the cost bound before any parse; liveness and a tiny caller keep answering',
    { timeout: 120_000 },
    async () => {
      const { gantry, apiPid } = deployment;
      const bomb = `{"inputs":[{"name":"input","datatype":"FP32","shape":[1,256],"data":[${'[],'.repeat(Math.floor((64 * MiB - 100) / 3))}1]}]}`;
      assert.ok(bomb.length <= 64 * MiB);
      const before = await metricsText(gantry);
      let reply: TimedReply | undefined;
      const lives = await probingLiveness(gantry, async () =>
        underAttack(deployment, 'a 64 MiB empty-array body', { apiPeakBytes: (await rssBytes(apiPid)) + 400 * MiB, workerPeakBytes: 400 * MiB }, async () => {
          // The bomb several times over, so the probes and the good caller overlap it for longer than one send.
          for (let round = 0; round < 3; round++) {
            reply = await timedCall(`${gantry.baseUrl}/v2/models/mlp/infer`, { body: bomb, timeoutMs: 60_000 });
            assert.equal(reply.status, 400, describeReply(reply));
          }
        }),
      );
      assert.match(reply!.body.error, /too costly to parse as JSON: it holds more than 1000000 arrays and objects/);
      assert.match(reply!.body.error, /binary tensor extension/);
      assert.ok(JSON.stringify(reply!.body).length < 1000, 'the 400 is short');
      assertLivenessKept(lives, 'three 64 MiB empty-array bodies');
      const after = await metricsText(gantry);
      assert.equal(limitCount(after, 'json_cost') - limitCount(before, 'json_cost'), 3, 'the refusals are counted as json_cost');
    },
  );

  test(
    '4 concurrent ~50 MB JSON FP32 bodies: all 200 with the right outputs; liveness and a tiny caller keep answering; API memory bounded',
    { timeout: 180_000 },
    async () => {
      const { gantry, apiPid } = deployment;
      const firstRow = floats(7, 256);
      const row = (index: number) => (index === 0 ? firstRow : floats(index + 100, 256));
      // Rows until the body is ~50 MB (each row is ~5 KB of JSON numbers).
      const rows: string[] = [];
      let length = 0;
      while (length < 50 * 1000 * 1000) {
        const text = JSON.stringify(row(rows.length));
        rows.push(text);
        length += text.length + 1;
      }
      const body = `{"inputs":[{"name":"input","datatype":"FP32","shape":[${rows.length},256],"data":[${rows.join(',')}]}]}`;
      rows.length = 0;
      const expectedFirst = await infer(gantry.baseUrl, 'mlp', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 256], data: firstRow }] });
      assert.equal(expectedFirst.status, 200, describeReply(expectedFirst));
      const replies: TimedReply[] = [];
      const lives = await probingLiveness(gantry, async () =>
        underAttack(
          deployment,
          `4 concurrent ${mb(body.length)} JSON bodies`,
          { apiPeakBytes: (await rssBytes(apiPid)) + 800 * MiB, workerPeakBytes: 800 * MiB },
          async () => {
            replies.push(
              ...(await Promise.all(Array.from({ length: 4 }, () => timedCall(`${gantry.baseUrl}/v2/models/mlp/infer`, { body, timeoutMs: 120_000 })))),
            );
          },
        ),
      );
      const shape = JSON.parse(body.slice(body.indexOf('"shape":') + 8, body.indexOf(']', body.indexOf('"shape":')) + 1)) as number[];
      for (const reply of replies) {
        assert.equal(reply.status, 200, describeReply(reply));
        const output = reply.body.outputs[0] as { shape: number[]; data: number[] };
        assert.deepEqual(output.shape, [shape[0], 16]);
        assert.deepEqual(output.data.slice(0, 16), expectedFirst.body.outputs[0].data, 'row 0 gives the same output as when sent alone');
      }
      console.log(`# 4 concurrent ${mb(body.length)} JSON bodies answered in ${replies.map((reply) => reply.ms.toFixed(0)).join(', ')} ms`);
      assertLivenessKept(lives, `4 concurrent ${mb(body.length)} JSON bodies`);
    },
  );
});
