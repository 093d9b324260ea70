import type { Logger } from '../logger.js';

export interface ExecutionDevice {
  name: 'cpu' | 'cuda';
  executionProviders: string[];
}

/**
 * Chooses onnxruntime execution providers. `cuda` must work or start-up fails loudly (onnxruntime does not
 * fall back by itself, and a GPU host silently running on CPU is worse than a crash); `auto` probes CUDA in a
 * throwaway thread and falls back to CPU, logging the choice.
 */
export async function resolveExecutionProviders(requested: 'cpu' | 'cuda' | 'auto', logger: Logger): Promise<ExecutionDevice> {
  if (requested === 'cpu') return { name: 'cpu', executionProviders: ['cpu'] };
  const { probeCuda } = await import('./cuda-probe.js');
  const problem = await probeCuda();
  if (problem === undefined) {
    logger.info('CUDA execution provider available');
    return { name: 'cuda', executionProviders: ['cuda', 'cpu'] };
  }
  if (requested === 'cuda') {
    throw new Error(
      `GANTRY_DEVICE=cuda but the CUDA execution provider cannot be used: ${problem}. Install onnxruntime-node's CUDA libraries (see docs/gpu.md) or set GANTRY_DEVICE=cpu.`,
    );
  }
  logger.warn({ reason: problem }, 'CUDA not usable; GANTRY_DEVICE=auto falls back to CPU');
  return { name: 'cpu', executionProviders: ['cpu'] };
}
