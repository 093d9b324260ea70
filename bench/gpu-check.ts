/**
 * `npm run build && node dist/bench/gpu-check.js [--quick] [--requests N] [--seconds S] [--clients C] [--batch B]`
 *
 * The check a user runs on a CUDA host (docs/gpu.md). It starts two real gantries (`cli.js start`, each with its
 * own queue prefix and data directory, on the Redis of REDIS_URL or 127.0.0.1:6379): one with `GANTRY_DEVICE=cpu`
 * and one with `GANTRY_DEVICE=cuda` (`GANTRY_GPU_CHECK_DEVICE=cpu` runs that one on the CPU too: a rehearsal on a
 * machine without a GPU). Then it
 *   1. reads `gantry_worker_info{device=...}` on each worker's /metrics: the CPU side must say cpu, the other cuda;
 *   2. uploads the same models to both (bench/gpu/check-models.ts) and compares their answers to the same seeded
 *      requests at batch 1 and at batch B, with a tolerance per datatype (bench/gpu/compare-outputs.ts);
 *   3. measures each side alone: the median latency of N sequential requests at batch 1, and answered requests per
 *      second with C clients in flight for S seconds at batch 1 and at batch B;
 * and prints one table. Exit code 1 when a device is wrong, an answer is outside the tolerance or anything fails.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { repositoryRoot, startGantry, uploadModel, type GantryProcess } from '../support/gantry-process.js';
import { checkModels, type CheckModel } from './gpu/check-models.js';
import { compareOutputs, floatTolerances, infer } from './gpu/compare-outputs.js';
import { medianLatencyMs, requestsPerSecond } from './gpu/measure.js';
import { encodeInferRequest } from './infer-encoding.js';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const option = (name: string, fallback: number) => {
  const index = argv.indexOf(name);
  const value = index === -1 ? fallback : Number(argv[index + 1]);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} needs a positive integer`);
  return value;
};
const settings = {
  requests: option('--requests', quick ? 20 : 200),
  seconds: option('--seconds', quick ? 2 : 10),
  clients: option('--clients', 8),
  batch: option('--batch', 8),
};
const deviceUnderTest = process.env.GANTRY_GPU_CHECK_DEVICE ?? 'cuda';
if (deviceUnderTest !== 'cuda' && deviceUnderTest !== 'cpu') throw new Error(`GANTRY_GPU_CHECK_DEVICE must be cuda or cpu, not ${deviceUnderTest}`);
const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const log = (line: string) => process.stderr.write(`[gpu-check] ${line}\n`);
const failures: string[] = [];
const started: GantryProcess[] = [];

/** The CUDA libraries' loader path and settings; startGantry passes only PATH and HOME from this environment. */
function cudaEnvironment(): Record<string, string> {
  const names = Object.keys(process.env).filter((key) => key === 'LD_LIBRARY_PATH' || /^(CUDA_|NVIDIA_|ORT_)/.test(key));
  return Object.fromEntries(names.map((key) => [key, process.env[key]!]));
}

/** Starts a gantry and waits for its worker, which on CUDA probes the device first (longer than startGantry waits). */
async function startSide(label: 'cpu' | 'cuda', device: string): Promise<GantryProcess> {
  const gantry = await startGantry({
    redisUrl,
    waitForReady: false,
    prefix: `gpu-check-${label}-${process.pid}`,
    env: { ...cudaEnvironment(), GANTRY_DEVICE: device },
  });
  started.push(gantry);
  const answers = (url: string) =>
    fetch(url, { signal: AbortSignal.timeout(2_000) }).then(
      (r) => r.status === 200,
      () => false,
    );
  for (const deadline = Date.now() + 180_000; Date.now() < deadline; await new Promise((resolve) => setTimeout(resolve, 250))) {
    // `gantry start` restarts a worker that exits, so a CUDA failure would otherwise show only as a timeout.
    const failed = gantry.output().match(/^.*(failed to start|cannot be used).*$/m);
    if (gantry.child.exitCode !== null || failed) throw new Error(`GANTRY_DEVICE=${device} gantry failed:\n${gantry.output().slice(-3000)}`);
    if ((await answers(`${gantry.baseUrl}/v2/health/ready`)) && (await answers(`${gantry.workerUrl}/ready`))) return gantry;
  }
  throw new Error(`GANTRY_DEVICE=${device} gantry not ready after 180 s:\n${gantry.output().slice(-3000)}`);
}

