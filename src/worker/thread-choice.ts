/**
 * How an instance whose intra-op thread count is automatic (0 in the model's config) settles on one: it loads with
 * its share of the cores, times a few runs on zero-filled inputs, and drops to one thread when a run is so short
 * that a parallel pool cannot pay for waking its threads (see docs/performance.md for the measurements).
 */
import type * as ort from 'onnxruntime-node';

/**
 * Below this median run time (milliseconds, with the share of cores) the session is reloaded with one intra-op
 * thread. Measured with bench/thread-choice.ts on 2 cores: the tiny MLP (~0.01 ms a run) costs about twice the CPU
 * per run with 2 threads and gets no faster; the PP-OCRv4 recognizer (~15 ms) runs faster with 2.
 */
export const lightRunThresholdMs = 1;

/** Runs that are not timed first (first-run allocations and kernel choices), then the timed ones. */
const untimedRuns = 1;
const timedRuns = 5;

/** The middle value (the mean of the two middle ones for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** The median wall time of one run of `feeds`, in milliseconds, after an untimed run. Throws what the run throws. */
export async function medianRunMs(session: ort.InferenceSession, feeds: ort.InferenceSession.FeedsType): Promise<number> {
  for (let run = 0; run < untimedRuns; run++) await session.run(feeds);
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
