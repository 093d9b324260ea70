/** Latency and throughput of one model on one gantry, closed loop from this process (no other load). */
import type { InferRequest } from '../infer-encoding.js';
import { percentile } from '../models.js';

async function send(url: string, request: InferRequest): Promise<void> {
  const response = await fetch(url, { method: 'POST', headers: request.headers, body: request.body as unknown as BodyInit });
  await response.arrayBuffer();
  if (response.status !== 200) throw new Error(`${url} answered ${response.status}`);
}

/**
 * Median milliseconds of `count` sequential requests, after `warmup` unmeasured ones (the first on CUDA includes
 * cuDNN's algorithm search for the shape).
 */
export async function medianLatencyMs(url: string, request: InferRequest, count: number, warmup: number): Promise<number> {
  for (let i = 0; i < warmup; i++) await send(url, request);
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const begun = performance.now();
    await send(url, request);
    times.push(performance.now() - begun);
  }
  return percentile(
    times.sort((a, b) => a - b),
    50,
  );
}

/**
 * Answered requests per second with `clients` requests always in flight for `seconds` (after a 1 s warm-up at
 * the same load), so the worker's dynamic batching can merge them as it would in service. A failed request fails
 * the measurement.
 */
export async function requestsPerSecond(url: string, request: InferRequest, clients: number, seconds: number): Promise<number> {
  const loop = async (until: number) => {
    let answered = 0;
    while (performance.now() < until) {
      await send(url, request);
      answered++;
    }
    return answered;
  };
  const run = async (durationMs: number) => {
    const begun = performance.now();
    const counts = await Promise.all(Array.from({ length: clients }, () => loop(begun + durationMs)));
    return counts.reduce((a, b) => a + b, 0) / ((performance.now() - begun) / 1000);
  };
  await run(1000);
  return run(seconds * 1000);
}
