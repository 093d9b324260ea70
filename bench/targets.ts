/**
 * What bench/run.ts measured, as rows, and what they say about issue 18's targets: each PASS or MISS, then the
 * room the machine leaves for Gantry's API under each throughput target (info lines). Apart from run.ts so that the
 * verdicts can be recomputed from a results file: `node dist/bench/targets.js [bench/results/latest.json]`.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchModels, type BenchModel, type Encoding } from './models.js';

const [tinyModel, ocrModel] = benchModels as [BenchModel, BenchModel];

export type Target = 'raw loop' | 'plain server' | 'plain server, tuned' | 'gantry' | 'gantry, batching off';
export interface Measured {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  total: number;
  /** Gantry only: inference_count / execution_count over the measured window (average rows per execution). */
  averageBatch?: number;
  /** CPU µs per answered request over the window, per process kind (api, worker, redis, plain, load generator). */
  cpuMicroseconds?: Record<string, number>;
}

/** One target at one point: the medians of its rounds (sums for the error counts), and every round. */
export interface Row extends Measured {
  model: string;
  encoding: Encoding | '';
  connections: number;
  target: Target;
  runs: Measured[];
  gantryOverPlain?: number;
  gantryOverTuned?: number;
  gantryOverRaw?: number;
}

export function format(value: number | undefined, digits = 1): string {
  if (value === undefined || !Number.isFinite(value)) return '';
  return value.toFixed(digits);
}

/** The process kinds of the CPU columns, in table order. */
export const cpuKinds = ['api', 'worker', 'redis', 'plain', 'load generator'] as const;

export function find(rows: Row[], model: BenchModel, encoding: Encoding, connections: number, target: Target): Row | undefined {
  return rows.find(
    (r) => r.model === model.label && r.encoding === (target === 'raw loop' ? '' : encoding) && r.connections === connections && r.target === target,
  );
}

/** The Done-when targets, each PASS or MISS with the measured ratio or difference; `info` lines are not targets. */
export function targets(rows: Row[], cores = os.availableParallelism()): string[] {
  const lines: string[] = [];
  const check = (what: string, actual: number | undefined, goal: string, ok: (value: number) => boolean, info = false) => {
    const known = actual !== undefined && Number.isFinite(actual);
    const verdict = info ? 'info' : !known ? 'n/a ' : ok(actual) ? 'PASS' : 'MISS';
    lines.push(`${verdict}  ${what}: ${known ? actual.toFixed(2) : 'n/a'} (${info ? 'for reference' : 'target'} ${goal})`);
  };
  const rate = (model: BenchModel, encoding: Encoding, connections: number, target: Target) =>
    find(rows, model, encoding, connections, target)?.requestsPerSecond;
  const ratio = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? undefined : a / b);
  const tinyGantry = rate(tinyModel, 'json', 64, 'gantry');
  check('tiny MLP, json, 64 conns: gantry / plain server req/s', ratio(tinyGantry, rate(tinyModel, 'json', 64, 'plain server')), '>= 1.30', (v) => v >= 1.3);
  check(
    'tiny MLP, json, 64 conns: gantry / plain server, tuned req/s',
    ratio(tinyGantry, rate(tinyModel, 'json', 64, 'plain server, tuned')),
    '>= 1.00',
    (v) => v >= 1,
  );
  const ocrGantry = rate(ocrModel, 'binary', 16, 'gantry');
  check(
    'PP-OCRv4 rec, binary, 16 conns: gantry / plain server req/s',
    ratio(ocrGantry, rate(ocrModel, 'binary', 16, 'plain server')),
    '>= 1.00',
    (v) => v >= 1,
  );
  check(
    'PP-OCRv4 rec, binary, 16 conns: gantry / plain server, tuned req/s',
    ratio(ocrGantry, rate(ocrModel, 'binary', 16, 'plain server, tuned')),
    '>= 1.00',
    (v) => v >= 1,
    true,
  );
  const p50 = (model: BenchModel, encoding: Encoding, target: Target) => find(rows, model, encoding, 1, target)?.p50Ms;
  const difference = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? undefined : a - b);
  check(
    'tiny MLP, json, 1 conn: gantry p50 - plain server p50 (ms)',
    difference(p50(tinyModel, 'json', 'gantry'), p50(tinyModel, 'json', 'plain server')),
    '<= 1.00',
    (v) => v <= 1,
  );
  check(
    'tiny MLP, json, 1 conn: gantry p50 - plain server, tuned p50 (ms)',
    difference(p50(tinyModel, 'json', 'gantry'), p50(tinyModel, 'json', 'plain server, tuned')),
    '<= 1.00',
    (v) => v <= 1,
    true,
  );
  check(
    'PP-OCRv4 rec, binary, 1 conn: gantry p50 - plain server p50 (ms)',
    difference(p50(ocrModel, 'binary', 'gantry'), p50(ocrModel, 'binary', 'plain server')),
    '<= 1.00',
    (v) => v <= 1,
    true,
  );
  const off = find(rows, tinyModel, 'json', 64, 'gantry, batching off');
  const on = find(rows, tinyModel, 'json', 64, 'gantry');
  check(
    `tiny MLP, json, 64 conns: batching on / off req/s (avg batch ${format(on?.averageBatch, 2)} vs ${format(off?.averageBatch, 2)})`,
    ratio(tinyGantry, off?.requestsPerSecond),
    '>= 2.00',
    (v) => v >= 2,
  );
  lines.push(...ceilings(rows, cores));
  return lines;
}