async function checkDevice(gantry: GantryProcess, label: string, expected: string): Promise<string> {
  const metrics = await (await fetch(`${gantry.workerUrl}/metrics`)).text();
  const info = metrics.split('\n').filter((line) => line.startsWith('gantry_worker_info'));
  if (!info.includes(`gantry_worker_info{device="${expected}"} 1`))
    failures.push(`${label} worker: expected device ${expected}, /metrics says ${info.join('; ')}`);
  return info.join('; ') || 'no gantry_worker_info';
}

const side = (gantry: GantryProcess, model: CheckModel) => `${gantry.baseUrl}/v2/models/${model.name}/infer`;
const fixed = (value: number | undefined, digits = 1) => (value === undefined ? '–' : value.toFixed(digits));
const ratio = (cpu: number | undefined, cuda: number | undefined) => (cpu && cuda ? `${(cuda / cpu).toFixed(2)}×` : '–');

/** One table row: the comparison at batch 1 and B, then (for measured models) latency and throughput per side. */
async function checkModel(cpu: GantryProcess, cuda: GantryProcess, model: CheckModel): Promise<string[]> {
  for (const [label, gantry] of [
    ['cpu', cpu],
    ['cuda', cuda],
  ] as const) {
    const upload = await uploadModel(gantry.baseUrl, model.name, model.file);
    if (upload.status !== 201 || upload.body?.state !== 'READY') throw new Error(`${label} upload answered ${upload.status}: ${JSON.stringify(upload.body)}`);
  }
  const requests = [1, settings.batch].map((batch) => encodeInferRequest([model.input(batch)], 'binary'));
  let elements = 0;
  let maxAbs = 0;
  let outside = 0;
  for (const [index, request] of requests.entries()) {
    const comparison = compareOutputs(await infer(side(cuda, model), request), await infer(side(cpu, model), request));
    if (comparison.problem !== undefined) failures.push(`${model.name} batch ${index === 0 ? 1 : settings.batch}: ${comparison.problem}`);
    [elements, maxAbs, outside] = [elements + comparison.elements, Math.max(maxAbs, comparison.maxAbs), outside + comparison.outside];
  }
  if (outside > 0)
    failures.push(`${model.name}: ${outside} of ${elements} output elements outside the tolerance (max abs difference ${maxAbs.toExponential(2)})`);
  const row = [model.name, String(elements), maxAbs === 0 ? '0' : maxAbs.toExponential(2), outside === 0 ? 'ok' : `${outside} outside`];
  if (!model.measured) return [...row, '–', '–', '–', '–', '–', '–', '–', '–', '–'];
  const results = { cpu: [] as number[], cuda: [] as number[] };
  for (const [label, gantry] of [
    ['cpu', cpu],
    ['cuda', cuda],
  ] as const) {
    const url = side(gantry, model);
    results[label].push(await medianLatencyMs(url, requests[0]!, settings.requests, quick ? 3 : 20));
    for (const request of requests) results[label].push(await requestsPerSecond(url, request, settings.clients, settings.seconds));
    log(
      `${model.name} on ${label}: p50 ${fixed(results[label][0], 2)} ms, ${fixed(results[label][1])} req/s (batch 1), ${fixed(results[label][2])} req/s (batch ${settings.batch})`,
    );
  }
  const [c, g] = [results.cpu, results.cuda];
  return [...row, fixed(c[0], 2), fixed(g[0], 2), ratio(g[0], c[0]), fixed(c[1]), fixed(g[1]), ratio(c[1], g[1]), fixed(c[2]), fixed(g[2]), ratio(c[2], g[2])];
}

