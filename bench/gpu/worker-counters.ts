/**
 * The worker-side counters read before and after a measured window: the model's statistics
 * (`GET /v2/models/{m}/stats`) and the compute histogram on the worker's /metrics.
 */
import { withAdminKey, type GantryProcess } from '../../support/gantry-process.js';

export interface WorkerCounters {
  inferenceCount: number;
  executionCount: number;
  computeInferNs: number;
  computeInferCount: number;
  /** gantry_inference_compute_duration_seconds (worker /metrics), summed over versions. */
  histogramSum: number;
  histogramCount: number;
}

export async function readWorkerCounters(gantry: GantryProcess, model: string): Promise<WorkerCounters> {
  const stats = (await (await fetch(`${gantry.baseUrl}/v2/models/${model}/stats`, { headers: withAdminKey() })).json()) as {
    model_stats?: Array<{ inference_count: number; execution_count: number; inference_stats: { compute_infer: { count: number; ns: number } } }>;
  };
  const list = stats.model_stats ?? [];
  const metrics = await (await fetch(`${gantry.workerUrl}/metrics`)).text();
  const histogram = (suffix: 'sum' | 'count') => {
    let total = 0;
    const pattern = new RegExp(`^gantry_inference_compute_duration_seconds_${suffix}\\{([^}]*)\\} (\\S+)$`, 'gm');
    for (const match of metrics.matchAll(pattern)) if (match[1]!.includes(`model="${model}"`)) total += Number(match[2]);
    return total;
  };
  return {
    inferenceCount: list.reduce((sum, s) => sum + s.inference_count, 0),
    executionCount: list.reduce((sum, s) => sum + s.execution_count, 0),
    computeInferNs: list.reduce((sum, s) => sum + s.inference_stats.compute_infer.ns, 0),
    computeInferCount: list.reduce((sum, s) => sum + s.inference_stats.compute_infer.count, 0),
    histogramSum: histogram('sum'),
    histogramCount: histogram('count'),
  };
}

/** Statistics reach Redis ~20 ms after the answers; wait a little so a window's counts are complete. */
export const settle = () => new Promise((resolve) => setTimeout(resolve, 200));

/** The statistics' compute_infer per request over the window, in ms (undefined when nothing was counted). */
export function computeInferMsBetween(before: WorkerCounters, after: WorkerCounters): number | undefined {
  const count = after.computeInferCount - before.computeInferCount;
  return count > 0 ? (after.computeInferNs - before.computeInferNs) / count / 1e6 : undefined;
}

/** The compute histogram's mean per execution over the window, in ms (undefined when nothing was observed). */
export function histogramMsBetween(before: WorkerCounters, after: WorkerCounters): number | undefined {
  const count = after.histogramCount - before.histogramCount;
  return count > 0 ? ((after.histogramSum - before.histogramSum) / count) * 1000 : undefined;
}
