/**
 * Raw onnxruntime-node, in-process, no HTTP and no JSON: the ceiling for one process on this machine.
 * Keeps `concurrency` session.run calls in flight for `seconds` seconds and reports runs/s and per-run latency.
 *
 *   node dist/bench/raw-loop.js <modelName> [seconds=5] [concurrency=1] [warmupSeconds=1]
 *
 * With a model name from bench/models.ts it uses that model's bench input; prints one JSON line.
 */
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import { benchInput, benchModels, percentile, sessionOptions, type BenchModel } from './models.js';

export interface RawLoopResult {
  runs: number;
  seconds: number;
  runsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

async function loop(
  session: ort.InferenceSession,
  feeds: Record<string, ort.Tensor>,
  seconds: number,
  concurrency: number,
  latencies?: number[],
): Promise<number> {
  const end = performance.now() + seconds * 1000;
  let runs = 0;
  const lane = async () => {
    while (performance.now() < end) {
      const started = performance.now();
      await session.run(feeds);
      latencies?.push(performance.now() - started);
      runs++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return runs;
}

export async function rawLoop(model: BenchModel, seconds: number, concurrency = 1, warmupSeconds = 1): Promise<RawLoopResult> {
  const session = await ort.InferenceSession.create(model.path, sessionOptions);
  try {
    const data = Float32Array.from(benchInput(model.shape));
    const feeds = { [model.inputName]: new ort.Tensor('float32', data, model.shape) };
    if (warmupSeconds > 0) await loop(session, feeds, warmupSeconds, concurrency);
    const latencies: number[] = [];
    const started = performance.now();
    const runs = await loop(session, feeds, seconds, concurrency, latencies);
    const elapsed = (performance.now() - started) / 1000;
    latencies.sort((a, b) => a - b);
    return { runs, seconds: elapsed, runsPerSecond: runs / elapsed, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99) };
  } finally {
    await session.release();
  }
}

/** Reference output for correctness checks: one run on the bench input. */
export async function referenceOutput(model: BenchModel): Promise<{ shape: number[]; data: Float32Array }> {
  const session = await ort.InferenceSession.create(model.path, sessionOptions);
  try {
    const data = Float32Array.from(benchInput(model.shape));
    const results = await session.run({ [model.inputName]: new ort.Tensor('float32', data, model.shape) });
    const output = results[model.outputName];
    if (output === undefined) throw new Error(`${model.name}: no output '${model.outputName}'`);
    return { shape: [...output.dims], data: Float32Array.from(output.data as Float32Array) };
  } finally {
    await session.release();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [which, secondsText = '5', concurrencyText = '1', warmupText = '1'] = process.argv.slice(2);
  const model = benchModels.find((candidate) => candidate.name === which);
  if (model === undefined) {
    console.error(`usage: node dist/bench/raw-loop.js <${benchModels.map((m) => m.name).join('|')}> [seconds] [concurrency] [warmupSeconds]`);
    process.exit(2);
  }
  const result = await rawLoop(model, Number(secondsText), Number(concurrencyText), Number(warmupText));
  console.log(JSON.stringify(result));
}
