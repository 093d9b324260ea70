/**
 * One run of the check: its options, the report being filled, the gantries it started and its progress log. It is
 * handed to each stage, and to the deadline and the ending, instead of state kept in modules.
 */
import type { GantryProcess } from '../../support/gantry-process.js';
import type { GpuCheckOptions } from './options.js';
import { emptyReport, type GpuCheckReport } from './report.js';

export interface StartedGantry {
  gantry: GantryProcess;
  label: string;
  logFile: string;
}

export interface CheckRun {
  options: GpuCheckOptions;
  report: GpuCheckReport;
  /** Every gantry started, with its report label and log file name, so the ending can save and stop them. */
  gantries: StartedGantry[];
  /** Seconds since the run started, one decimal. */
  elapsedSeconds(): string;
  /** A progress line on stderr (stdout carries the report). */
  log(message: string): void;
  /** Records a failed check (the verdict becomes FAIL) and logs it. */
  fail(message: string): void;
}

export function startCheckRun(options: GpuCheckOptions): CheckRun {
  const startedAt = performance.now();
  const report = emptyReport();
  const elapsedSeconds = () => ((performance.now() - startedAt) / 1000).toFixed(1);
  const log = (message: string) => {
    process.stderr.write(`[gpu-check +${elapsedSeconds()}s] ${message}\n`);
  };
  return {
    options,
    report,
    gantries: [],
    elapsedSeconds,
    log,
    fail(message) {
      report.failures.push(message);
      log(`FAIL: ${message}`);
    },
  };
}
