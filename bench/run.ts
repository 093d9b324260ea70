/**
 * `npm run bench [-- --quick] [-- --knobs] [-- --trace]`: issue 18's comparison. Raw onnxruntime loop vs the plain
 * Fastify+onnxruntime server with onnxruntime's defaults vs the same server tuned (1 intra-op/inter-op thread, no
 * spinning) vs Gantry (`start` role: API + one worker over BullMQ/Redis): the tiny MLP in JSON at 1 and 64
 * connections (and Gantry with dynamic batching off at 64, through PUT /v1/models/{m}/config {"maxBatchSize": 0}),
 * the PaddleOCR recognizer with the binary tensor extension at 1 and 16 (full runs also in JSON). Each point runs in
 * alternating rounds (every target once per round, rotated); the table shows medians, ratios and each process's CPU
 * per request; then the issue's targets, PASS or MISS. Writes bench/results/latest.json.
 *
 * `--knobs` instead restarts Gantry under each tuning variant (environment and model configuration) and drives the
 * tiny MLP at 64 connections through it (BENCH_KNOBS_MODEL=ocr-rec: the recognizer in binary), BENCH_KNOBS_REPEAT
 * rounds; writes bench/results/knobs-<model>.json. `--trace` runs trace.ts (the single-request path, stage by stage).
 */
import { spawn, type ChildProcess } from 'node:child_process';
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
  type BenchModel,
  type BenchRequest,
  type Encoding,
} from './models.js';
import { commandLine, descendants, localRedisPid, perRequest, sampleGroups, type ProcessGroups } from './process-cpu.js';
import { runTrace } from './trace.js';
import { loadAverageText, writeBenchResults } from './results-file.js';
import { referenceOutput, type RawLoopResult } from './raw-loop.js';
import { cpuKinds, format, targets, type Measured, type Row, type Target } from './targets.js';

const quick = process.argv.includes('--quick');
const knobs = process.argv.includes('--knobs');
const trace = process.argv.includes('--trace');
const durationSeconds = quick ? 3 : 10;
const warmupSeconds = quick ? 1 : 2;
/** Rounds per point; each round measures every target of the point once, in a rotated order. */
const rounds = 3;

const [tinyModel, ocrModel] = benchModels as [BenchModel, BenchModel];

const servedTargets: Target[] = ['plain server', 'plain server, tuned', 'gantry'];

interface Point {
  model: BenchModel;
  encoding: Encoding;
  connections: number;
  seconds: number;
  targets: Target[];
}
/**
 * What is measured: the target points. The recognizer's answer is 265,000 floats: ~1 MB in binary, ~6 MB in
 * JSON, so it is measured in binary (16 connections: the point; 1 connection: its latency), and in JSON
 * only in full runs. At 16 connections one round of OCR answers takes ~0.5 s, so its window is a little longer.
 */
const points: Point[] = [
  { model: tinyModel, encoding: 'json', connections: 1, seconds: durationSeconds, targets: servedTargets },
  { model: tinyModel, encoding: 'json', connections: 64, seconds: durationSeconds, targets: [...servedTargets, 'gantry, batching off'] },
  { model: ocrModel, encoding: 'binary', connections: 1, seconds: durationSeconds, targets: servedTargets },
  { model: ocrModel, encoding: 'binary', connections: 16, seconds: durationSeconds + 1, targets: servedTargets },
  ...(quick
    ? []
    : [
        { model: ocrModel, encoding: 'json' as const, connections: 1, seconds: durationSeconds, targets: servedTargets },
        { model: ocrModel, encoding: 'json' as const, connections: 16, seconds: 2 * durationSeconds, targets: servedTargets },
      ]),
];
/** The knobs mode's window at 64 connections (as before rounds came in): 4 s quick, 15 s full, the OCR at least 6 s. */
function durationFor(model: BenchModel): number {
  const seconds = quick ? 4 : 15;
  return model === ocrModel ? Math.max(seconds, 6) : seconds;
}
const tolerance = 1e-4;
const benchDirectory = path.dirname(new URL(import.meta.url).pathname);

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

/**
 * Warm-up, then the measured window. `groups` names the processes whose CPU is read around the window (called after
 * the warm-up, so workers forked late are found).
 */
