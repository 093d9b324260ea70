/** The upload stage for one model: to both gantries at once, timed until READY (session and warm-up included). */
import { uploadModel, type GantryProcess } from '../../support/gantry-process.js';
import type { CheckRun } from './check-run.js';
import { formatFixed } from './format.js';
import type { GantryPair } from './gantries.js';
import type { CheckModel } from './model-catalogue.js';

/** Throws when either gantry does not answer 201 READY; a warm-up that did not pass is only noted. */
export async function uploadToBoth(run: CheckRun, gantries: GantryPair, model: CheckModel): Promise<void> {
  const { dutLabel, refLabel } = run.options;
  const timed = async (gantry: GantryProcess) => {
    const begun = performance.now();
    const upload = await uploadModel(gantry.baseUrl, model.name, model.file);
    return { upload, seconds: (performance.now() - begun) / 1000 };
  };
  const [onDut, onRef] = await Promise.all([timed(gantries.dut), timed(gantries.ref)]);
  run.report.loadSeconds.set(model.name, { dut: onDut.seconds, ref: onRef.seconds });
  for (const [label, result] of [
    [dutLabel, onDut],
    [refLabel, onRef],
  ] as const) {
    if (result.upload.status !== 201 || result.upload.body?.state !== 'READY') {
      throw new Error(`${label}: upload answered ${result.upload.status}: ${JSON.stringify(result.upload.body).slice(0, 800)}`);
    }
    if (result.upload.body.warmup !== undefined && result.upload.body.warmup !== 'ok')
      run.report.notes.push(`${label} ${model.name} warm-up: ${JSON.stringify(result.upload.body.warmup)}`);
  }
  run.log(`${model.name} READY on both (${formatFixed(onDut.seconds)} s / ${formatFixed(onRef.seconds)} s)`);
}
