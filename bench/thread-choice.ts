/**
 * The measurement behind the automatic intra-op thread count (src/worker/thread-choice.ts): in-process, spinning
 * off (as Gantry's sessions run), each model with 1 and with 2 intra-op threads, one run at a time. Reports runs/s,
 * the process's CPU time per run, and the median run time the warm-up's measurement would see (its first 1 + 5 runs).
 *
 *   node dist/bench/thread-choice.js [seconds=3]
 *
 * Models: the bench models (bench/models.ts: tiny MLP [1,256], PP-OCRv4 rec [1,3,48,320]) plus the heavy MLP
 * (support/heavy-mlp.ts) at batch 1 and 64. Prints one JSON line per model and thread count.
 */
import ort from 'onnxruntime-node';
import { heavyMlp } from '../support/heavy-mlp.js';
import { medianRunMs } from '../src/worker/thread-choice.js';
import { benchInput, benchModels } from './models.js';

interface Case {
  label: string;
  model: string | Uint8Array;
  inputName: string;
  shape: number[];
}

const cases: Case[] = [
  ...benchModels.map((model) => ({ label: model.label, model: model.path, inputName: model.inputName, shape: model.shape })),
  { label: 'heavy MLP [1,256]', model: heavyMlp(), inputName: 'input', shape: [1, 256] },
  { label: 'heavy MLP [64,256]', model: heavyMlp(), inputName: 'input', shape: [64, 256] },
];

async function measure(subject: Case, intraOpNumThreads: number, seconds: number): Promise<void> {
  const options: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: 'all',
    intraOpNumThreads,
    interOpNumThreads: 1,
    // The worker's defaults (instance-thread.ts): idle pool threads sleep instead of spinning.
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
  };
  const session =
    typeof subject.model === 'string' ? await ort.InferenceSession.create(subject.model, options) : await ort.InferenceSession.create(subject.model, options);
  const feeds = { [subject.inputName]: new ort.Tensor('float32', Float32Array.from(benchInput(subject.shape)), subject.shape) };
  const warmupMedianMs = await medianRunMs(session, feeds);
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const until = started + seconds * 1000;
  let runs = 0;
  while (performance.now() < until) {
    await session.run(feeds);
    runs++;
  }
  const elapsedMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  await session.release();
  console.log(
    JSON.stringify({
      model: subject.label,
      intraOpThreads: intraOpNumThreads,
      warmupMedianMs: Number(warmupMedianMs.toFixed(4)),
      runsPerSecond: Math.round(runs / (elapsedMs / 1000)),
      msPerRun: Number((elapsedMs / runs).toFixed(4)),
      cpuMsPerRun: Number(((cpu.user + cpu.system) / 1000 / runs).toFixed(4)),
    }),
  );
}

const seconds = Number(process.argv[2] ?? 3);
for (const subject of cases) for (const threads of [1, 2]) await measure(subject, threads, seconds);
