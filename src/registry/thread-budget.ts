import os from 'node:os';

/** The execution settings that decide how many threads a model's sessions start. */
export interface ThreadSettings {
  instances: number;
  intraOpThreads: number;
  interOpThreads: number;
}

/**
 * onnxruntime threads a model's sessions use on one worker: instances x (intra + inter), the number
 * GANTRY_MAX_THREADS_PER_WORKER bounds. Measured with onnxruntime-node 1.30 (/proc/<pid>/status Threads:):
 * an instance costs exactly `intra` threads (its worker thread runs one share of the intra-op pool, the pool
 * adds intra - 1), and the inter-op pool is only started in parallel execution mode, which Gantry never sets,
 * so an explicit inter-op count is counted as an upper bound rather than what it costs today.
 * @param availableParallelism what intra 0 ("onnxruntime's choice") means on this host: onnxruntime sizes its
 *   pool by the cores; default os.availableParallelism().
 */
export function onnxruntimeThreadsOf(settings: ThreadSettings, availableParallelism = os.availableParallelism()): number {
  const intra = settings.intraOpThreads > 0 ? settings.intraOpThreads : availableParallelism;
  return settings.instances * (intra + settings.interOpThreads);
}
