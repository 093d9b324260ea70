/** Starting the two gantries (device under test and CPU reference) and waiting until each can serve. */
import { startGantry, type GantryProcess } from '../../support/gantry-process.js';
import type { CheckRun } from './check-run.js';
import type { Device } from './options.js';
import type { PerGantry } from './report.js';

export type GantryPair = PerGantry<GantryProcess>;

/** A gantry with the label its report rows carry (options.dutLabel or options.refLabel). */
export interface LabelledGantry {
  gantry: GantryProcess;
  label: string;
}

/** The order in which the latency and throughput rows of a model appear: the reference first. */
export function referenceThenDeviceUnderTest(run: CheckRun, gantries: GantryPair): LabelledGantry[] {
  return [
    { gantry: gantries.ref, label: run.options.refLabel },
    { gantry: gantries.dut, label: run.options.dutLabel },
  ];
}

/** What the worker needs to find the CUDA libraries; startGantry passes only PATH and HOME otherwise. */
function forwardedEnvironment(): Record<string, string> {
  const forwarded: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined) continue;
    if (key === 'LD_LIBRARY_PATH' || key === 'TMPDIR' || key.startsWith('CUDA_') || key.startsWith('NVIDIA_') || key.startsWith('ORT_')) forwarded[key] = value;
  }
  return forwarded;
}

async function waitUntilReady(gantry: GantryProcess, label: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const ok = async (url: string) => {
    try {
      return (await fetch(url, { signal: AbortSignal.timeout(2_000) })).status === 200;
    } catch {
      return false;
    }
  };
  let apiReady = false;
  while (Date.now() < deadline) {
    if (gantry.child.exitCode !== null) throw new Error(`${label} gantry exited (${gantry.child.exitCode}) before it was ready`);
    // `gantry start` restarts a worker that exits, so a CUDA failure would otherwise only show as a timeout.
    const failed = gantry.output().match(/^.*(failed to start|cannot be used|CUDA not usable).*$/m);
    if (failed) throw new Error(`${label} worker failed: ${failed[0].slice(0, 1500)}`);
    apiReady ||= await ok(`${gantry.baseUrl}/v2/health/ready`);
    if (apiReady && (await ok(`${gantry.workerUrl}/ready`))) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${label} gantry not ready after ${timeoutMs / 1000} s`);
}

async function startOne(run: CheckRun, device: Device, label: string, logFile: string): Promise<GantryProcess> {
  const gantry = await startGantry({
    redisUrl: run.options.redisUrl,
    waitForReady: false,
    prefix: `gpucheck-${label}-${process.pid}`,
    // info: the worker's `worker started` line (with its device) is wanted; the API does not log each request.
    env: { ...forwardedEnvironment(), GANTRY_DEVICE: device, LOG_LEVEL: 'info' },
  });
  run.gantries.push({ gantry, label, logFile });
  const begun = performance.now();
  await waitUntilReady(gantry, label, 180_000);
  run.log(`${label} gantry (GANTRY_DEVICE=${device}) ready in ${((performance.now() - begun) / 1000).toFixed(1)} s`);
  return gantry;
}

export async function startGantries(run: CheckRun): Promise<GantryPair> {
  const { deviceUnderTest, dutLabel, refLabel, redisUrl } = run.options;
  run.log(`starting gantries (device under test: ${deviceUnderTest}, reference: cpu) on ${redisUrl}`);
  // Started together: the CUDA probe takes a while, the CPU one need not wait for it.
  // Each gantry keeps its own label and log file name, whichever of the two starts first.
  const [dut, ref] = await Promise.all([
    startOne(run, deviceUnderTest, dutLabel, `gantry-${dutLabel}.log`),
    startOne(run, 'cpu', refLabel, `gantry-${refLabel}-ref.log`),
  ]);
  return { dut, ref };
}