/** CPU µs per answered request of `kinds` summed (undefined when any is missing). */
function cpuSum(row: Row | undefined, kinds: ReadonlyArray<(typeof cpuKinds)[number]>): number | undefined {
  let sum = 0;
  for (const kind of kinds) {
    const value = row?.cpuMicroseconds?.[kind];
    if (value === undefined || !Number.isFinite(value)) return undefined;
    sum += value;
  }
  return sum;
}

/**
 * What the throughput targets leave for Gantry's API on this machine, from the CPU columns. Gantry's requests per
 * second are bounded twice: by the API's one JavaScript thread (1 s / its CPU per request) and by the cores that
 * every process shares, the load generator included (cores / the CPU per request of all of them). With the
 * worker's, Redis's and the load generator's CPU per request as measured, a target of `factor` times a measured
 * rate leaves the API at most min(1 s / goal, cores x 1 s / goal - the rest) per request. Where that is below what
 * a Gantry route costs that only answers HTTP (74–116 µs here: bench/route-floor.ts), no API can reach the
 * target with this queue on this machine. Batching on / off is bounded the same way with a free API:
 * the ratio of the two rows' worker + Redis + load generator CPU.
 */
function ceilings(rows: Row[], cores: number): string[] {
  const lines: string[] = [];
  const rest = (row: Row | undefined) => cpuSum(row, ['worker', 'redis', 'load generator']);
  const apiBudget = (what: string, gantry: Row | undefined, reference: Row | undefined, factor: number, unit: 'µs' | 'ms') => {
    const others = rest(gantry);
    const used = gantry?.cpuMicroseconds?.api;
    if (others === undefined || used === undefined || reference === undefined) return lines.push(`info  ${what}: n/a`);
    const goal = factor * reference.requestsPerSecond;
    const budget = Math.min(1e6 / goal, (cores * 1e6) / goal - others);
    const scale = unit === 'ms' ? 1000 : 1;
    const shown = (microseconds: number) => (microseconds / scale).toFixed(unit === 'ms' ? 1 : 0);
    lines.push(
      `info  ${what} (${factor.toFixed(2)} x ${reference.requestsPerSecond.toFixed(1)} req/s on ${cores} cores, worker + Redis + load generator ${shown(others)} ${unit} per request): ` +
        (budget <= 0 ? 'out of reach even with a free API' : `the API may use at most ${shown(budget)} ${unit} per request; it used ${shown(used)}`),
    );
  };
  const tinyGantry = find(rows, tinyModel, 'json', 64, 'gantry');
  apiBudget('room for tiny MLP, json, 64 conns, gantry >= 1.30 x plain server', tinyGantry, find(rows, tinyModel, 'json', 64, 'plain server'), 1.3, 'µs');
  apiBudget(
    'room for tiny MLP, json, 64 conns, gantry >= 1.00 x plain server, tuned',
    tinyGantry,
    find(rows, tinyModel, 'json', 64, 'plain server, tuned'),
    1,
    'µs',
  );
  apiBudget(
    'room for PP-OCRv4 rec, binary, 16 conns, gantry >= 1.00 x plain server',
    find(rows, ocrModel, 'binary', 16, 'gantry'),
    find(rows, ocrModel, 'binary', 16, 'plain server'),
    1,
    'ms',
  );
  const on = rest(tinyGantry);
  const off = rest(find(rows, tinyModel, 'json', 64, 'gantry, batching off'));
  lines.push(
    `info  ceiling of tiny MLP, json, 64 conns, batching on / off, with a free API: ${on === undefined || off === undefined || on === 0 ? 'n/a' : (off / on).toFixed(2)} (target >= 2.00)`,
  );
  return lines;
}

// Run directly: the verdicts of a results file written by run.ts.
if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const file = process.argv[2] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '../../bench/results/latest.json');
  const results = JSON.parse(readFileSync(file, 'utf8')) as { rows: Row[]; machine?: { cpus?: number } };
  // The cores of the machine that measured, not of this one.
  process.stdout.write(`${targets(results.rows, results.machine?.cpus).join('\n')}\n`);
}
