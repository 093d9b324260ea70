/**
 * `node dist/bench/binary-vs-json.js [runs] [warmup] [blocks]`: one 1M-element FP32 tensor ([1, 1048576]) through Gantry's
 * identity model, as JSON in/out and via the binary tensor extension in/out (extension_binary_data.md). Checks
 * that every answer equals the input bit for bit and prints the median end-to-end time of each and the ratio
 * JSON / binary (target ≥ 20×). Starts its own gantry (`cli.js start`, own queue prefix and data dir; needs Redis
 * at REDIS_URL or 127.0.0.1:6379) and stops it at the end.
 */
import { request } from 'undici';
import { fixturePath, startGantry, uploadModel, withAdminKey, type GantryProcess } from '../support/gantry-process.js';
import type { JsonBody } from '../support/json-body.js';
import { mulberry32 } from '../support/prng.js';

const runs = Number(process.argv[2] ?? 7);
const warmup = Number(process.argv[3] ?? 2);
const blocks = Number(process.argv[4] ?? 2);
const elements = 1_048_576;
const model = 'identity-float';

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Deterministic float32 values, not all representable in few decimal digits (so JSON pays full price). */
function makeInput(): Float32Array {
  const next = mulberry32(12345);
  return Float32Array.from({ length: elements }, () => next() - 0.5);
}

async function viaJson(baseUrl: string, input: Float32Array): Promise<{ ms: number; output: Float32Array }> {
  const started = performance.now();
  const body = JSON.stringify({ inputs: [{ name: 'input', shape: [1, elements], datatype: 'FP32', data: Array.from(input) }] });
  const response = await request(`${baseUrl}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: withAdminKey({ 'content-type': 'application/json' }),
    body,
  });
  const parsed = (await response.body.json()) as JsonBody;
  if (response.statusCode !== 200) throw new Error(`JSON request failed: ${response.statusCode} ${JSON.stringify(parsed).slice(0, 300)}`);
  const output = Float32Array.from(parsed.outputs[0].data as number[]);
  return { ms: performance.now() - started, output };
}

async function viaBinary(baseUrl: string, input: Float32Array): Promise<{ ms: number; output: Float32Array }> {
  const started = performance.now();
  const header = Buffer.from(
    JSON.stringify({
      inputs: [{ name: 'input', shape: [1, elements], datatype: 'FP32', parameters: { binary_data_size: input.byteLength } }],
      parameters: { binary_data_output: true },
    }),
  );
  const body = Buffer.concat([header, Buffer.from(input.buffer, input.byteOffset, input.byteLength)]);
  const response = await request(`${baseUrl}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: withAdminKey({ 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.byteLength) }),
    body,
  });
  const raw = Buffer.from(await response.body.arrayBuffer());
  if (response.statusCode !== 200) throw new Error(`binary request failed: ${response.statusCode} ${raw.toString('utf8', 0, 300)}`);
  const headerLength = Number(response.headers['inference-header-content-length']);
  const json = JSON.parse(raw.toString('utf8', 0, headerLength));
  const size = json.outputs[0].parameters.binary_data_size as number;
  const bytes = raw.subarray(headerLength, headerLength + size);
  const output = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  return { ms: performance.now() - started, output };
}

function assertEqual(input: Float32Array, output: Float32Array, how: string): void {
  if (output.length !== input.length) throw new Error(`${how}: ${output.length} elements back, ${input.length} sent`);
  const a = new Uint32Array(input.buffer, input.byteOffset, input.length);
  const b = new Uint32Array(output.buffer, output.byteOffset, output.length);
  for (let index = 0; index < a.length; index++) {
    if (a[index] !== b[index]) throw new Error(`${how}: element ${index} differs (${input[index]} sent, ${output[index]} back)`);
  }
}

async function main(): Promise<void> {
  let gantry: GantryProcess | undefined;
  try {
    gantry = await startGantry({ env: { LOG_LEVEL: 'warn' } });
    const upload = await uploadModel(gantry.baseUrl, model, fixturePath('identity-float.onnx'));
    if (upload.status !== 201) throw new Error(`upload failed: ${upload.status} ${JSON.stringify(upload.body)}`);
    const input = makeInput();
    const jsonBytes = JSON.stringify(Array.from(input)).length;
    console.log(
      `tensor: FP32 [1, ${elements}] = ${(input.byteLength / 1024 ** 2).toFixed(1)} MiB binary, ~${(jsonBytes / 1024 ** 2).toFixed(1)} MiB as JSON data`,
    );
    console.log(`runs: ${blocks} blocks per mode, each ${warmup} warm-up + ${runs} measured requests, sequential, one connection`);

    // Each mode runs in blocks of its own, alternating JSON and binary blocks so that drift (CPU frequency,
    // neighbours on the host) hits both alike. Requests of one mode are not interleaved with the other's: a JSON
    // round leaves ~100 MB of garbage in the client, API and worker heaps, and the garbage collection it triggers
    // would otherwise land on the next binary request. The warm-up requests of each block absorb the switch.
    const times: Record<'json' | 'binary', number[]> = { json: [], binary: [] };
    for (let block = 0; block < blocks; block++) {
      for (const mode of ['json', 'binary'] as const) {
        for (let round = 0; round < warmup + runs; round++) {
          const result = mode === 'json' ? await viaJson(gantry.baseUrl, input) : await viaBinary(gantry.baseUrl, input);
          assertEqual(input, result.output, mode);
          if (round >= warmup) times[mode].push(result.ms);
        }
      }
    }
    const jsonMedian = median(times.json);
    const binaryMedian = median(times.binary);
    const ratio = jsonMedian / binaryMedian;
    console.log(`| mode | median ms | min ms | max ms |`);
    console.log(`| --- | ---: | ---: | ---: |`);
    for (const mode of ['json', 'binary'] as const) {
      console.log(`| ${mode} | ${median(times[mode]).toFixed(1)} | ${Math.min(...times[mode]).toFixed(1)} | ${Math.max(...times[mode]).toFixed(1)} |`);
    }
    console.log(`binary times, ms, in order: ${times.binary.map((ms) => ms.toFixed(0)).join(' ')}`);
    console.log(`outputs equal inputs bit for bit: yes (all ${blocks * (warmup + runs)} requests of each mode)`);
    console.log(`JSON / binary = ${ratio.toFixed(1)}× (target ≥ 20×: ${ratio >= 20 ? 'met' : 'NOT met'})`);
    // Where the time goes on the worker side (both modes together; the worker sees identical raw bytes).
    const stats = (await (await fetch(`${gantry.baseUrl}/v2/models/${model}/stats`, { headers: withAdminKey() })).json()) as JsonBody;
    const entry = stats.model_stats?.[0];
    if (entry !== undefined) {
      const perRequest = (name: string) => {
        const stat = entry.inference_stats[name];
        return stat.count > 0 ? `${(stat.ns / stat.count / 1e6).toFixed(1)} ms` : 'n/a';
      };
      console.log(
        `worker-side averages over ${entry.inference_stats.success.count} requests: success ${perRequest('success')}, queue ${perRequest('queue')}, ` +
          `compute_input ${perRequest('compute_input')}, compute_infer ${perRequest('compute_infer')}, compute_output ${perRequest('compute_output')}`,
      );
    }
  } finally {
    await gantry?.cleanup();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
