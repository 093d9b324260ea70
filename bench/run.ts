/**
 * `npm run bench [-- --quick] [-- --knobs]`: raw onnxruntime loop vs a plain Fastify+onnxruntime server vs Gantry
 * (`start` role: API + one worker over BullMQ/Redis) at 1 and 64 connections: the tiny MLP in JSON, the PaddleOCR
 * recognizer with the binary tensor extension in and out (full runs also in JSON), and the tiny MLP through Gantry
 * with dynamic batching off (PUT /v1/models/{m}/config {"maxBatchSize": 0}). Prints one markdown table, the
 * ratios and the target check, and writes bench/results/latest.json.
 *
 * `--knobs` instead restarts Gantry under each tuning variant (environment and model configuration) and drives the
 * tiny MLP at 64 connections through it (BENCH_KNOBS_MODEL=ocr-rec: the recognizer in binary), BENCH_KNOBS_REPEAT
 * rounds; writes bench/results/knobs-<model>.json.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import { freePort, startGantry, uploadModel, withAdminKey, type GantryProcess } from '../support/gantry-process.js';
import {
  benchInput,
  benchModels,
  benchRequest,
  decodeInferResponse,
  inferenceHeaderContentLength,
  percentile,
  repositoryRoot,
  type BenchModel,
  type BenchRequest,
  type Encoding,
} from './models.js';
import { referenceOutput, type RawLoopResult } from './raw-loop.js';

const quick = process.argv.includes('--quick');
const knobs = process.argv.includes('--knobs');
const durationSeconds = quick ? 4 : 15;
const warmupSeconds = quick ? 1 : 3;

interface Scenario {
  model: BenchModel;
  encoding: Encoding;
  connections: number[];
}
const [tinyModel, ocrModel] = benchModels as [BenchModel, BenchModel];
/**
 * What is measured. The recognizer's answer is 265,000 floats: ~1 MB in binary, ~6 MB in JSON. In binary, 64
 * connections finish rounds inside a short window; in JSON one round at 64 connections outlasts a 5 s window, so
 * JSON OCR is measured only in full runs (1 connection, and 64 for 60 s).
 */
const scenarios: Scenario[] = [
  { model: tinyModel, encoding: 'json', connections: [1, 64] },
  { model: ocrModel, encoding: 'binary', connections: [1, 64] },
  ...(quick ? [] : [{ model: ocrModel, encoding: 'json' as const, connections: [1, 64] }]),
];
function durationFor(model: BenchModel, encoding: Encoding, connections: number): number {
  if (model === ocrModel && connections >= 64) return encoding === 'json' ? Math.max(durationSeconds, 60) : Math.max(durationSeconds, 6);
  return durationSeconds;
}
const tolerance = 1e-4;
const benchDirectory = path.dirname(new URL(import.meta.url).pathname);

type Target = 'raw loop' | 'plain server' | 'gantry' | 'gantry, batching off';

interface Row {
  model: string;
  encoding: Encoding | '';
  connections: number;
  target: Target;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  total: number;
  /** Gantry only: inference_count / execution_count over the measured window (average rows per execution). */
  averageBatch?: number;
  gantryOverPlain?: number;
  gantryOverRaw?: number;
}

interface Counts {
  inference: number;
  execution: number;
}