/** Facts a reader of the table needs: GPU, versions, whether the CUDA provider library is installed. */
function environmentLines(): string[] {
  const ortBin = path.join(repositoryRoot, 'node_modules/onnxruntime-node/bin/napi-v6/linux/x64');
  const ortVersion = (JSON.parse(readFileSync(path.join(repositoryRoot, 'node_modules/onnxruntime-node/package.json'), 'utf8')) as { version: string }).version;
  let gpu = 'nvidia-smi not found';
  try {
    gpu = execFileSync('nvidia-smi', ['--query-gpu=name,driver_version,memory.total', '--format=csv,noheader'], { encoding: 'utf8', timeout: 15_000 }).trim();
  } catch {
    // no driver tools on this machine: a CPU rehearsal
  }
  return [
    `GPU: ${gpu}`,
    `node ${process.version}, onnxruntime-node ${ortVersion}, libonnxruntime_providers_cuda.so ${existsSync(path.join(ortBin, 'libonnxruntime_providers_cuda.so')) ? 'present' : 'absent'}`,
    `"cuda" side: GANTRY_DEVICE=${deviceUnderTest}${deviceUnderTest === 'cpu' ? ' (GANTRY_GPU_CHECK_DEVICE=cpu: a CPU rehearsal, not a GPU measurement)' : ''}`,
    `latency: ${settings.requests} sequential requests at batch 1; throughput: ${settings.clients} clients for ${settings.seconds} s at batch 1 and ${settings.batch}`,
  ];
}

async function main(): Promise<void> {
  const lines = environmentLines();
  log(`starting a cpu and a ${deviceUnderTest} gantry on ${redisUrl}`);
  const [cpu, cuda] = await Promise.all([startSide('cpu', 'cpu'), startSide('cuda', deviceUnderTest)]);
  lines.push(`cpu worker: ${await checkDevice(cpu, 'cpu', 'cpu')}`, `cuda worker: ${await checkDevice(cuda, 'cuda', deviceUnderTest)}`);
  const b = settings.batch;
  const header = ['model', 'elements', 'max abs diff', 'outputs', 'p50 cpu ms', 'p50 cuda ms', 'speed-up', 'cpu req/s b1', 'cuda req/s b1', 'cuda/cpu'];
  const rows = [[...header, `cpu req/s b${b}`, `cuda req/s b${b}`, 'cuda/cpu']];
  for (const model of checkModels(quick)) {
    try {
      rows.push(await checkModel(cpu, cuda, model));
    } catch (error) {
      failures.push(`${model.name}: ${(error as Error).message}`);
    }
  }
  const table = rows.map((cells, index) => `| ${cells.join(' | ')} |${index === 0 ? `\n|${' --- |'.repeat(cells.length)}` : ''}`);
  const floats = Object.entries(floatTolerances).map(([type, { abs, rel }]) => `${type} |cuda-cpu| <= ${abs} + ${rel}·|cpu|`);
  const tolerance = `outputs compared at batch 1 and ${b}: ${floats.join(', ')}; other datatypes exact`;
  process.stdout.write(
    [...lines.map((line) => `- ${line}`), `- ${tolerance}`, '', ...table, '', ...failures.map((f) => `FAIL: ${f}`), failures.length ? 'FAIL' : 'PASS', ''].join(
      '\n',
    ),
  );
}

const stopAll = () => Promise.allSettled(started.map((gantry) => gantry.cleanup()));
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void stopAll().then(() => process.exit(1)));
try {
  await main();
} catch (error) {
  failures.push((error as Error).message);
  process.stdout.write(`FAIL: ${(error as Error).message}\n`);
}
await stopAll();
process.exit(failures.length === 0 ? 0 : 1);
