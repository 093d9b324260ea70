/**
 * `node dist/bench/async-batch.js [rounds=3] [requests=300] [lines=5000] [model=slow|heavy|tiny] [iterations=500]`
 *
 * What a large batch file costs synchronous traffic on the same model (issue 16: asynchronous work runs at a lower
 * priority, GANTRY_JOB_PRIORITY, and must not raise synchronous p50 by more than 10%). One `gantry start` (API and
 * one forked worker, own prefix on the shared Redis or REDIS_URL) serving one model, driven from this process over
 * HTTP. Models: `slow` (default), test/fixtures/models/slow.onnx with `iterations` loop iterations per call
 * (~3.6 µs each on the dev box; 500: ~2 ms of compute, one run per call, no batching: a model with a fixed batch
 * of one); `heavy`, the heavy MLP of support/heavy-mlp.ts ([batch, 256] → [batch, 16], batched); `tiny`, the
 * tiny MLP. The two MLPs' lines cost so little once batched (~10,000 lines/s here) that the worker keeps up with
 * the upload: a batch is mostly done when its 202 comes, and what is measured "during" it is a second or two.
 *
 * Each round measures `requests` sequential REST JSON /infer calls on one connection with nothing else running
 * ("alone"), then submits a batch of `lines` lines of the same request (`POST /v1/models/{m}/batches`, NDJSON),
 * waits for the 202 and the batch's first progress, and measures the same calls again while it runs ("during
 * batch"). Only calls that ended while the batch was still seen running count for that side (a poller reads its
 * status every 100 ms); when the batch ends first the side has fewer samples, and the report says how many.
 * Prints the p50 and p90 of each side over all rounds, their ratios, the batch's throughput and how long each
 * submission took. Before measuring, a 200-line batch's first result line is checked against the synchronous
 * answer for the same request.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isDeepStrictEqual } from 'node:util';
import { adminAuthorization, fixturePath, startGantry } from '../support/gantry-process.js';
import { heavyMlp } from '../support/heavy-mlp.js';

const [roundsText = '3', requestsText = '300', linesText = '5000', modelText = 'slow', iterationsText = '500'] = process.argv.slice(2);
const rounds = Number(roundsText);
const requests = Number(requestsText);
const lines = Number(linesText);
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const headers = { authorization: adminAuthorization };

/** Four-decimal values, so the JSON every call sends is the same float32 input. */
const x = Array.from({ length: 256 }, (_, index) => Math.round(Math.sin(index * 0.7) * 1e4) / 1e4);

/** The models this bench can run, each with the one request every call and every line sends. */
const models: Record<string, { label: string; bytes: () => Promise<Uint8Array>; inputs: unknown[] }> = {
  slow: {
    label: `slow.onnx, ${iterationsText} iterations a call`,
    bytes: () => readFile(fixturePath('slow.onnx')),
    inputs: [
      { name: 'iterations', datatype: 'INT64', shape: [], data: [Number(iterationsText)] },
      { name: 'x', datatype: 'FP32', shape: [1, 256], data: x },
    ],
  },
  heavy: {
    label: 'heavy MLP (256 → 1024 → 1024 → 1024 → 16)',
    bytes: () => Promise.resolve(heavyMlp()),
    inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 256], data: x }],
  },
  tiny: { label: 'tiny MLP', bytes: () => readFile(fixturePath('tiny-mlp.onnx')), inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 256], data: x }] },
};
const chosen = models[modelText]!;
if (chosen === undefined) throw new Error(`model must be one of ${Object.keys(models).join(', ')}, not ${modelText}`);
const model = `bench-${modelText}`;

/** The value at `fraction` of the samples (nearest rank, on a sorted copy); NaN for none. */
function percentile(values: readonly number[], fraction: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))]!;
}

const syncBody = JSON.stringify({ id: 'sync', inputs: chosen.inputs });
const inputsJson = JSON.stringify(chosen.inputs);

interface BatchStatus {
  id: string;
  state: string;
  total: number;
  succeeded: number;
  failed: number;
  running: number;
}
const unfinished = new Set(['receiving', 'queued', 'running']);

