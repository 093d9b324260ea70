import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ModelInstances } from './model-instances.js';

/**
 * A one-node Identity model (float32 [batch,width]), embedded so the probe needs no file shipped beside the
 * code. Built by test/fixtures/build-fixtures.ts (identity-float.onnx).
 */
const identityModelBase64 =
  'CAgSFGdhbnRyeS10ZXN0LWZpeHR1cmVzGgExMhtJZGVudGl0eSBmb3IgZmxvYXQgdGVuc29ycy46gwEKKgoFaW5wdXQSBm91dHB1dBoPSWRlbnRpdHlfb3V0cHV0IghJZGVudGl0eRIOaWRlbnRpdHlfZmxvYXRaIQoFaW5wdXQSGAoWCAESEgoHEgViYXRjaAoHEgV3aWR0aGIiCgZvdXRwdXQSGAoWCAESEgoHEgViYXRjaAoHEgV3aWR0aEIECgAQEQ==';

/**
 * Creates a CUDA-only session for a tiny model in an instance thread (the worker's main thread never loads
 * onnxruntime) and runs it once.
 * @returns undefined when CUDA works, otherwise onnxruntime's reason.
 */
export async function probeCuda(): Promise<string | undefined> {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'gantry-cuda-probe-'));
  const modelPath = path.join(directory, 'identity.onnx');
  try {
    await writeFile(modelPath, Buffer.from(identityModelBase64, 'base64'));
    const { instances } = await ModelInstances.load(modelPath, 1, { executionProviders: ['cuda'], graphOptimizationLevel: 'basic' });
    await instances.close();
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}
