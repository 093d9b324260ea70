/**
 * `node dist/bench/compare-builds.js <baseline-cli.js> [candidate-cli.js] [rounds=3] [seconds=10] [connections=64]`
 *
 * Compares two builds of Gantry (two checkouts' `dist/src/cli.js`, e.g. main before and after a change) on the tiny
 * MLP in JSON (or, with BENCH_COMPARE_MODEL=ocr-rec, the PP-OCRv4 recognizer with binary tensors) through `gantry
 * start`, alternating baseline and candidate rounds so that both see the same machine (a 2-core VM's speed drifts
 * by more than the differences worth finding). The candidate defaults to this checkout.
 * Each round starts a fresh gantry on the shared Redis (its own prefix and data dir), uploads the model, warms up
 * for 2 s and drives it with autocannon. Prints every round and the ratio of the median req/s (candidate/baseline).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { deleteKeys, freePort, testAdminKey, withAdminKey } from '../support/gantry-process.js';
import { benchInput, benchModels, benchRequest, repositoryRoot, type BenchModel } from './models.js';
import { commandLine, cpuMicroseconds, descendants } from './process-cpu.js';

const [baselineCli, candidateCli = path.join(repositoryRoot, 'dist/src/cli.js'), roundsText = '3', secondsText = '10', connectionsText = '64'] =
  process.argv.slice(2);
if (baselineCli === undefined) {
  process.stderr.write('usage: node dist/bench/compare-builds.js <baseline-cli.js> [candidate-cli.js] [rounds] [seconds] [connections]\n');
  process.exit(2);
}
const rounds = Number(roundsText);
const seconds = Number(secondsText);
const connections = Number(connectionsText);
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const comparedModelName = process.env.BENCH_COMPARE_MODEL ?? 'tiny-mlp';
const foundModel = benchModels.find((model) => model.name === comparedModelName);
if (foundModel === undefined) {
  process.stderr.write(`BENCH_COMPARE_MODEL must be one of: ${benchModels.map((model) => model.name).join(', ')}\n`);
  process.exit(2);
}
const comparedModel: BenchModel = foundModel;
// The tiny MLP is where the JSON path's cost shows; the recognizer's inputs are large, so it goes binary as bench/run.ts sends it.
const encoding = comparedModel.name === 'tiny-mlp' ? 'json' : 'binary';

async function waitForReady(url: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`gantry exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${url}/v2/health/ready`)).status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('gantry did not become ready within 30 s');
}

/** CPU time (user + system) of a process in µs, from /proc (NaN when unreadable, so the column shows it). */
function cpuUs(pid: number): number {
  return cpuMicroseconds(pid) ?? Number.NaN;
}

interface Round {
  requestsPerSecond: number;
  /** CPU per answered request over the window, in µs, of the API process and of its worker child. */
  apiMicroseconds: number;
  workerMicroseconds: number;
}

/** One round: a fresh `gantry start` from `cli`, the model uploaded, 2 s of warm-up, then the measured window. */
async function measure(cli: string): Promise<Round> {
  const prefix = `bench-compare-${randomBytes(4).toString('hex')}`;
  const dataDirectory = await mkdtemp(path.join(os.tmpdir(), 'gantry-bench-compare-'));
  const port = await freePort();
  const child = spawn(process.execPath, [cli, 'start'], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      HOST: '127.0.0.1',
      PORT: String(port),
      REDIS_URL: redisUrl,
      GANTRY_QUEUE_PREFIX: prefix,
      GANTRY_DATA_DIR: dataDirectory,
      GANTRY_WORKER_METRICS_PORT: String(await freePort()),
      // The JSON path is what is compared: no gRPC endpoint (a build without one ignores the variable).
      GANTRY_GRPC_PORT: '0',
      // A build with authentication needs the key that every request below sends; one without ignores both.
      GANTRY_ADMIN_KEY: testAdminKey,
      LOG_LEVEL: 'warn',
    },
    stdio: 'ignore',
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForReady(url, child);
    const upload = await fetch(`${url}/v1/models/${comparedModel.name}/versions`, {
      method: 'POST',
      headers: withAdminKey({ 'content-type': 'application/octet-stream' }),
      body: await readFile(comparedModel.path),
    });
    if (upload.status !== 201) throw new Error(`upload answered ${upload.status}: ${await upload.text()}`);
    const request = benchRequest(comparedModel, benchInput(comparedModel.shape), encoding);
    const options = { url: `${url}/v2/models/${comparedModel.name}/infer`, method: 'POST' as const, headers: request.headers, body: request.body, connections };
    await autocannon({ ...options, duration: 2 });
    const workerPid = descendants(child.pid!).find((pid) => commandLine(pid).includes('worker')) ?? Number.NaN;
    const before = [cpuUs(child.pid!), cpuUs(workerPid)];
    const result = await autocannon({ ...options, duration: seconds });
    const after = [cpuUs(child.pid!), cpuUs(workerPid)];
    if (result.non2xx > 0 || result.errors > 0) process.stderr.write(`[compare] ${cli}: ${result.non2xx} non-2xx, ${result.errors} errors\n`);
    const answered = Math.max(1, result['2xx']);
    return {
      requestsPerSecond: result['2xx'] / result.duration,
      apiMicroseconds: (after[0]! - before[0]!) / answered,
      workerMicroseconds: (after[1]! - before[1]!) / answered,
    };
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => (child.exitCode !== null ? resolve(undefined) : child.once('exit', resolve)));
    await deleteKeys(redisUrl, prefix);
    await rm(dataDirectory, { recursive: true, force: true });
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

const baseline: Round[] = [];
const candidate: Round[] = [];
for (let round = 1; round <= rounds; round++) {
  // Alternate which build goes first, so a drift within a round does not favour one of them.
  const order = round % 2 === 1 ? (['baseline', 'candidate'] as const) : (['candidate', 'baseline'] as const);
  for (const which of order) {
    const result = await measure(which === 'baseline' ? baselineCli : candidateCli);
    (which === 'baseline' ? baseline : candidate).push(result);
    console.log(
      `round ${round} ${which}: ${result.requestsPerSecond.toFixed(0)} req/s, CPU per request: API ${result.apiMicroseconds.toFixed(0)} µs, worker ${result.workerMicroseconds.toFixed(0)} µs`,
    );
  }
}
const summary = (rows: Round[], name: string) =>
  `${name} median ${median(rows.map((row) => row.requestsPerSecond)).toFixed(0)} req/s [${rows.map((row) => row.requestsPerSecond.toFixed(0)).join(', ')}]; ` +
  `CPU per request API ${median(rows.map((row) => row.apiMicroseconds)).toFixed(0)} µs, worker ${median(rows.map((row) => row.workerMicroseconds)).toFixed(0)} µs`;
console.log(`${comparedModel.name} ${encoding}, ${connections} connections, ${seconds} s x ${rounds} rounds each`);
console.log(summary(baseline, 'baseline'));
console.log(summary(candidate, 'candidate'));
const ratio = median(candidate.map((row) => row.requestsPerSecond)) / median(baseline.map((row) => row.requestsPerSecond));
console.log(`candidate/baseline req/s: ${ratio.toFixed(3)}`);
