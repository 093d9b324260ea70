/** Sequential latency on one gantry: one connection, binary encoding, with the worker's compute time alongside. */
import { encodeInferRequest } from '../infer-encoding.js';
import { percentile } from '../models.js';
import type { LabelledGantry } from './gantries.js';
import { sendInferRequest } from './inference.js';
import type { CheckModel } from './model-catalogue.js';
import type { GpuCheckOptions } from './options.js';
import { computeInferMsBetween, histogramMsBetween, readWorkerCounters, settle } from './worker-counters.js';

export interface LatencyResult {
  model: CheckModel;
  /** The gantry's row label (options.dutLabel or options.refLabel). */
  device: string;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  /** compute_infer per request from the model's statistics over the measured requests. */
  computeMs: number | undefined;
  /** The worker's compute histogram per execution over the same window. */
  histogramMs: number | undefined;
  executions: number;
}

export async function measureLatency(
  target: LabelledGantry,
  model: CheckModel,
  options: Pick<GpuCheckOptions, 'requestCount' | 'warmupRequests'>,
): Promise<LatencyResult> {
  const { gantry, label: device } = target;
  const request = encodeInferRequest(model.inputs, 'binary');
  const once = async () => {
    const response = await sendInferRequest(gantry, model, request);
    await response.arrayBuffer();
    if (response.status !== 200) throw new Error(`${device}/${model.name}: answered ${response.status}`);
  };
  for (let i = 0; i < options.warmupRequests; i++) await once();
  await settle();
  const before = await readWorkerCounters(gantry, model.name);
  const times: number[] = [];
  for (let i = 0; i < options.requestCount; i++) {
    const begun = performance.now();
    await once();
    times.push(performance.now() - begun);
  }
  await settle();
  const after = await readWorkerCounters(gantry, model.name);
  times.sort((a, b) => a - b);
  return {
    model,
    device,
    p50Ms: percentile(times, 50),
    p99Ms: percentile(times, 99),
    meanMs: times.reduce((a, b) => a + b, 0) / times.length,
    computeMs: computeInferMsBetween(before, after),
    histogramMs: histogramMsBetween(before, after),
    executions: after.executionCount - before.executionCount,
  };
}
