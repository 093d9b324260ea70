/** Throughput on one gantry: autocannon at options.connections, binary encoding, after a 1 s warm-up. */
import autocannon from 'autocannon';
import { encodeInferRequest } from '../infer-encoding.js';
import { percentile } from '../models.js';
import type { LabelledGantry } from './gantries.js';
import { inferUrl, sendInferRequest } from './inference.js';
import type { CheckModel } from './model-catalogue.js';
import type { GpuCheckOptions } from './options.js';
import { computeInferMsBetween, histogramMsBetween, readWorkerCounters, settle } from './worker-counters.js';

export interface ThroughputResult {
  model: CheckModel;
  /** The gantry's row label (options.dutLabel or options.refLabel). */
  device: string;
  /** 2xx answers per second. */
  requestsPerSecond: number;
  /** Percentiles of the 2xx response times. */
  p50Ms: number;
  p99Ms: number;
  /** Rows per execution: how much dynamic batching merged. */
  averageBatch: number | undefined;
  perExecutionMs: number | undefined;
  non2xx: number;
  errors: number;
  timeouts: number;
}

export async function measureThroughput(
  target: LabelledGantry,
  model: CheckModel,
  options: Pick<GpuCheckOptions, 'connections' | 'throughputSeconds'>,
): Promise<ThroughputResult> {
  const { gantry, label: device } = target;
  const request = encodeInferRequest(model.inputs, 'binary');
  const settings = {
    url: inferUrl(gantry, model),
    method: 'POST',
    headers: request.headers,
    body: request.body,
    connections: options.connections,
    timeout: 60,
  };
  // One more request, answered, so work left in flight by an ended autocannon run does not count in the next window.
  const drain = () => sendInferRequest(gantry, model, request).then((response) => response.arrayBuffer());
  await autocannon({ ...settings, duration: 1 });
  await drain();
  await settle();
  const before = await readWorkerCounters(gantry, model.name);
  const latencies: number[] = [];
  const instance = autocannon({ ...settings, duration: options.throughputSeconds });
  instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
    if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime);
  });
  const result = await instance;
  await drain();
  await settle();
  const after = await readWorkerCounters(gantry, model.name);
  latencies.sort((a, b) => a - b);
  const executions = after.executionCount - before.executionCount;
  return {
    model,
    device,
    requestsPerSecond: result['2xx'] / result.duration,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    averageBatch: executions > 0 ? (after.inferenceCount - before.inferenceCount) / executions : undefined,
    // Statistics count compute_infer once per request (every request of a batch gets the batch's time), so under
    // load the histogram (one observation per execution) gives the per-execution time; the statistics are the fallback.
    perExecutionMs: histogramMsBetween(before, after) ?? computeInferMsBetween(before, after),
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
  };
}
