/**
 * `npm run bench -- --trace` or `node dist/bench/trace.js [requests=300] [warmup=50]`: the single-request path of the
 * tiny MLP (JSON), one connection, sequential requests, taken apart stage by stage. Rounds alternate the plain server
 * (onnxruntime defaults), the plain server, tuned, and Gantry (`gantry start`); then the floors are measured on the
 * same Redis: in-process session.run, a raw BullMQ round trip (Queue.add → a Worker in another process → a reply
 * over pub/sub) and a pub/sub ping-pong between two processes. Gantry's own per-request stages come from its Triton
 * statistics (GET /v2/models/tiny-mlp/stats, deltas over its windows). Prints a table and writes
 * bench/results/trace.json. Reported, not asserted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import ort from 'onnxruntime-node';
import { deleteKeys, freePort, startGantry, uploadModel, withAdminKey, type GantryProcess } from '../support/gantry-process.js';
import { benchInput, benchModels, benchRequest, percentile, tunedSessionOptions, type BenchModel, type BenchRequest } from './models.js';
import { loadAverageText, writeBenchResults } from './results-file.js';

const benchDirectory = path.dirname(fileURLToPath(import.meta.url));
const tinyModel = benchModels[0] as BenchModel;
const rounds = 3;

const stageNames = ['success', 'queue', 'compute_input', 'compute_infer', 'compute_output'] as const;
type StageName = (typeof stageNames)[number];
type StageTotals = Record<StageName, { count: number; ns: number }>;

function log(message: string): void {
  process.stderr.write(`[trace] ${message}\n`);
}

/** Spawns a node script from dist/bench and resolves once it prints `readyText`. */
function spawnReady(script: string, args: string[], readyText: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [path.join(benchDirectory, script), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let printed = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} not ready after 60 s:\n${printed}`)), 60_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      printed += chunk.toString();
      if (printed.includes(readyText)) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => (printed += chunk.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with ${code}:\n${printed}`));
    });
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/** `count` sequential HTTP requests (one keep-alive connection through fetch), each timed from send to last byte, in ms. */
async function sequential(url: string, request: BenchRequest, count: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    const response = await fetch(url, { method: 'POST', headers: request.headers, body: request.body as unknown as BodyInit });
    await response.arrayBuffer();
    if (response.status !== 200) throw new Error(`${url} answered ${response.status}`);
    times.push(performance.now() - start);
  }
  return times;
}

/** Gantry's per-request stage totals for the model (all versions), from the Triton statistics. */
async function stageTotals(gantry: GantryProcess, model: string): Promise<StageTotals> {
  const response = await fetch(`${gantry.baseUrl}/v2/models/${model}/stats`, { headers: withAdminKey() });
  const body = (await response.json()) as { model_stats?: Array<{ inference_stats: StageTotals }> };
  const totals = Object.fromEntries(stageNames.map((name) => [name, { count: 0, ns: 0 }])) as StageTotals;
  for (const stats of body.model_stats ?? []) {
    for (const name of stageNames) {
      totals[name].count += stats.inference_stats[name].count;
      totals[name].ns += stats.inference_stats[name].ns;
    }
  }
  return totals;
}

/** Times `count` round trips of `once` (after `warmup` untimed ones), in ms. */
async function timed(count: number, warmup: number, once: () => Promise<void>): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await once();
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    await once();
    times.push(performance.now() - start);
  }
  return times;
}

/** Resolves each awaited id when `channel` carries it: the reply side of both floors. */
function replies(subscriber: Redis): (id: string) => Promise<void> {
  const waiting = new Map<string, () => void>();
  subscriber.on('message', (_channel: string, id: string) => {
    waiting.get(id)?.();
    waiting.delete(id);
  });
  return (id) => new Promise<void>((resolve) => waiting.set(id, resolve));
}

