/**
 * `node dist/bench/grpc-vs-rest.js [seconds=8] [warmup=2]`
 *
 * The Open Inference Protocol's two transports on one `gantry start` (API + one worker), the PP-OCRv4 recognizer
 * (input `[1,3,48,320]` FP32, output `[1,40,6625]`): REST with the binary tensor extension (JSON header + raw
 * float32 in and out) against gRPC ModelInfer with `raw_input_contents` / `raw_output_contents`, each at 1 and
 * 16 calls in flight for `seconds` after `warmup`. Both clients run in this process in closed loops (a new call
 * as soon as one answers): REST through fetch on keep-alive connections, gRPC through one @grpc/grpc-js channel
 * (HTTP/2 streams on one connection, as gRPC clients do). Before measuring, one answer from each transport is
 * checked to hold the same output bytes. Prints req/s, p50 and p99 per point and the gRPC/REST ratios.
 */
import { Metadata, credentials, loadPackageDefinition, type Client, type GrpcObject, type ServiceError } from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import path from 'node:path';
import { startGantry, testAdminKey, uploadModel, withAdminKey, type GantryProcess } from '../support/gantry-process.js';
import { benchInput, benchModels, benchRequest, percentile, repositoryRoot, type BenchModel } from './models.js';
import { inferenceHeaderContentLength, splitInferResponse } from './infer-encoding.js';

const [secondsText = '8', warmupText = '2'] = process.argv.slice(2);
const seconds = Number(secondsText);
const warmupSeconds = Number(warmupText);
const concurrencies = [1, 16];
const ocr = benchModels.find((model) => model.name === 'ocr-rec') as BenchModel;

/** One call of a transport: resolves with the output's raw bytes. */
type Send = () => Promise<Buffer>;

interface Point {
  transport: 'REST binary' | 'gRPC raw';
  concurrency: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  failures: number;
}

function restSender(gantry: GantryProcess): Send {
  const request = benchRequest(ocr, benchInput(ocr.shape), 'binary');
  const requestBody = typeof request.body === 'string' ? request.body : new Uint8Array(request.body);
  // fetch asks for gzip by default; the answer is 1 MB of float32 that gzip barely shrinks, and gRPC's is sent
  // uncompressed, so REST is asked for it uncompressed too (as tritonclient.http does unless told otherwise).
  const headers = { ...request.headers, 'accept-encoding': 'identity' };
  const url = `${gantry.baseUrl}/v2/models/${ocr.name}/infer`;
  return async () => {
    const response = await fetch(url, { method: 'POST', headers, body: requestBody });
    const body = Buffer.from(await response.arrayBuffer());
    if (response.status !== 200) throw new Error(`REST answered ${response.status}: ${body.subarray(0, 300).toString()}`);
    const [output] = splitInferResponse(body, response.headers.get(inferenceHeaderContentLength));
    if (output?.binaryData === undefined) throw new Error('REST answered without a binary output');
    return output.binaryData;
  };
}

type InferenceClient = Client & {
  ModelInfer: (request: object, metadata: object, callback: (error: ServiceError | null, response: { raw_output_contents: Buffer[] }) => void) => void;
};