/** GANTRY_* variables of this process go to gantry's (to try settings: GANTRY_BATCH_CHUNK_LINES=8 node …). */
const gantryEnvironment = Object.fromEntries(
  Object.entries(process.env).filter((entry): entry is [string, string] => entry[0].startsWith('GANTRY_') && entry[1] !== undefined),
);
const gantry = await startGantry({ redisUrl, prefix: `bench-async-batch-${randomBytes(3).toString('hex')}`, env: gantryEnvironment });

async function upload(): Promise<void> {
  const response = await fetch(`${gantry.baseUrl}/v1/models/${model}/versions?wait=true`, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/octet-stream' },
    body: Buffer.from(await chosen.bytes()),
  });
  if (response.status !== 201) throw new Error(`upload answered ${response.status}: ${await response.text()}`);
}

/** One synchronous call: its answer's JSON and the milliseconds from sending to the whole answer read. */
async function syncCall(): Promise<{ body: string; ms: number; endedAt: number }> {
  const started = performance.now();
  const response = await fetch(`${gantry.baseUrl}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json' },
    body: syncBody,
  });
  const body = await response.text();
  if (response.status !== 200) throw new Error(`infer answered ${response.status}: ${body}`);
  const ended = performance.now();
  return { body, ms: ended - started, endedAt: ended };
}

async function batchStatus(id: string): Promise<BatchStatus> {
  const response = await fetch(`${gantry.baseUrl}/v1/batches/${id}`, { headers });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`batch status answered ${response.status}: ${text}`);
  return JSON.parse(text) as BatchStatus;
}

/** Milliseconds each batch submission took, from sending its body to the 202. */
const submissionMs: number[] = [];

async function submitBatch(count: number): Promise<string> {
  let body = '';
  for (let index = 0; index < count; index++) body += `{"id":"line-${index}","inputs":${inputsJson}}\n`;
  const started = performance.now();
  const response = await fetch(`${gantry.baseUrl}/v1/models/${model}/batches`, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/x-ndjson' },
    body,
  });
  const text = await response.text();
  if (response.status !== 202) throw new Error(`batch submission answered ${response.status}: ${text.slice(0, 500)}`);
  if (count === lines) submissionMs.push(performance.now() - started);
  return (JSON.parse(text) as BatchStatus).id;
}

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** `count` sequential synchronous calls; milliseconds of each. */
async function alone(count: number): Promise<number[]> {
  const latencies: number[] = [];
  for (let index = 0; index < count; index++) latencies.push((await syncCall()).ms);
  return latencies;
}

interface DuringBatch {
  latencies: number[];
  /** Calls sent in all; those after the batch was last seen running are not in `latencies`. */
  sent: number;
  /** Lines the batch finished per second, from its first progress to its end. */
  linesPerSecond: number;
  final: BatchStatus;
}

/** Submits a batch, waits until it runs, then makes up to `count` sequential calls while it runs. */
async function duringBatch(round: number, count: number): Promise<DuringBatch> {
  const id = await submitBatch(lines);
  await until(
    async () => {
      const status = await batchStatus(id);
      return status.succeeded + status.failed > 0;
    },
    60_000,
    'the batch to start',
  );
  const progressAt = performance.now();
  const progressLines = await batchStatus(id).then((status) => status.succeeded + status.failed);
  // The poller: when the batch was last seen unfinished, and its final status.
  let lastSeenRunningAt = performance.now();
  let final: BatchStatus | undefined;
  let finishedAt = 0;
  const poller = (async () => {
    while (final === undefined) {
      const status = await batchStatus(id);
      if (unfinished.has(status.state)) lastSeenRunningAt = performance.now();
      else {
        final = status;
        finishedAt = performance.now();
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  const calls: Array<{ ms: number; endedAt: number }> = [];
  while (calls.length < count && final === undefined) calls.push(await syncCall());
  await poller;
  const latencies = calls.filter((call) => call.endedAt <= lastSeenRunningAt).map((call) => call.ms);
  process.stderr.write(
    `[async-batch] round ${round + 1}: the batch ran ${((finishedAt - progressAt) / 1000).toFixed(1)} s after its first progress; ${calls.length} calls sent, ${latencies.length} ended while it ran; the first took (ms) ${calls
      .slice(0, 12)
      .map((call) => call.ms.toFixed(0))
      .join(',')}\n`,
  );
  const linesPerSecond = ((final!.succeeded + final!.failed - progressLines) * 1000) / Math.max(1, finishedAt - progressAt);
  return { latencies, sent: calls.length, linesPerSecond, final: final! };
}

/** The first batch's first result line answers what /infer answers for the same request. */
async function checkOneResult(): Promise<void> {
  const checkLines = 200;
  const id = await submitBatch(checkLines);
  await until(async () => !unfinished.has((await batchStatus(id)).state), 300_000, 'the check batch to finish');
  const response = await fetch(`${gantry.baseUrl}/v1/batches/${id}/results`, { headers });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`results answered ${response.status}: ${text.slice(0, 500)}`);
  const resultLines = text.split('\n').filter((line) => line.length > 0);
  if (resultLines.length !== checkLines) throw new Error(`the results have ${resultLines.length} lines for ${checkLines}`);
  const first = JSON.parse(resultLines[0]!) as { id: string; response?: { id?: string } };
  const sync = JSON.parse((await syncCall()).body) as { id?: string };
  // Compared as JSON values: the results stream writes an output's keys in another order than /infer does.
  if (first.id !== 'line-0' || !isDeepStrictEqual({ ...first.response, id: 'sync' }, sync)) {
    throw new Error(`the batch answered ${resultLines[0]!.slice(0, 300)}, /infer ${JSON.stringify(sync).slice(0, 300)}`);
  }
}

try {
  await upload();
  await alone(200); // warm-up
  await checkOneResult();
  const aloneLatencies: number[] = [];
  const batchLatencies: number[] = [];
  let sent = 0;
  const throughputs: number[] = [];
  for (let round = 0; round < rounds; round++) {
    aloneLatencies.push(...(await alone(requests)));
    const during = await duringBatch(round, requests);
    batchLatencies.push(...during.latencies);
    sent += during.sent;
    throughputs.push(during.linesPerSecond);
    if (during.final.state !== 'succeeded' || during.final.failed > 0) throw new Error(`a batch ended ${JSON.stringify(during.final)}`);
  }
  const [aloneP50, aloneP90, batchP50, batchP90] = [
    percentile(aloneLatencies, 0.5),
    percentile(aloneLatencies, 0.9),
    percentile(batchLatencies, 0.5),
    percentile(batchLatencies, 0.9),
  ];
  let report = `synchronous ${chosen.label}, REST JSON, one connection, closed loop; ${rounds} rounds, each ${requests} calls alone, then up to ${requests} while a ${lines}-line batch of the same model runs\n`;
  if (Object.keys(gantryEnvironment).length > 0) report += `gantry settings: ${JSON.stringify(gantryEnvironment)}\n`;
  report += `alone          p50 ${aloneP50.toFixed(3)} ms  p90 ${aloneP90.toFixed(3)} ms  (${aloneLatencies.length} calls)\n`;
  report += `during batch   p50 ${batchP50.toFixed(3)} ms  p90 ${batchP90.toFixed(3)} ms  (${batchLatencies.length} calls counted of ${sent} sent)\n`;
  if (batchLatencies.length === 0) report += `no call ended while a batch ran: the batches finished about when their 202 came (try more lines or model=slow)\n`;
  report += `p50 ratio during batch / alone: ${(batchP50 / aloneP50).toFixed(3)} (target <= 1.10)\n`;
  report += `p90 ratio during batch / alone: ${(batchP90 / aloneP90).toFixed(3)}\n`;
  report += `batch throughput while measured: ${throughputs.map((value) => value.toFixed(0)).join(', ')} lines/s\n`;
  report += `batch submission (body to 202): ${submissionMs.map((value) => (value / 1000).toFixed(1)).join(', ')} s\n`;
  process.stdout.write(report);
} finally {
  await gantry.cleanup();
}