function p50(values: number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

interface Stage {
  stage: string;
  ms: number;
  statistic: 'p50' | 'mean' | 'derived';
  explanation: string;
}

export async function runTrace(): Promise<void> {
  const numbers = process.argv.slice(2).filter((argument) => /^\d+$/.test(argument));
  const requests = Number(numbers[0] ?? '300');
  const warmup = Number(numbers[1] ?? '50');
  const perRound = Math.ceil(requests / rounds);
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const prefix = `bench-trace-${randomBytes(4).toString('hex')}`;
  const children: ChildProcess[] = [];
  const closers: Array<() => Promise<unknown>> = [];
  let gantry: GantryProcess | undefined;
  try {
    log(`${requests} requests per target after ${warmup} warm-up, ${rounds} alternating rounds; load average ${loadAverageText()}`);
    const request = benchRequest(tinyModel, benchInput(tinyModel.shape), 'json');
    const urls = new Map<string, string>();
    for (const [label, extra] of [
      ['plain server', []],
      ['plain server, tuned', ['--tuned']],
    ] as const) {
      const port = await freePort();
      children.push(await spawnReady('plain-server.js', [tinyModel.path, String(port), tinyModel.name, ...extra], 'listening'));
      urls.set(label, `http://127.0.0.1:${port}/v2/models/${tinyModel.name}/infer`);
    }
    gantry = await startGantry({ command: 'start', redisUrl, env: { GANTRY_SHUTDOWN_TIMEOUT_MS: '3000' }, prefix: `${prefix}-gantry` });
    const upload = await uploadModel(gantry.baseUrl, tinyModel.name, tinyModel.path);
    if (upload.status !== 201) throw new Error(`upload answered ${upload.status}`);
    urls.set('gantry', `${gantry.baseUrl}/v2/models/${tinyModel.name}/infer`);

    const latencies = new Map<string, number[]>([...urls.keys()].map((label) => [label, []]));
    for (const url of urls.values()) await sequential(url, request, warmup);
    const stageSums = Object.fromEntries(stageNames.map((name) => [name, { count: 0, ns: 0 }])) as StageTotals;
    const settle = () => new Promise((resolve) => setTimeout(resolve, 150));
    for (let round = 0; round < rounds; round++) {
      for (const [label, url] of urls) {
        if (label !== 'gantry') {
          latencies.get(label)!.push(...(await sequential(url, request, perRound)));
          continue;
        }
        // Statistics reach Redis ~20 ms after the answers; settle before each read so the window's counts are whole.
        await settle();
        const before = await stageTotals(gantry, tinyModel.name);
        latencies.get(label)!.push(...(await sequential(url, request, perRound)));
        await settle();
        const after = await stageTotals(gantry, tinyModel.name);
        for (const name of stageNames) {
          stageSums[name].count += after[name].count - before[name].count;
          stageSums[name].ns += after[name].ns - before[name].ns;
        }
      }
    }
    const meanMs = (name: StageName) => (stageSums[name].count > 0 ? stageSums[name].ns / stageSums[name].count / 1e6 : Number.NaN);

    log('in-process session.run (tuned options)');
    const session = await ort.InferenceSession.create(tinyModel.path, tunedSessionOptions);
    const input = new ort.Tensor('float32', Float32Array.from(benchInput(tinyModel.shape)), tinyModel.shape);
    const runTimes = await timed(requests, warmup, async () => void (await session.run({ [tinyModel.inputName]: input })));
    await session.release();

    log('raw BullMQ round trip');
    const subscriber = new Redis(redisUrl);
    closers.push(() => subscriber.quit());
    const awaitReply = replies(subscriber);
    await subscriber.subscribe(`${prefix}:reply`, `${prefix}:pong`);
    children.push(await spawnReady('trace-peer.js', [redisUrl, prefix, 'bullmq'], 'ready'));
    const queue = new Queue('trace', { connection: new Redis(redisUrl, { maxRetriesPerRequest: null }), prefix });
    closers.push(() => queue.close());
    let sequence = 0;
    const bullmqTimes = await timed(requests, warmup, async () => {
      const id = `job-${sequence++}`;
      const answered = awaitReply(id);
      await queue.add('trace', { id }, { removeOnComplete: true, removeOnFail: true });
      await answered;
    });

    log('Redis pub/sub ping-pong');
    children.push(await spawnReady('trace-peer.js', [redisUrl, prefix, 'pubsub'], 'ready'));
    const publisher = new Redis(redisUrl);
    closers.push(() => publisher.quit());
    const pubsubTimes = await timed(requests, warmup, async () => {
      const id = `ping-${sequence++}`;
      const answered = awaitReply(id);
      await publisher.publish(`${prefix}:ping`, id);
      await answered;
    });

    const plain = p50(latencies.get('plain server')!);
    const tuned = p50(latencies.get('plain server, tuned')!);
    const endToEnd = p50(latencies.get('gantry')!);
    const run = p50(runTimes);
    const httpFloor = tuned - run;
    const bullmq = p50(bullmqTimes);
    const compute = meanMs('compute_input') + meanMs('compute_infer') + meanMs('compute_output');
    const stages: Stage[] = [
      {
        stage: 'plain server HTTP round trip (onnxruntime defaults)',
        ms: plain,
        statistic: 'p50',
        explanation: 'fetch → Fastify → JSON → session.run → JSON, one process',
      },
      { stage: 'plain server HTTP round trip (tuned)', ms: tuned, statistic: 'p50', explanation: 'the same, 1 intra-op/inter-op thread, no spinning' },
      { stage: 'in-process session.run (tuned)', ms: run, statistic: 'p50', explanation: 'the model alone, no HTTP: the compute floor' },
      { stage: 'HTTP + JSON floor', ms: httpFloor, statistic: 'derived', explanation: 'plain tuned round trip − session.run: what any HTTP server pays' },
      { stage: 'gantry end to end', ms: endToEnd, statistic: 'p50', explanation: 'fetch → API → BullMQ → worker → instance thread → reply → API' },
      {
        stage: 'gantry in-server time (stats success)',
        ms: meanMs('success'),
        statistic: 'mean',
        explanation: "Triton 'success': the request's whole time in the server",
      },
      { stage: 'gantry queue (stats)', ms: meanMs('queue'), statistic: 'mean', explanation: 'waiting before its execution; overlaps the BullMQ floor below' },
      { stage: 'gantry compute_input (stats)', ms: meanMs('compute_input'), statistic: 'mean', explanation: 'inputs into tensors on the worker' },
      { stage: 'gantry compute_infer (stats)', ms: meanMs('compute_infer'), statistic: 'mean', explanation: 'onnxruntime run on the instance thread' },
      { stage: 'gantry compute_output (stats)', ms: meanMs('compute_output'), statistic: 'mean', explanation: 'outputs out of tensors on the worker' },
      {
        stage: 'raw BullMQ round trip',
        ms: bullmq,
        statistic: 'p50',
        explanation: 'Queue.add → Worker in another process → pub/sub reply: the floor of any queue',
      },
      {
        stage: 'Redis pub/sub ping-pong',
        ms: p50(pubsubTimes),
        statistic: 'p50',
        explanation: 'publish → other process → publish back: the floor of one cross-process hop pair',
      },
      {
        stage: 'the rest',
        ms: endToEnd - httpFloor - bullmq - compute,
        statistic: 'derived',
        explanation: 'gantry end to end − HTTP floor − BullMQ floor − compute stages: Gantry’s own code (job encoding, coalescing, threads, bookkeeping)',
      },
    ];
    console.log('');
    console.log(
      `Single-request path, tiny MLP, JSON, 1 connection, ${perRound * rounds} requests per target (${rounds} alternating rounds, after ${warmup} warm-up)`,
    );
    console.log('');
    console.log('| stage | ms | statistic | what it is |');
    console.log('| --- | ---: | --- | --- |');
    for (const stage of stages)
      console.log(`| ${stage.stage} | ${Number.isFinite(stage.ms) ? stage.ms.toFixed(3) : 'n/a'} | ${stage.statistic} | ${stage.explanation} |`);
    console.log('');
    console.log(
      `gantry − plain server p50: ${(endToEnd - plain).toFixed(3)} ms; gantry − plain server, tuned p50: ${(endToEnd - tuned).toFixed(3)} ms. ` +
        `Statistics are means over ${stageSums.success.count} requests; p50s are of sequential client-side timings. Load average ${loadAverageText()}.`,
    );
    const written = await writeBenchResults('trace.json', {
      date: new Date().toISOString(),
      requests: perRound * rounds,
      warmup,
      rounds,
      loadavg: os.loadavg(),
      stages,
      stageTotals: stageSums,
    });
    log(`wrote ${written}`);
  } finally {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    for (const child of children) await stop(child);
    await gantry?.cleanup();
    await deleteKeys(redisUrl, prefix);
  }
}

// Run directly (node dist/bench/trace.js) as well as through run.ts --trace.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    await runTrace();
    process.exit(0);
  } catch (error) {
    log(`FAILED: ${(error as Error).stack ?? String(error)}`);
    process.exit(1);
  }
}
