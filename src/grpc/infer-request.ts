import type { Metadata } from '@grpc/grpc-js';
import type { Principal } from '../auth/principal.js';
import { errors } from '../errors.js';
import type { CallInput, CallOutput, InferenceCall, TypedContents } from '../inference/inference-call.js';
import { plainParameters, type WireParameter } from './infer-parameters.js';

/**
 * `ModelInferRequest` as @grpc/proto-loader decodes it (`keepCase`, `longs: String`, `bytes: Buffer`, `arrays`, no
 * defaults): proto3 does not send empty strings, so a field left empty by the client is absent here.
 */
export interface WireInferRequest {
  model_name?: string;
  model_version?: string;
  id?: string;
  parameters?: Record<string, WireParameter>;
  inputs: Array<{ name?: string; datatype?: string; shape: string[]; parameters?: Record<string, WireParameter>; contents?: TypedContents }>;
  outputs: Array<{ name?: string; parameters?: Record<string, WireParameter> }>;
  raw_input_contents: Buffer[];
}

/** True when any typed contents field holds an element. */
function hasTypedElements(contents: TypedContents | undefined): boolean {
  if (contents === undefined) return false;
  return Object.values(contents).some((values) => Array.isArray(values) && values.length > 0);
}

/**
 * Where each input's data is on the wire. Either every input comes in `raw_input_contents` (one entry each, in
 * `inputs` order), or every input carries typed `contents`: Triton refuses a mix, and so does Gantry. Reading the
 * wire format is the transport's; what the data must be (datatype, shape, element counts) the service checks.
 * @throws INVALID_ARGUMENT for a mix, or a count of raw contents other than one per input.
 */
function callInputs(request: WireInferRequest): CallInput[] {
  const raw = request.raw_input_contents;
  if (raw.length > 0) {
    if (raw.length !== request.inputs.length) {
      throw errors.invalidArgument(
        `The request has ${raw.length} raw_input_contents for ${request.inputs.length} inputs; send exactly one per input, in the order of 'inputs'.`,
      );
    }
    const typed = request.inputs.find((input) => hasTypedElements(input.contents));
    if (typed !== undefined) {
      throw errors.invalidArgument(
        `Input '${(typed.name ?? '').slice(0, 100)}' has typed 'contents' while the request uses raw_input_contents; send every input one way, not both.`,
      );
    }
  }
  return request.inputs.map((input, index) => ({
    name: input.name ?? '',
    datatype: input.datatype ?? '',
    shape: input.shape.map(Number),
    ...withParameters(input.parameters),
    content: raw.length > 0 ? { kind: 'raw', bytes: raw[index]! } : { kind: 'typed', contents: input.contents ?? {} },
  }));
}

function withParameters(parameters: Record<string, WireParameter> | undefined): { parameters?: Record<string, unknown> } {
  const plain = plainParameters(parameters);
  return plain === undefined ? {} : { parameters: plain };
}

/** What the transport knows about the call besides its message. */
export interface CallSurroundings {
  principal: Principal;
  timeoutMs: number | undefined;
  signal: AbortSignal;
  /** The call's metadata: what a sticky traffic split reads. */
  metadata?: Metadata;
}

/** A metadata key's first text value (binary `-bin` values are not routing values). */
function metadataText(metadata: Metadata, key: string): string | undefined {
  const value = metadata.get(key).find((candidate) => typeof candidate === 'string');
  return typeof value === 'string' ? value : undefined;
}

/**
 * A `ModelInferRequest` as the inference service's call: names, shapes and parameters as plain values, each
 * input's data as raw bytes or typed contents, the client's deadline and cancellation. Nothing is validated here.
 */
export function inferenceCallOf(request: WireInferRequest, surroundings: CallSurroundings): InferenceCall {
  const outputs: CallOutput[] = request.outputs.map((output) => ({ name: output.name ?? '', ...withParameters(output.parameters) }));
  const { metadata } = surroundings;
  return {
    principal: surroundings.principal,
    protocol: 'grpc',
    model: request.model_name ?? '',
    ...(request.model_version === undefined || request.model_version === '' ? {} : { version: request.model_version }),
    ...(request.id === undefined || request.id === '' ? {} : { id: request.id }),
    inputs: callInputs(request),
    ...(outputs.length === 0 ? {} : { outputs }),
    ...withParameters(request.parameters),
    ...(surroundings.timeoutMs === undefined ? {} : { timeoutMs: surroundings.timeoutMs }),
    signal: surroundings.signal,
    ...(metadata === undefined ? {} : { routingValue: (key: string) => metadataText(metadata, key) }),
    usage: {},
  };
}

/**
 * About how many bytes a decoded ModelInferRequest holds, for the in-flight budget: its raw tensors, plus 8 bytes
 * per typed element (a number in a JavaScript array; a 64-bit decimal string costs more, but typed contents are
 * bounded by the message size limit anyway) and each BYTES element's length.
 */
export function requestMessageBytes(request: WireInferRequest): number {
  let total = 0;
  for (const bytes of request.raw_input_contents) total += bytes.byteLength;
  for (const input of request.inputs) {
    for (const values of Object.values(input.contents ?? {})) {
      if (!Array.isArray(values)) continue;
      total += 8 * values.length;
      for (const value of values) if (value instanceof Uint8Array) total += value.byteLength;
    }
  }
  return total;
}
