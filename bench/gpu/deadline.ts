/** Ends the run with a report when its own deadline passes or a signal comes. */
import type { CheckRun } from './check-run.js';

/**
 * A deadline of our own, so a hang (a stuck CUDA call, a lost worker) still produces a report in time; it is
 * shorter than the device script's `timeout`, which would kill the process without one.
 */
export function finishOnDeadlineOrSignal(run: CheckRun, finish: (code: number) => Promise<never>): void {
  const { deadlineSeconds } = run.options;
  const watchdog = setTimeout(() => {
    run.fail(`deadline of ${deadlineSeconds} s passed during stage "${run.report.stage}"`);
    void finish(1);
  }, deadlineSeconds * 1000);
  // Not what keeps the process alive: a run that ends first exits without waiting for it.
  watchdog.unref();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      run.fail(`${signal} during stage "${run.report.stage}"`);
      void finish(1);
    });
  }
}