async function drive(
  url: string,
  request: BenchRequest,
  connections: number,
  seconds: number,
  counts?: () => Promise<Counts>,
  groups?: () => ProcessGroups,
): Promise<Measured> {
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
  const processes = groups?.();
  const cpuBefore = processes === undefined ? undefined : sampleGroups(processes);
  const run = autocannon({ ...options, duration: seconds });
  run.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
    if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime);
  });
  const result = await run;
  const cpuMicroseconds = processes === undefined || cpuBefore === undefined ? undefined : perRequest(cpuBefore, sampleGroups(processes), result['2xx']);
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
    ...(cpuMicroseconds === undefined ? {} : { cpuMicroseconds }),
  };
}

function median(values: number[]): number {
  const sorted = values.filter((value) => Number.isFinite(value)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** A row from its rounds: medians of rates, latencies, batch and each process's CPU; sums of the error counts. */
function summarize(point: Point, target: Target, runs: Measured[]): Row {
  const kinds = [...new Set(runs.flatMap((run) => Object.keys(run.cpuMicroseconds ?? {})))];
  const batches = runs.flatMap((run) => (run.averageBatch === undefined ? [] : [run.averageBatch]));
  return {
    model: point.model.label,
    encoding: point.encoding,
    connections: point.connections,
    target,
    requestsPerSecond: median(runs.map((run) => run.requestsPerSecond)),
    p50Ms: median(runs.map((run) => run.p50Ms)),
    p99Ms: median(runs.map((run) => run.p99Ms)),
    non2xx: runs.reduce((sum, run) => sum + run.non2xx, 0),
    errors: runs.reduce((sum, run) => sum + run.errors, 0),
    timeouts: runs.reduce((sum, run) => sum + run.timeouts, 0),
    total: runs.reduce((sum, run) => sum + run.total, 0),
    ...(batches.length === 0 ? {} : { averageBatch: median(batches) }),
    ...(kinds.length === 0
      ? {}
      : { cpuMicroseconds: Object.fromEntries(kinds.map((kind) => [kind, median(runs.map((run) => run.cpuMicroseconds?.[kind] ?? Number.NaN))])) }),
    runs,
  };
}

function table(rows: Row[]): string {
  const lines = [
    '| model | enc | conns | target | req/s | p50 ms | p99 ms | non-2xx | errors | avg batch | /plain | /plain tuned | /raw | ' +
      cpuKinds.map((kind) => `${kind} µs`).join(' | ') +
      ' |',
    `| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ${cpuKinds.map(() => '---:').join(' | ')} |`,
  ];
  for (const row of rows) {
    const raw = row.target === 'raw loop';
    lines.push(
      `| ${row.model} | ${row.encoding} | ${row.connections} | ${row.target} | ${format(row.requestsPerSecond)} | ${format(row.p50Ms, 2)} | ${format(row.p99Ms, 2)} | ` +
        `${raw ? '' : row.non2xx} | ${raw ? '' : row.errors + row.timeouts} | ${format(row.averageBatch, 2)} | ${format(row.gantryOverPlain, 2)} | ` +
        `${format(row.gantryOverTuned, 2)} | ${format(row.gantryOverRaw, 2)} | ${cpuKinds.map((kind) => format(row.cpuMicroseconds?.[kind], 0)).join(' | ')} |`,
    );
  }
  return lines.join('\n');
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

/** Gantry's processes: the `gantry start` process (API) and its forked children (workers; anything else as "other"). */
function gantryGroups(gantry: GantryProcess, redisPid: number | undefined): ProcessGroups {
  const apiPid = gantry.child.pid!;
  const children = descendants(apiPid);
  const workers = children.filter((pid) => commandLine(pid).includes('worker'));
  const others = children.filter((pid) => !workers.includes(pid));
  return {
    api: [apiPid],
    worker: workers,
    ...(others.length === 0 ? {} : { other: others }),
    ...(redisPid === undefined ? {} : { redis: [redisPid] }),
    'load generator': [process.pid],
  };
}

function plainGroups(pid: number, redisPid: number | undefined): ProcessGroups {
  return { plain: [pid], ...(redisPid === undefined ? {} : { redis: [redisPid] }), 'load generator': [process.pid] };
}

/** Each round measures every target of a point once, starting one further along, so no target is always first. */
function rotated<T>(items: T[], by: number): T[] {
  const offset = by % items.length;
  return [...items.slice(offset), ...items.slice(0, offset)];
}

async function main(): Promise<void> {
  const started = Date.now();
  const rows: Row[] = [];
  const redisUrl = await chooseRedis();
  const redisPid = await localRedisPid(redisUrl);
  const loadAtStart = os.loadavg();
  log(
    `redis ${redisUrl} (pid ${redisPid ?? 'not local'}); ${quick ? 'quick' : 'full'} run: ${rounds} rounds per point, ${durationSeconds}s windows after ` +
      `${warmupSeconds}s warm-up; load average ${loadAtStart.map((l) => l.toFixed(2)).join(' ')}`,
  );

  const gantry = await startBenchGantry(redisUrl);
  log(`gantry up at ${gantry.baseUrl} (prefix ${gantry.prefix})`);
  for (const model of benchModels) {
    const upload = await uploadModel(gantry.baseUrl, model.name, model.path);
    if (upload.status !== 201) throw new Error(`upload of ${model.name} answered ${upload.status}: ${JSON.stringify(upload.body)}`);
  }

  const rawResults = new Map<string, RawLoopResult>();
  for (const model of benchModels) {
    const modelPoints = points.filter((point) => point.model === model);
    const reference = await referenceOutput(model);
    // Both plain servers stay up for the model's points, so rounds can alternate between them and Gantry.
    const plainUrls = new Map<Target, { url: string; pid: number }>();
    const plainServers: ChildProcess[] = [];
    for (const target of ['plain server', 'plain server, tuned'] as const) {
      const port = await freePort();
      const plain = await spawnNode(
        'plain-server.js',
        [model.path, String(port), model.name, ...(target === 'plain server, tuned' ? ['--tuned'] : [])],
        'listening',
      );
      cleanups.push(() => stopChild(plain.child));
      plainServers.push(plain.child);
      plainUrls.set(target, { url: `http://127.0.0.1:${port}/v2/models/${model.name}/infer`, pid: plain.child.pid! });
    }
    const gantryUrl = `${gantry.baseUrl}/v2/models/${model.name}/infer`;
    const counts = () => readCounts(gantry.baseUrl, model.name);

    for (const point of modelPoints) {
      const { encoding, connections, seconds } = point;
      const request = benchRequest(model, benchInput(model.shape), encoding);
      log(`${model.name} (${encoding}) x${connections}: request body ${(request.body.length / 1024).toFixed(0)} KiB, output ${reference.data.length} floats`);
      for (const [target, plain] of plainUrls) await verify(target, plain.url, model, request, reference);
      await verify('gantry', gantryUrl, model, request, reference);

      const rawKey = `${model.name}:${connections}`;
      let rawResult = rawResults.get(rawKey);
      if (rawResult === undefined) {
        log(`${model.name} x${connections}: raw loop`);
        const raw = await spawnNode('raw-loop.js', [model.name, String(durationSeconds), String(connections), String(warmupSeconds)], undefined);
        rawResult = JSON.parse(raw.output().trim().split('\n').pop()!) as RawLoopResult;
        rawResults.set(rawKey, rawResult);
        const rawRun: Measured = {
          requestsPerSecond: rawResult.runsPerSecond,
          p50Ms: rawResult.p50Ms,
          p99Ms: rawResult.p99Ms,
          non2xx: 0,
          errors: 0,
          timeouts: 0,
          total: rawResult.runs,
        };
        rows.push({ ...summarize(point, 'raw loop', [rawRun]), encoding: '' });
      }

      const runs = new Map<Target, Measured[]>(point.targets.map((target) => [target, []]));
      for (let round = 0; round < rounds; round++) {
        for (const target of rotated(point.targets, round)) {
          log(`${model.name} (${encoding}) x${connections}, round ${round + 1}/${rounds}: ${target}`);
          const plain = plainUrls.get(target);
          let measured: Measured;
          if (plain !== undefined) {
            measured = await drive(plain.url, request, connections, seconds, undefined, () => plainGroups(plain.pid, redisPid));
          } else {
            const batchingOff = target === 'gantry, batching off';
            if (batchingOff) await putConfig(gantry, model.name, { maxBatchSize: 0 });
            try {
              measured = await drive(gantryUrl, request, connections, seconds, counts, () => gantryGroups(gantry, redisPid));
            } finally {
              if (batchingOff) await putConfig(gantry, model.name, { maxBatchSize: null });
            }
          }
          runs.get(target)!.push(measured);
          if (gantry.child.exitCode !== null) throw new Error(`gantry exited (${gantry.child.exitCode}) during the run:\n${gantry.output()}`);
        }
      }
      const pointRows = point.targets.map((target) => summarize(point, target, runs.get(target)!));
      const plainRate = pointRows.find((row) => row.target === 'plain server')?.requestsPerSecond;
      const tunedRate = pointRows.find((row) => row.target === 'plain server, tuned')?.requestsPerSecond;
      for (const row of pointRows) {
        if (!row.target.startsWith('gantry')) continue;
        if (plainRate !== undefined) row.gantryOverPlain = row.requestsPerSecond / plainRate;
        if (tunedRate !== undefined) row.gantryOverTuned = row.requestsPerSecond / tunedRate;
        row.gantryOverRaw = row.requestsPerSecond / rawResult.runsPerSecond;
      }
      rows.push(...pointRows);
    }
    for (const child of plainServers) await stopChild(child);
  }

  const printedTable = table(rows);
  const targetLines = targets(rows);
  const loadAtEnd = os.loadavg();
  console.log('');
  console.log(printedTable);
  console.log('');
  console.log(
    `Medians of ${rounds} alternating rounds per point (${durationSeconds}s windows, OCR binary at 16 conns ${durationSeconds + 1}s, after ${warmupSeconds}s warm-up each). ` +
      `req/s counts 2xx answers only. enc: json = OIP v2 JSON in and out; binary = binary tensor extension in and out, for every server alike. ` +
      `plain server = Fastify + in-process onnxruntime with its defaults; plain server, tuned = the same with 1 intra-op and 1 inter-op thread and no spinning (as Gantry's worker). ` +
      `raw loop = onnxruntime-node session.run in one process, N runs in flight, no HTTP. avg batch = Gantry's inference_count/execution_count over the window. ` +
      `µs columns: CPU time (utime+stime from /proc) of each process kind over the window / answered requests; api = the gantry start process, worker = its forked workers, ` +
      `redis = the local redis-server (shared with anything else using it), load generator = this process (autocannon). ` +
      `Load average at start ${loadAtStart.map((l) => l.toFixed(2)).join(' ')}, at end ${loadAtEnd.map((l) => l.toFixed(2)).join(' ')}.`,
  );
  console.log('');
  for (const line of targetLines) console.log(line);
  const gantryOutput = gantry.output().trim();
  if (gantryOutput !== '') log(`gantry printed (LOG_LEVEL=warn):\n${gantryOutput.slice(-4000)}`);

  const results = {
    date: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
    rounds,
    durationSeconds,
    warmupSeconds,
    machine: { ...machine(), loadavgAtStart: loadAtStart },
    redisUrl: redisUrl.replace(/\/\/[^@/]*@/, '//***@'),
    rows,
    targets: targetLines,
    wallSeconds: (Date.now() - started) / 1000,
  };
  log(`wrote ${await writeBenchResults('latest.json', results)}; wall time ${results.wallSeconds.toFixed(0)} s`);
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
  const seconds = durationFor(model);
  const repeat = Math.max(1, Number(process.env.BENCH_KNOBS_REPEAT ?? '1'));
  const request = benchRequest(model, benchInput(model.shape), encoding);
  const only = process.env.BENCH_KNOBS?.split(',').map((name) => name.trim());
  const variants = only === undefined ? knobVariants : knobVariants.filter((variant) => only.some((name) => variant.name.startsWith(name)));
  log(`knobs: ${model.name} ${encoding} x${connections}, ${seconds}s per variant, ${repeat} round(s); load average ${loadAverageText()}`);
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
      `Load average at end ${loadAverageText()}.`,
  );
  await writeBenchResults(`knobs-${model.name}.json`, {
    date: new Date().toISOString(),
    machine: machine(),
    model: model.name,
    encoding,
    seconds,
    warmupSeconds,
    repeat,
    plainRuns,
    summary,
    wallSeconds: (Date.now() - started) / 1000,
  });
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
  await (trace ? runTrace() : knobs ? knobsMain() : main());
} catch (error) {
  exitCode = 1;
  log(`FAILED: ${(error as Error).stack ?? String(error)}`);
} finally {
  await cleanup();
}
process.exit(exitCode);
