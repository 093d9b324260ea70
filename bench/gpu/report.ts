/**
 * What one run has found so far. Every stage adds to it; render-report.ts turns it into Markdown at the end, also
 * when a check failed, the deadline passed or a signal came, so it always holds whatever is known.
 */
import type { Comparison } from './compare-outputs.js';
import type { LatencyResult } from './latency.js';
import type { ThroughputResult } from './throughput.js';
import type { WorkerCheck } from './worker-check.js';

/** One value per gantry: the device under test and the CPU reference. */
export interface PerGantry<T> {
  dut: T;
  ref: T;
}

export interface GpuCheckReport {
  /** The stage running now (or the last one), named in the verdict line and in deadline and signal failures. */
  stage: string;
  /** Every failed check; none means PASS. */
  failures: string[];
  /** Markdown bullet lines (environment.ts). */
  environmentLines: string[];
  workers: WorkerCheck[];
  /** Upload → READY, in seconds, by model name. */
  loadSeconds: Map<string, PerGantry<number>>;
  /** The first binary inference after the upload, in ms, by model name. */
  firstInferMs: Map<string, PerGantry<number>>;
  comparisons: Comparison[];
  /** In the order measured (per model: reference, then device under test). */
  latencies: LatencyResult[];
  throughputs: ThroughputResult[];
  /** Markdown, one bullet each. */
  notes: string[];
}

export function emptyReport(): GpuCheckReport {
  return {
    stage: 'starting',
    failures: [],
    environmentLines: [],
    workers: [],
    loadSeconds: new Map(),
    firstInferMs: new Map(),
    comparisons: [],
    latencies: [],
    throughputs: [],
    notes: [],
  };
}
