/** The check's stages in order, each recording what it finds in the run's report. */
import { existsSync } from 'node:fs';
import type { CheckRun } from './check-run.js';
import { compareAnswers } from './correctness.js';
import { environmentFacts, gpuUsageNote } from './environment.js';
import { formatFixed } from './format.js';
import { referenceThenDeviceUnderTest, startGantries, type GantryPair } from './gantries.js';
import { onnxruntimeNote } from './gantry-output.js';
import { measureLatency } from './latency.js';
import { checkModels, type CheckModel } from './model-catalogue.js';
import { measureThroughput } from './throughput.js';
import { uploadToBoth } from './uploads.js';
import { checkWorker } from './worker-check.js';

/**
 * Runs `step` for each model in turn and returns the models it did not throw for. A model that fails on one gantry
 * (upload, inference) is reported and left out of the later stages; the others go on, so one device run tells as
 * much as it can.
 */
async function keepModelsThatPass(run: CheckRun, models: CheckModel[], what: string, step: (model: CheckModel) => Promise<void>): Promise<CheckModel[]> {
  const passed: CheckModel[] = [];
  for (const model of models) {
    try {
      await step(model);
      passed.push(model);
    } catch (error) {
      run.fail(`${model.name} ${what}: ${(error as Error).message}`);
    }
  }
  return passed;
}

/** Sequential latency on the reference, then on the device under test. */
async function measureLatencies(run: CheckRun, gantries: GantryPair, model: CheckModel): Promise<void> {
  for (const target of referenceThenDeviceUnderTest(run, gantries)) {
    const result = await measureLatency(target, model, run.options);
    run.report.latencies.push(result);
    run.log(
      `${target.label}/${model.name}: p50 ${formatFixed(result.p50Ms)} ms, p99 ${formatFixed(result.p99Ms)} ms, compute_infer ${formatFixed(result.computeMs, 3)} ms`,
    );
  }
}

/** Throughput on the reference, then on the device under test; any non-2xx, error or timeout fails the check. */
async function measureThroughputs(run: CheckRun, gantries: GantryPair, model: CheckModel): Promise<void> {
  for (const target of referenceThenDeviceUnderTest(run, gantries)) {
    const result = await measureThroughput(target, model, run.options);
    run.report.throughputs.push(result);
    run.log(
      `${target.label}/${model.name} @${run.options.connections}: ${result.requestsPerSecond.toFixed(1)} req/s, avg batch ${formatFixed(result.averageBatch)}, non-2xx ${result.non2xx}, errors ${result.errors}`,
    );
    if (result.non2xx > 0 || result.errors + result.timeouts > 0) {
      run.fail(`${target.label}/${model.name} under load: ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts`);
    }
  }
}

/** Throws only where nothing further can be checked (no model file, a gantry that does not start). */
export async function runStages(run: CheckRun): Promise<void> {
  const { options, report } = run;
  report.stage = 'environment';
  report.environmentLines.push(...(await environmentFacts(options)));
  for (const model of checkModels) if (!existsSync(model.file)) throw new Error(`model file missing: ${model.file}`);

  report.stage = 'starting gantries';
  const gantries = await startGantries(run);
  await checkWorker(run, gantries.dut, options.dutLabel, options.deviceUnderTest);
  await checkWorker(run, gantries.ref, options.refLabel, 'cpu');

  report.stage = 'uploads';
  let active = await keepModelsThatPass(run, checkModels, 'upload', (model) => uploadToBoth(run, gantries, model));
  report.stage = 'correctness';
  active = await keepModelsThatPass(run, active, 'inference', (model) => compareAnswers(run, gantries, model));
  report.stage = 'latency';
  active = await keepModelsThatPass(run, active, 'latency run', (model) => measureLatencies(run, gantries, model));
  report.stage = 'throughput';
  const loaded = active.filter((model) => model.throughput);
  await keepModelsThatPass(run, loaded, 'throughput run', (model) => measureThroughputs(run, gantries, model));

  report.stage = 'done';
  if (options.deviceUnderTest === 'cuda') {
    const usage = await gpuUsageNote();
    if (usage !== undefined) report.notes.push(usage);
  }
  const onnxruntime = onnxruntimeNote(gantries.dut, options.dutLabel);
  if (onnxruntime !== undefined) report.notes.push(onnxruntime);
}
