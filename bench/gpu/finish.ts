/** How a run ends, whichever way: the report out, the gantries' output saved, the gantries stopped, the exit code. */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { CheckRun } from './check-run.js';
import { onnxruntimeNote, outputTailNote } from './gantry-output.js';
import { renderReport } from './render-report.js';

/** Each gantry's output under --log-dir, named by its label. */
async function saveLogs(run: CheckRun): Promise<void> {
  const { logDirectory } = run.options;
  if (logDirectory === undefined) return;
  await mkdir(logDirectory, { recursive: true });
  await Promise.all(run.gantries.map(({ gantry, logFile }) => writeFile(path.join(logDirectory, logFile), gantry.output())));
}

/**
 * The function that ends the run: prints (and writes) the report, saves logs, stops the gantries and exits 0 when
 * every check passed and `code` is 0, else 1. The deadline, a signal and the normal end may all call it; only the
 * first call does anything, the others wait forever for the exit that call makes.
 */
export function createFinish(run: CheckRun): (code: number) => Promise<never> {
  let finished = false;
  return async (code) => {
    if (finished) return new Promise<never>(() => {});
    finished = true;
    const report = renderReport(run);
    process.stdout.write(report);
    const { outFile } = run.options;
    if (outFile !== undefined) {
      await mkdir(path.dirname(path.resolve(outFile)), { recursive: true });
      await writeFile(outFile, report);
      run.log(`report written to ${outFile}`);
    }
    await saveLogs(run).catch((error: unknown) => run.log(`could not save logs: ${String(error)}`));
    await Promise.allSettled(run.gantries.map(({ gantry }) => gantry.cleanup()));
    process.exit(run.report.failures.length === 0 && code === 0 ? 0 : 1);
  };
}

/** An error no stage caught fails the run; the gantries' own output goes into the notes to say why. */
export function recordCrash(run: CheckRun, error: Error): void {
  run.fail(`stage "${run.report.stage}": ${error.message}`);
  // onnxruntime's own messages carry the loader's reason (which library, which symbol) that the worker's
  // one-line error leaves out.
  run.gantries.forEach(({ gantry, label }) => {
    const note = onnxruntimeNote(gantry, label);
    if (note !== undefined) run.report.notes.push(note);
  });
  run.report.notes.push(...run.gantries.map(({ gantry, label }) => outputTailNote(gantry, label)));
}
