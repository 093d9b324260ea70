/**
 * How an instance whose intra-op thread count is automatic (0 in the model's config) settles on one: it loads with
 * its share of the cores, times a few runs on zero-filled inputs, and drops to one thread when a run is so short
 * that a parallel pool cannot pay for waking its threads (see docs/performance.md for the measurements).
 */
import type * as ort from 'onnxruntime-node';

/**
 * Below this median run time (milliseconds, with the share of cores) the session is reloaded with one intra-op
 * thread. Measured with bench/thread-choice.ts on 2 shared cores, one run at a time: under ~1 ms a second thread
 * gains little wall time and costs CPU (heavy MLP at batch 1, ~0.4 ms: 1.11x runs/s for 1.22-1.32x CPU per run; the
 * tiny MLP, ~0.013 ms, is too small to split at all), while through Gantry the tiny MLP served 1.46-1.63x the
 * requests with one thread (the pool's wake-ups compete with the worker's own threads). Longer runs keep the share.
 */
export const lightRunThresholdMs = 1;

/** The run that is not timed first (first-run allocations and kernel choices), then the timed ones. */
const timedRuns = 5;

/**
 * A first run this long ends the measurement: the model is heavy whatever the later runs take, and five more runs
 * of it would only lengthen the load (counted against the load deadline).
 */
const clearlyHeavyFirstRunMs = 50 * lightRunThresholdMs;

/** The middle value (the mean of the two middle ones for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/**
 * The median wall time of one run of `feeds`, in milliseconds, after a first run that does not count; or the first
 * run's time when that alone shows the model heavy. Throws what the run throws.
 */
export async function medianRunMs(session: ort.InferenceSession, feeds: ort.InferenceSession.FeedsType): Promise<number> {
  const firstStarted = performance.now();
  await session.run(feeds);
  const firstRunMs = performance.now() - firstStarted;
  if (firstRunMs >= clearlyHeavyFirstRunMs) return firstRunMs;
  const durations: number[] = [];
  for (let run = 0; run < timedRuns; run++) {
    const started = performance.now();
    await session.run(feeds);
    durations.push(performance.now() - started);
  }
  return median(durations);
}

/** The intra-op threads an automatic instance keeps: one for a light model, else its share. */
export function chosenIntraOpThreads(share: number, medianMs: number): number {
  return medianMs < lightRunThresholdMs ? 1 : share;
}
