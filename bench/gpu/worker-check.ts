/** Whether a gantry's worker runs on the device it was started for, from its own /metrics and log. */
import type { GantryProcess } from '../../support/gantry-process.js';
import type { CheckRun } from './check-run.js';
import type { Device } from './options.js';

export interface WorkerCheck {
  label: string;
  expected: Device;
  /** The `gantry_worker_info` lines of the worker's /metrics. */
  infoLines: string[];
  /** The worker's `worker started` log line, which names its device. */
  startedLine: string | undefined;
  ok: boolean;
}

export async function checkWorker(run: CheckRun, gantry: GantryProcess, label: string, expected: Device): Promise<void> {
  const metrics = await (await fetch(`${gantry.workerUrl}/metrics`)).text();
  const infoLines = metrics.split('\n').filter((line) => line.startsWith('gantry_worker_info'));
  const wanted = `gantry_worker_info{device="${expected}"} 1`;
  const startedLine = gantry
    .output()
    .split('\n')
    .find((line) => line.includes('worker started'));
  const ok = infoLines.includes(wanted);
  run.report.workers.push({ label, expected, infoLines, startedLine, ok });
  if (!ok) run.fail(`${label} worker: expected \`${wanted}\`, got \`${infoLines.join(' ; ')}\``);
}
