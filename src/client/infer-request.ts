import { invalidClientArgument } from './gantry-error.js';
import { encodeInferRequest, type EncodedInferRequest } from './infer-codec.js';
import { encodeInput } from './tensor-encoding.js';
import type { TensorInput } from './tensor-types.js';

/** How one inference is sent (client.infer, and client.jobs.create with the same body). */
export interface InferOptions {
  /** A version number (default: the serving version: the traffic policy, `production`, else the newest READY). */
  version?: string | number | undefined;
  /** Outputs to answer (default: all). */
  outputs?: string[] | undefined;
  /** true: inputs as binary data; false: JSON; 'auto' (default): binary from 4 KiB of tensor data (binaryThresholdBytes). */
  binary?: boolean | 'auto' | undefined;
  /** Ask for outputs as binary data; default: as the inputs go. */
  binaryOutputs?: boolean | undefined;
  signal?: AbortSignal | undefined;
  /**
   * Budget for this call in ms (retries included). Also sent as the request's `timeout` parameter, so the
   * server drops the work once this caller has given up.
   */
  timeoutMs?: number | undefined;
  /** Schedule priority: 1 is the highest (the model's default when absent). */
  priority?: number | undefined;
  /** The request's id, echoed in the response. */
  id?: string | undefined;
  /** Further request parameters, sent as they are (classification, ...). */
  parameters?: Record<string, unknown> | undefined;
  /** Extra headers (X-Request-Id, ...). */
  headers?: Record<string, string> | undefined;
}

/**
 * The body of an inference (infer, or a job's creation, which takes the same body plus `fields`): the inputs
 * encoded, the schedule parameters set from the options.
 * @throws GantryError(status 0, INVALID_ARGUMENT) for inputs refused before sending.
 */
export function buildInferRequest(inputs: Record<string, TensorInput>, options: InferOptions, fields?: Record<string, unknown>): EncodedInferRequest {
  if (typeof inputs !== 'object' || inputs === null || Object.keys(inputs).length === 0) {
    throw invalidClientArgument('An inference needs at least one input: { inputName: Float32Array | {data, shape, datatype} }.');
  }
  const encoded = Object.entries(inputs).map(([name, input]) => encodeInput(name, input));
  const parameters: Record<string, unknown> = { ...options.parameters };
  if (options.priority !== undefined) parameters.priority = options.priority;
  if (options.timeoutMs !== undefined && options.timeoutMs > 0) parameters.timeout = Math.round(options.timeoutMs * 1000);
  return encodeInferRequest(
    encoded,
    { id: options.id, outputs: options.outputs, parameters, fields },
    { binary: options.binary ?? 'auto', binaryOutputs: options.binaryOutputs },
  );
}
