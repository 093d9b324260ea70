import type { InferenceResult } from '../inference/inference-call.js';

/** `ModelInferResponse` as @grpc/proto-loader encodes it (64-bit shape dimensions as decimal strings). */
export interface WireInferResponse {
  model_name: string;
  model_version: string;
  id: string;
  outputs: Array<{ name: string; datatype: string; shape: string[] }>;
  raw_output_contents: Buffer[];
}

/**
 * The service's answer as a `ModelInferResponse`: every output's metadata in `outputs` and its bytes in
 * `raw_output_contents`, in the same order, as Triton's gRPC server answers (clients read raw contents first).
 * The bytes are not copied: each Buffer is a view of the reply's output bytes.
 */
export function inferResponseOf(result: InferenceResult): WireInferResponse {
  return {
    model_name: result.modelName,
    model_version: result.modelVersion,
    id: result.id ?? '',
    outputs: result.outputs.map(({ tensor }) => ({ name: tensor.name, datatype: tensor.datatype, shape: tensor.shape.map(String) })),
    raw_output_contents: result.outputs.map(({ tensor }) => Buffer.from(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength)),
  };
}