const cleanups: Array<() => Promise<void>> = [];
const children = new Set<ChildProcess>();

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/** Spawns a node script from dist/bench; resolves once its stdout contains `readyText` (or at exit when empty). */
function spawnNode(script: string, args: string[], readyText: string | undefined, timeoutMs = 60_000): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(process.execPath, [path.join(benchDirectory, script), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let printed = '';
  const output = () => printed;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} not ready after ${timeoutMs} ms:\n${printed}`)), timeoutMs);
    child.stdout!.on('data', (chunk: Buffer) => {
      printed += chunk.toString();
      if (readyText !== undefined && printed.includes(readyText)) {
        clearTimeout(timer);
        resolve({ child, output });
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => (printed += chunk.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (readyText === undefined && code === 0) resolve({ child, output });
      else reject(new Error(`${script} exited with ${code}:\n${printed}`));
    });
  });
}

async function redisAnswers(url: string): Promise<boolean> {
  const redis = new Redis(url, { lazyConnect: true, connectTimeout: 1_000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => {});
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

async function chooseRedis(): Promise<string> {
  const fromEnvironment = process.env.REDIS_URL;
  if (fromEnvironment !== undefined && fromEnvironment !== '') return fromEnvironment;
  const local = 'redis://127.0.0.1:6379';
  if (await redisAnswers(local)) return local;
  const port = await freePort();
  log(`no Redis on 6379; starting redis-server on ${port}`);
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  children.add(child);
  child.once('exit', () => children.delete(child));
  cleanups.push(() => stopChild(child));
  const url = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  while (!(await redisAnswers(url))) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error('redis-server did not start');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return url;
}

/** Sends the bench request once and checks the output against raw onnxruntime within `tolerance`. */
async function verify(label: string, url: string, model: BenchModel, request: BenchRequest, reference: { shape: number[]; data: Float32Array }): Promise<void> {
  const response = await fetch(url, { method: 'POST', headers: request.headers, body: request.body as unknown as BodyInit });
  const bytes = Buffer.from(await response.arrayBuffer());
  if (response.status !== 200) throw new Error(`${label}/${model.name}: sample request answered ${response.status}: ${bytes.toString('utf8', 0, 500)}`);
  const output = decodeInferResponse(bytes, response.headers.get(inferenceHeaderContentLength)).find((candidate) => candidate.name === model.outputName);
  if (output === undefined) throw new Error(`${label}/${model.name}: no output '${model.outputName}' in ${bytes.toString('utf8', 0, 300)}`);
  if (JSON.stringify(output.shape) !== JSON.stringify(reference.shape)) {
    throw new Error(`${label}/${model.name}: shape ${JSON.stringify(output.shape)}, expected ${JSON.stringify(reference.shape)}`);
  }
  if (output.data.length !== reference.data.length) throw new Error(`${label}/${model.name}: ${output.data.length} values, expected ${reference.data.length}`);
  let worst = 0;
  for (let i = 0; i < output.data.length; i++) worst = Math.max(worst, Math.abs(output.data[i]! - reference.data[i]!));
  if (!(worst <= tolerance)) throw new Error(`${label}/${model.name}: max |diff| ${worst} > ${tolerance}`);
  log(`${label}/${model.name}: sample output matches raw onnxruntime (max |diff| ${worst.toExponential(2)})`);
}

/** Waits until a target has worked off what an ended autocannon run left in flight (one request, answered). */
async function drain(url: string, request: BenchRequest): Promise<void> {
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: request.headers,
      body: request.body as unknown as BodyInit,
      signal: AbortSignal.timeout(120_000),
    });
    await response.arrayBuffer();
  } catch (error) {
    log(`drain probe failed: ${(error as Error).message}`);
  }
}

/** Gantry's statistics for one model (all versions): inference_count and execution_count. */
async function readCounts(baseUrl: string, model: string): Promise<Counts> {
  const response = await fetch(`${baseUrl}/v2/models/${model}/stats`, { headers: withAdminKey() });
  const body = (await response.json()) as { model_stats?: Array<{ inference_count: number; execution_count: number }> };
  const stats = body.model_stats ?? [];
  return { inference: stats.reduce((sum, s) => sum + s.inference_count, 0), execution: stats.reduce((sum, s) => sum + s.execution_count, 0) };
}

type Measured = Omit<Row, 'model' | 'encoding' | 'connections' | 'target'>;

async function drive(url: string, request: BenchRequest, connections: number, seconds: number, counts?: () => Promise<Counts>): Promise<Measured> {
  const options = { url, method: 'POST', headers: request.headers, body: request.body, connections, timeout: 120 };
  if (warmupSeconds > 0) {
    await autocannon({ ...options, duration: warmupSeconds });
    await drain(url, request);
  }
  // Statistics are flushed ~20 ms after the answers; wait a little so the window's counts are complete.
  const settle = () => new Promise((resolve) => setTimeout(resolve, 150));
  let before: Counts | undefined;
  if (counts !== undefined) {
    await settle();
    before = await counts();
  }
  // autocannon's own histogram has 1 ms resolution; keep each 2xx response time (ms, fractional) instead.
  const latencies: number[] = [];
  const run = autocannon({ ...options, duration: seconds });
  run.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
    if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime);
  });
  const result = await run;
  await drain(url, request);
  let averageBatch: number | undefined;
  if (counts !== undefined && before !== undefined) {
    await settle();
    const after = await counts();
    const executions = after.execution - before.execution;
    averageBatch = executions > 0 ? (after.inference - before.inference) / executions : undefined;
  }
  latencies.sort((a, b) => a - b);
  return {
    requestsPerSecond: result['2xx'] / result.duration,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    total: result['2xx'] + result.non2xx,
    ...(averageBatch === undefined ? {} : { averageBatch }),
  };
}

function format(value: number | undefined, digits = 1): string {
  if (value === undefined || !Number.isFinite(value)) return '';
  return value.toFixed(digits);
}

function table(rows: Row[]): string {
  const lines = [
    '| model | enc | conns | target | req/s | p50 ms | p99 ms | non-2xx | errors | avg batch | gantry/plain | gantry/raw |',
    '| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const row of rows) {
    const raw = row.target === 'raw loop';
    lines.push(
      `| ${row.model} | ${row.encoding} | ${row.connections} | ${row.target} | ${format(row.requestsPerSecond)} | ${format(row.p50Ms, 2)} | ${format(row.p99Ms, 2)} | ` +
        `${raw ? '' : row.non2xx} | ${raw ? '' : row.errors + row.timeouts} | ${format(row.averageBatch, 2)} | ${format(row.gantryOverPlain, 2)} | ${format(row.gantryOverRaw, 2)} |`,
    );
  }
  return lines.join('\n');
}

function find(rows: Row[], model: BenchModel, encoding: Encoding, connections: number, target: Target): Row | undefined {
  return rows.find(
    (r) => r.model === model.label && r.encoding === (target === 'raw loop' ? '' : encoding) && r.connections === connections && r.target === target,
  );
}

function ratios(rows: Row[]): string[] {
  const lines: string[] = [];
  for (const scenario of scenarios) {
    for (const connections of scenario.connections) {
      const gantry = find(rows, scenario.model, scenario.encoding, connections, 'gantry');
      if (gantry === undefined) continue;
      lines.push(
        `${scenario.model.label}, ${scenario.encoding}, ${connections} conn: gantry/plain ${format(gantry.gantryOverPlain, 2)}, gantry/raw ${format(gantry.gantryOverRaw, 3)}`,
      );
    }
  }
  const on = find(rows, tinyModel, 'json', 64, 'gantry');
  const off = find(rows, tinyModel, 'json', 64, 'gantry, batching off');
  if (on !== undefined && off !== undefined) {
    lines.push(
      `${tinyModel.label}, json, 64 conn: batching on/off ${format(on.requestsPerSecond / off.requestsPerSecond, 2)} ` +
        `(${format(on.requestsPerSecond)} vs ${format(off.requestsPerSecond)} req/s; avg batch ${format(on.averageBatch, 2)} vs ${format(off.averageBatch, 2)})`,
    );
  }
  return lines;
}

function targets(rows: Row[]): string[] {
  const lines: string[] = [];
  const check = (what: string, actual: number | undefined, goal: string, ok: boolean | undefined) =>
    lines.push(
      `${ok === undefined ? 'n/a ' : ok ? 'PASS' : 'MISS'}  ${what}: ${actual === undefined || !Number.isFinite(actual) ? 'n/a' : actual.toFixed(2)} (target ${goal})`,
    );
  const tiny64 = find(rows, tinyModel, 'json', 64, 'gantry')?.gantryOverPlain;
  check('tiny model (json), 64 conns, gantry/plain req/s', tiny64, '>= 1.30', tiny64 === undefined ? undefined : tiny64 >= 1.3);
  const ocr64 = find(rows, ocrModel, 'binary', 64, 'gantry')?.gantryOverPlain;
  check('compute-bound model (OCR, binary), 64 conns, gantry/plain req/s', ocr64, '>= 0.95', ocr64 === undefined ? undefined : ocr64 >= 0.95);
  const ocrJson64 = find(rows, ocrModel, 'json', 64, 'gantry')?.gantryOverPlain;
  if (ocrJson64 !== undefined) check('compute-bound model (OCR, json), 64 conns, gantry/plain req/s', ocrJson64, '>= 0.95', ocrJson64 >= 0.95);
  for (const [model, encoding] of [
    [tinyModel, 'json'],
    [ocrModel, 'binary'],
  ] as const) {
    const gantry = find(rows, model, encoding, 1, 'gantry')?.p50Ms;
    const plain = find(rows, model, encoding, 1, 'plain server')?.p50Ms;
    const delta = gantry === undefined || plain === undefined ? undefined : gantry - plain;
    check(`${model.label} (${encoding}), 1 conn, gantry p50 - plain p50 (ms)`, delta, '<= 1.00', delta === undefined ? undefined : delta <= 1);
  }
  const on = find(rows, tinyModel, 'json', 64, 'gantry')?.requestsPerSecond;
  const off = find(rows, tinyModel, 'json', 64, 'gantry, batching off')?.requestsPerSecond;
  const ratio = on === undefined || off === undefined ? undefined : on / off;
  check('tiny model (json), 64 conns, batching on/off req/s', ratio, '>= 2.50', ratio === undefined ? undefined : ratio >= 2.5);
  return lines;
}

async function startBenchGantry(redisUrl: string, env: Record<string, string> = {}): Promise<GantryProcess> {
  const gantry = await startGantry({
    command: 'start',
    redisUrl,
    env: { GANTRY_SHUTDOWN_TIMEOUT_MS: '3000', ...env },
    prefix: `bench-${process.pid}-${Date.now().toString(36)}`,
  });
  children.add(gantry.child);
  cleanups.push(async () => {
    await gantry.cleanup();
    children.delete(gantry.child);
  });
  return gantry;
}

async function putConfig(gantry: GantryProcess, model: string, patch: Record<string, unknown>): Promise<void> {
  const response = await fetch(`${gantry.baseUrl}/v1/models/${model}/config`, {
    method: 'PUT',
    headers: withAdminKey({ 'content-type': 'application/json' }),
    body: JSON.stringify(patch),
  });
  if (response.status !== 200) throw new Error(`PUT config ${JSON.stringify(patch)} answered ${response.status}: ${await response.text()}`);
}

function machine() {
  return { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, node: process.version, platform: `${os.platform()} ${os.release()}`, loadavg: os.loadavg() };
}

async function main(): Promise<void> {
  const started = Date.now();
  const rows: Row[] = [];
  const redisUrl = await chooseRedis();
  const loadAtStart = os.loadavg();
  log(
    `redis ${redisUrl}; ${quick ? 'quick' : 'full'} run: ${durationSeconds}s per point after ${warmupSeconds}s warm-up; load average ${loadAtStart.map((l) => l.toFixed(2)).join(' ')}`,
  );

  const gantry = await startBenchGantry(redisUrl);
  log(`gantry up at ${gantry.baseUrl} (prefix ${gantry.prefix})`);
  for (const model of benchModels) {
    const upload = await uploadModel(gantry.baseUrl, model.name, model.path);
    if (upload.status !== 201) throw new Error(`upload of ${model.name} answered ${upload.status}: ${JSON.stringify(upload.body)}`);
  }

  const rawResults = new Map<string, RawLoopResult>();
  for (const scenario of scenarios) {
    const { model, encoding } = scenario;
    const reference = await referenceOutput(model);
    const request = benchRequest(model, benchInput(model.shape), encoding);
    log(`${model.name} (${encoding}): request body ${(request.body.length / 1024).toFixed(0)} KiB, output ${reference.data.length} floats`);

    const plainPort = await freePort();
    const plain = await spawnNode('plain-server.js', [model.path, String(plainPort), model.name], 'listening');
    cleanups.push(() => stopChild(plain.child));
    const plainUrl = `http://127.0.0.1:${plainPort}/v2/models/${model.name}/infer`;
    const gantryUrl = `${gantry.baseUrl}/v2/models/${model.name}/infer`;
    await verify('plain server', plainUrl, model, request, reference);
    await verify('gantry', gantryUrl, model, request, reference);
    const counts = () => readCounts(gantry.baseUrl, model.name);

    for (const connections of scenario.connections) {
      const seconds = durationFor(model, encoding, connections);
      const rawKey = `${model.name}:${connections}`;
      let rawResult = rawResults.get(rawKey);
      if (rawResult === undefined) {
        log(`${model.name} x${connections}: raw loop`);
        const raw = await spawnNode(
          'raw-loop.js',
          [model.name, String(Math.min(seconds, durationSeconds)), String(connections), String(warmupSeconds)],
          undefined,
        );
        rawResult = JSON.parse(raw.output().trim().split('\n').pop()!) as RawLoopResult;
        rawResults.set(rawKey, rawResult);
        rows.push({
          model: model.label,
          encoding: '',
          connections,
          target: 'raw loop',
          requestsPerSecond: rawResult.runsPerSecond,
          p50Ms: rawResult.p50Ms,
          p99Ms: rawResult.p99Ms,
          non2xx: 0,
          errors: 0,
          timeouts: 0,
          total: rawResult.runs,
        });
      }
      log(`${model.name} (${encoding}) x${connections}: plain server`);
      const plainRow: Row = { model: model.label, encoding, connections, target: 'plain server', ...(await drive(plainUrl, request, connections, seconds)) };
      log(`${model.name} (${encoding}) x${connections}: gantry`);
      const gantryRow: Row = {
        model: model.label,
        encoding,
        connections,
        target: 'gantry',
        ...(await drive(gantryUrl, request, connections, seconds, counts)),
      };
      gantryRow.gantryOverPlain = gantryRow.requestsPerSecond / plainRow.requestsPerSecond;
      gantryRow.gantryOverRaw = gantryRow.requestsPerSecond / rawResult.runsPerSecond;
      rows.push(plainRow, gantryRow);
      if (model === tinyModel && encoding === 'json' && connections >= 64) {
        log(`${model.name} (${encoding}) x${connections}: gantry with batching off (maxBatchSize 0)`);
        await putConfig(gantry, model.name, { maxBatchSize: 0 });
        const offRow: Row = {
          model: model.label,
          encoding,
          connections,
          target: 'gantry, batching off',
          ...(await drive(gantryUrl, request, connections, seconds, counts)),
        };
        offRow.gantryOverPlain = offRow.requestsPerSecond / plainRow.requestsPerSecond;
        offRow.gantryOverRaw = offRow.requestsPerSecond / rawResult.runsPerSecond;
        rows.push(offRow);
        await putConfig(gantry, model.name, { maxBatchSize: null });
      }
      if (gantry.child.exitCode !== null) throw new Error(`gantry exited (${gantry.child.exitCode}) during the run:\n${gantry.output()}`);
    }
    await stopChild(plain.child);
  }

  const printedTable = table(rows);
  const ratioLines = ratios(rows);
  const targetLines = targets(rows);
  const loadAtEnd = os.loadavg();
  console.log('');
  console.log(printedTable);
  console.log('');
  console.log(
    `req/s counts 2xx answers only. enc: json = OIP v2 JSON in and out; binary = binary tensor extension in and out (JSON header + raw bytes), ` +
      `for the plain server and Gantry alike. ${durationSeconds}s per point after ${warmupSeconds}s warm-up (OCR binary at 64 conns: ${durationFor(ocrModel, 'binary', 64)}s); ` +
      `raw loop = onnxruntime-node session.run in one process with N runs in flight, no HTTP. avg batch = Gantry's inference_count/execution_count over the window. ` +
      `Load average at start ${loadAtStart.map((l) => l.toFixed(2)).join(' ')}, at end ${loadAtEnd.map((l) => l.toFixed(2)).join(' ')}.`,
  );
  console.log('');
  for (const line of ratioLines) console.log(line);
  console.log('');
  for (const line of targetLines) console.log(line);
  const gantryOutput = gantry.output().trim();
  if (gantryOutput !== '') log(`gantry printed (LOG_LEVEL=warn):\n${gantryOutput.slice(-4000)}`);

  const results = {
    date: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
    durationSeconds,
    warmupSeconds,
    machine: { ...machine(), loadavgAtStart: loadAtStart },
    redisUrl: redisUrl.replace(/\/\/[^@/]*@/, '//***@'),
    rows,
    ratios: ratioLines,
    targets: targetLines,
    wallSeconds: (Date.now() - started) / 1000,
  };
  const resultsDirectory = path.join(repositoryRoot, 'bench/results');
  await mkdir(resultsDirectory, { recursive: true });
  await writeFile(path.join(resultsDirectory, 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
  log(`wrote bench/results/latest.json; wall time ${results.wallSeconds.toFixed(0)} s`);
}

interface KnobVariant {
  name: string;
  env?: Record<string, string>;
  config?: Record<string, unknown>;
}

/** Tuning variants tried by `--knobs` (src defaults: 2 jobs in flight, 64 requests per job, worker concurrency 4). */
const knobVariants: KnobVariant[] = [
  { name: 'defaults' },
  { name: 'GANTRY_MAX_JOBS_IN_FLIGHT=1', env: { GANTRY_MAX_JOBS_IN_FLIGHT: '1' } },
  { name: 'GANTRY_MAX_JOBS_IN_FLIGHT=4', env: { GANTRY_MAX_JOBS_IN_FLIGHT: '4' } },
  { name: 'GANTRY_MAX_JOBS_IN_FLIGHT=8', env: { GANTRY_MAX_JOBS_IN_FLIGHT: '8' } },
  { name: 'GANTRY_MAX_REQUESTS_PER_JOB=16', env: { GANTRY_MAX_REQUESTS_PER_JOB: '16' } },
  { name: 'GANTRY_MAX_REQUESTS_PER_JOB=256', env: { GANTRY_MAX_REQUESTS_PER_JOB: '256' } },
  { name: 'GANTRY_WORKER_CONCURRENCY=1', env: { GANTRY_WORKER_CONCURRENCY: '1' } },
  { name: 'GANTRY_WORKER_CONCURRENCY=2', env: { GANTRY_WORKER_CONCURRENCY: '2' } },
  { name: 'GANTRY_WORKER_CONCURRENCY=8', env: { GANTRY_WORKER_CONCURRENCY: '8' } },
  { name: 'intraOpThreads=1', config: { intraOpThreads: 1 } },
  { name: 'preferredBatchSizes=[32], maxQueueDelay=2ms', config: { preferredBatchSizes: [32], maxQueueDelayMicroseconds: 2000 } },
  { name: 'maxBatchSize=0 (batching off)', config: { maxBatchSize: 0 } },
  { name: 'maxBatchSize=4', config: { maxBatchSize: 4 } },
  { name: 'intraOpThreads=1 + maxBatchSize=4', config: { intraOpThreads: 1, maxBatchSize: 4 } },
  { name: 'GANTRY_WORKER_CONCURRENCY=2 + GANTRY_MAX_JOBS_IN_FLIGHT=1', env: { GANTRY_WORKER_CONCURRENCY: '2', GANTRY_MAX_JOBS_IN_FLIGHT: '1' } },
];

/**
 * Knob variants, each on a freshly started Gantry. The machine is shared and noisy, so every variant runs
 * BENCH_KNOBS_REPEAT times (default 1), round-robin, and the median req/s is reported beside each run's value.
 * BENCH_KNOBS_MODEL=ocr-rec drives the recognizer in binary instead of the tiny MLP in JSON.
 */
async function knobsMain(): Promise<void> {
  const started = Date.now();
  const redisUrl = await chooseRedis();
  const model = process.env.BENCH_KNOBS_MODEL === ocrModel.name ? ocrModel : tinyModel;
  const encoding: Encoding = model === ocrModel ? 'binary' : 'json';
  const connections = 64;
  const seconds = durationFor(model, encoding, connections);
  const repeat = Math.max(1, Number(process.env.BENCH_KNOBS_REPEAT ?? '1'));
  const request = benchRequest(model, benchInput(model.shape), encoding);
  const only = process.env.BENCH_KNOBS?.split(',').map((name) => name.trim());
  const variants = only === undefined ? knobVariants : knobVariants.filter((variant) => only.some((name) => variant.name.startsWith(name)));
  log(
    `knobs: ${model.name} ${encoding} x${connections}, ${seconds}s per variant, ${repeat} round(s); load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  const plainPort = await freePort();
  const plain = await spawnNode('plain-server.js', [model.path, String(plainPort), model.name], 'listening');
  cleanups.push(() => stopChild(plain.child));
  const plainUrl = `http://127.0.0.1:${plainPort}/v2/models/${model.name}/infer`;
  const plainRuns: Measured[] = [await drive(plainUrl, request, connections, seconds)];
  const runs = new Map<string, Measured[]>(variants.map((variant) => [variant.name, []]));
  for (let round = 0; round < repeat; round++) {
    for (const variant of variants) {
      const gantry = await startBenchGantry(redisUrl, variant.env);
      const upload = await uploadModel(gantry.baseUrl, model.name, model.path);
      if (upload.status !== 201) throw new Error(`upload answered ${upload.status}`);
      if (variant.config !== undefined) await putConfig(gantry, model.name, variant.config);
      const url = `${gantry.baseUrl}/v2/models/${model.name}/infer`;
      await drain(url, request);
      const measured = await drive(url, request, connections, seconds, () => readCounts(gantry.baseUrl, model.name));
      runs.get(variant.name)!.push(measured);
      log(
        `round ${round + 1} ${variant.name}: ${measured.requestsPerSecond.toFixed(0)} req/s, p50 ${measured.p50Ms.toFixed(1)} ms, p99 ${measured.p99Ms.toFixed(1)} ms, avg batch ${format(measured.averageBatch, 2)}; load ${os.loadavg()[0]!.toFixed(2)}`,
      );
      await gantry.cleanup();
      children.delete(gantry.child);
    }
    plainRuns.push(await drive(plainUrl, request, connections, seconds));
  }
  const median = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted.length % 2 === 1 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
  };
  const plainRps = median(plainRuns.map((run) => run.requestsPerSecond));
  console.log('');
  console.log(
    `| variant (${model.label}, ${encoding}, ${connections} conns) | median req/s | each run req/s | median p50 ms | median p99 ms | avg batch | non-2xx | gantry/plain |`,
  );
  console.log('| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |');
  const summary = variants.map((variant) => {
    const list = runs.get(variant.name)!;
    const rps = median(list.map((run) => run.requestsPerSecond));
    return {
      variant: variant.name,
      medianRequestsPerSecond: rps,
      runs: list,
      p50Ms: median(list.map((run) => run.p50Ms)),
      p99Ms: median(list.map((run) => run.p99Ms)),
      averageBatch: median(list.map((run) => run.averageBatch ?? Number.NaN)),
      non2xx: list.reduce((sum, run) => sum + run.non2xx, 0),
      gantryOverPlain: rps / plainRps,
    };
  });
  for (const row of summary) {
    console.log(
      `| ${row.variant} | ${format(row.medianRequestsPerSecond)} | ${row.runs.map((run) => run.requestsPerSecond.toFixed(0)).join(', ')} | ${format(row.p50Ms, 1)} | ${format(row.p99Ms, 1)} | ` +
        `${format(row.averageBatch, 2)} | ${row.non2xx} | ${format(row.gantryOverPlain, 2)} |`,
    );
  }
  console.log('');
  console.log(
    `plain server: ${plainRuns.map((run) => run.requestsPerSecond.toFixed(0)).join(', ')} req/s (before, then after each round; ratio uses the median). ` +
      `Load average at end ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}.`,
  );
  const resultsDirectory = path.join(repositoryRoot, 'bench/results');
  await mkdir(resultsDirectory, { recursive: true });
  await writeFile(
    path.join(resultsDirectory, `knobs-${model.name}.json`),
    `${JSON.stringify({ date: new Date().toISOString(), machine: machine(), model: model.name, encoding, seconds, warmupSeconds, repeat, plainRuns, summary, wallSeconds: (Date.now() - started) / 1000 }, null, 2)}\n`,
  );
}

async function cleanup(): Promise<void> {
  for (const step of cleanups.reverse()) {
    try {
      await step();
    } catch (error) {
      log(`cleanup step failed: ${(error as Error).message}`);
    }
  }
  cleanups.length = 0;
  for (const child of children) child.kill('SIGKILL');
}

let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    if (interrupted) return;
    interrupted = true;
    log(`${signal}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

let exitCode = 0;
try {
  await (knobs ? knobsMain() : main());
} catch (error) {
  exitCode = 1;
  log(`FAILED: ${(error as Error).stack ?? String(error)}`);
} finally {
  await cleanup();
}
process.exit(exitCode);
