import type { ModelSignature } from '../protocol/signature.js';

/**
 * A model can take several requests in one execution only when every input and every output has a dynamic
 * leading (batch) dimension. Scalars, fixed batch sizes and state tensors batched on another axis (Silero VAD's
 * `[2, batch, 128]`) fail this test and run one request at a time. The worker's batcher and the configuration
 * the API reports (max_batch_size, dynamic_batching) both ask this one function, so they cannot disagree.
 */
export function canBatch(signature: ModelSignature): boolean {
  const batchable = (shape: number[]) => shape.length >= 1 && shape[0] === -1;
  return signature.inputs.every((spec) => batchable(spec.shape)) && signature.outputs.every((spec) => batchable(spec.shape));
}
