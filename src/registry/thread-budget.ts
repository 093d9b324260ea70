import os from 'node:os';

/** The execution settings that decide how many threads a model's sessions start. */
export interface ThreadSettings {
  instances: number;
  intraOpThreads: number;
  interOpThreads: number;
}

/**
 * The intra-op threads an instance whose count is automatic (0) loads with: its share of the host's cores,
 * max(1, floor(cores / instances)), so a model's instances together do not ask for more threads than there are
 * cores. A light model then drops to one after its measured run (src/worker/thread-choice.ts); never more.
 */
export function intraOpShare(instances: number, availableParallelism: number): number {
  return Math.max(1, Math.floor(availableParallelism / Math.max(1, instances)));
}

/**
 * onnxruntime threads a model's sessions use on one worker: instances x (intra + inter), the number
 * GANTRY_MAX_THREADS_PER_WORKER bounds. Measured with onnxruntime-node 1.30 (/proc/<pid>/status Threads:):
 * an instance costs exactly `intra` threads (its worker thread runs one share of the intra-op pool, the pool
 * adds intra - 1), and the inter-op pool is only started in parallel execution mode, which Gantry never sets,
 * so an explicit inter-op count is counted as an upper bound rather than what it costs today.
 * Intra 0 (automatic) counts as the share the instances load with (intraOpShare): the most they use, before the
 * measurement may lower it to one.
 * @param availableParallelism the cores of the host the sessions run on; default os.availableParallelism().
 */
export function onnxruntimeThreadsOf(settings: ThreadSettings, availableParallelism = os.availableParallelism()): number {
  const intra = settings.intraOpThreads > 0 ? settings.intraOpThreads : intraOpShare(settings.instances, availableParallelism);
  return settings.instances * (intra + settings.interOpThreads);
}