/** A gRPC client of the project's proto (a bench, not a conformance test: the contract test compares it with the protocol's). */
function grpcClient(address: string): InferenceClient {
  const definition = protoLoader.loadSync('grpc_service.proto', {
    keepCase: true,
    longs: String,
    enums: String,
    bytes: Buffer,
    includeDirs: [path.join(repositoryRoot, 'proto')],
  });
  const inference = loadPackageDefinition(definition).inference as GrpcObject;
  const Constructor = inference.GRPCInferenceService as unknown as new (
    address: string,
    channel: ReturnType<typeof credentials.createInsecure>,
    options: object,
  ) => InferenceClient;
  return new Constructor(address, credentials.createInsecure(), { 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
}

function grpcSender(client: InferenceClient): Send {
  const raw = Buffer.from(Float32Array.from(benchInput(ocr.shape)).buffer);
  const request = { model_name: ocr.name, inputs: [{ name: ocr.inputName, datatype: 'FP32', shape: ocr.shape }], raw_input_contents: [raw] };
  const metadata = new Metadata();
  metadata.set('authorization', `Bearer ${testAdminKey}`);
  return () =>
    new Promise((resolve, reject) =>
      client.ModelInfer(request, metadata, (error, response) => {
        if (error !== null) reject(new Error(`gRPC answered ${error.code}: ${error.details}`));
        else if (response.raw_output_contents[0] === undefined) reject(new Error('gRPC answered without raw_output_contents'));
        else resolve(response.raw_output_contents[0]);
      }),
    );
}

/** `concurrency` closed loops for `durationMs`; latencies of the successful calls that started within the window. */
async function drive(send: Send, concurrency: number, durationMs: number): Promise<{ latencies: number[]; failures: number; elapsedMs: number }> {
  const latencies: number[] = [];
  let failures = 0;
  const started = performance.now();
  const end = started + durationMs;
  const loop = async () => {
    while (performance.now() < end) {
      const callStarted = performance.now();
      try {
        await send();
        latencies.push(performance.now() - callStarted);
      } catch {
        failures++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return { latencies: latencies.sort((a, b) => a - b), failures, elapsedMs: performance.now() - started };
}

async function measure(transport: Point['transport'], send: Send, concurrency: number): Promise<Point> {
  await drive(send, concurrency, warmupSeconds * 1000);
  const { latencies, failures, elapsedMs } = await drive(send, concurrency, seconds * 1000);
  return {
    transport,
    concurrency,
    requestsPerSecond: (latencies.length * 1000) / elapsedMs,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    failures,
  };
}

async function main(): Promise<void> {
  const gantry = await startGantry({ command: 'start', env: { GANTRY_SHUTDOWN_TIMEOUT_MS: '3000' }, prefix: `bench-grpc-${process.pid}` });
  const client = grpcClient(gantry.grpcAddress);
  try {
    const upload = await uploadModel(gantry.baseUrl, ocr.name, ocr.path);
    if (upload.status !== 201) throw new Error(`upload answered ${upload.status}: ${JSON.stringify(upload.body)}`);
    const rest = restSender(gantry);
    const grpc = grpcSender(client);
    // Like for like: both transports must give the same bytes for the same input.
    const [restBytes, grpcBytes] = [await rest(), await grpc()];
    if (!restBytes.equals(grpcBytes)) throw new Error('REST and gRPC answers differ for the same input');
    process.stderr.write(`outputs equal (${restBytes.byteLength} bytes); measuring ${seconds} s per point after ${warmupSeconds} s warm-up\n`);

    const points: Point[] = [];
    for (const concurrency of concurrencies) {
      points.push(await measure('REST binary', rest, concurrency));
      points.push(await measure('gRPC raw', grpc, concurrency));
    }
    const statistics = await (await fetch(`${gantry.baseUrl}/v2/models/${ocr.name}/stats`, { headers: withAdminKey() })).json();
    process.stderr.write(
      `model statistics: ${JSON.stringify((statistics as { model_stats: Array<{ inference_count: number }> }).model_stats.map((entry) => entry.inference_count))} inferences\n`,
    );

    console.log(`| ${ocr.label} | in flight | req/s | p50 ms | p99 ms | failures |`);
    console.log('| --- | --- | --- | --- | --- | --- |');
    for (const point of points) {
      console.log(
        `| ${point.transport} | ${point.concurrency} | ${point.requestsPerSecond.toFixed(1)} | ${point.p50Ms.toFixed(2)} | ${point.p99Ms.toFixed(2)} | ${point.failures} |`,
      );
    }
    for (const concurrency of concurrencies) {
      const restPoint = points.find((point) => point.transport === 'REST binary' && point.concurrency === concurrency)!;
      const grpcPoint = points.find((point) => point.transport === 'gRPC raw' && point.concurrency === concurrency)!;
      console.log(
        `${concurrency} in flight: gRPC/REST req/s ${(grpcPoint.requestsPerSecond / restPoint.requestsPerSecond).toFixed(2)}, p50 ${(grpcPoint.p50Ms / restPoint.p50Ms).toFixed(2)}, p99 ${(grpcPoint.p99Ms / restPoint.p99Ms).toFixed(2)}`,
      );
    }
  } finally {
    client.close();
    await gantry.cleanup();
  }
}

await main();
