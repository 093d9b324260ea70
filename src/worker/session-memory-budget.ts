import os from 'node:os';

/**
 * GANTRY_WORKER_SESSION_MEMORY_BYTES as a worker applies it: the value set, or (0, the default) half the memory
 * this process may use: its cgroup's limit in a container (process.constrainedMemory), else the machine's. Half,
 * because a session's file size is what it holds at rest: onnxruntime's arenas, inputs and outputs in flight and
 * the process itself need the rest.
 */
export function sessionMemoryBudget(configured: number, totalMemory = os.totalmem(), constrained = constrainedMemory()): number {
  if (configured > 0) return configured;
  const usable = constrained !== undefined && constrained > 0 ? Math.min(constrained, totalMemory) : totalMemory;
  return Math.floor(usable / 2);
}

/** The cgroup's memory limit, where Node reports one (an unlimited cgroup reports a huge number, capped above). */
function constrainedMemory(): number | undefined {
  const reported = (process as { constrainedMemory?: () => number | undefined }).constrainedMemory?.();
  return typeof reported === 'number' && Number.isFinite(reported) ? reported : undefined;
}
