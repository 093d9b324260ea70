/** The correctness stage for one model: the same seeded request to both gantries, in both encodings, compared. */
import { encodeInferRequest } from '../infer-encoding.js';
import type { CheckRun } from './check-run.js';
import { compareOutputs } from './compare-outputs.js';
import { formatScientific } from './format.js';
import type { GantryPair } from './gantries.js';
import { infer, type OutputTensor } from './inference.js';
import type { CheckModel } from './model-catalogue.js';

/** Throws when a gantry does not answer; answers outside the tolerance are failed checks, and the model goes on. */
export async function compareAnswers(run: CheckRun, gantries: GantryPair, model: CheckModel): Promise<void> {
  const { dutLabel, refLabel } = run.options;
  const answers: Record<string, OutputTensor[]> = {};
  for (const encoding of ['binary', 'json'] as const) {
    const request = encodeInferRequest(model.inputs, encoding);
    // The first inference after the upload's warm-up: on CUDA it includes cuDNN's algorithm search for
    // this input shape (onnxruntime's default is an exhaustive search per new shape).
    let begun = performance.now();
    answers[`dut-${encoding}`] = await infer(gantries.dut, model, request);
    const dutMs = performance.now() - begun;
    begun = performance.now();
    answers[`ref-${encoding}`] = await infer(gantries.ref, model, request);
    if (encoding === 'binary') run.report.firstInferMs.set(model.name, { dut: dutMs, ref: performance.now() - begun });
  }
  const checks = [
    compareOutputs(`${dutLabel} vs ${refLabel}, binary`, model, answers['dut-binary']!, answers['ref-binary']!),
    compareOutputs(`${dutLabel} vs ${refLabel}, json`, model, answers['dut-json']!, answers['ref-json']!),
    compareOutputs(`${dutLabel}: json vs binary`, model, answers['dut-json']!, answers['dut-binary']!),
    compareOutputs(`${refLabel}: json vs binary`, model, answers['ref-json']!, answers['ref-binary']!),
  ];
  for (const check of checks) {
    run.report.comparisons.push(check);
    if (!check.pass)
      run.fail(
        `${model.name} ${check.what}: ${check.problem ?? `${check.outside} of ${check.elements} elements outside tolerance, max abs ${formatScientific(check.maxAbs)}`}`,
      );
  }
  run.log(`${model.name}: max abs diff ${formatScientific(checks[0]!.maxAbs)} (binary), ${formatScientific(checks[1]!.maxAbs)} (json)`);
}
