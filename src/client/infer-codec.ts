import { isDatatype, type Datatype } from '../protocol/datatypes.js';
import { binaryDataOutputParameter, binaryDataSizeParameter, inferenceHeaderContentLength } from '../protocol/binary-extension.js';
import { readBytesStrings } from '../protocol/bytes-elements.js';
import { decodeJsonData, encodeJsonData } from '../protocol/json-tensor-codec.js';
import { fromFloat16Bits } from '../protocol/float16.js';
import { typedView } from '../protocol/typed-view.js';
import { GantryError } from './gantry-error.js';
import { tensorBytes } from './tensor-encoding.js';
import type { EncodedInput, Tensor, TensorValues } from './tensor-types.js';

/**
 * Inputs of at least this many bytes of tensor data go as the binary tensor extension when `binary` is 'auto'
 * (the default); smaller ones as JSON, which any proxy or log can read. Measured here (2 loaded cores), the client's
 * JSON encoding plus the server's parse and decode of FP32 data cost 0.13 ms at 256 floats, 0.44 ms at 1024
 * (this threshold, 4 KiB) and 1.8 ms at 4096, where the binary body costs 0.02–0.04 ms at every one of those sizes:
 * past 4 KiB JSON's readability costs a noticeable share of a ~4 ms request.
 */
export const binaryThresholdBytes = 4 * 1024;

/** How the tensors of one call travel. */
export interface InferEncoding {
  /** true: inputs as binary data; false: JSON; 'auto': binary from binaryThresholdBytes of tensor data. */
  binary: boolean | 'auto';
  /** Ask for the outputs as binary data; default: as the inputs went. */
  binaryOutputs?: boolean | undefined;
}

export interface InferRequestParts {
  id?: string | undefined;
  outputs?: string[] | undefined;
  /** Request parameters (priority, timeout, ...), sent as they are. */
  parameters?: Record<string, unknown> | undefined;
  /** Further top-level fields (a job's `callback` and `retention`). */
  fields?: Record<string, unknown> | undefined;
}

/** An encoded inference request: its body and the headers that describe it. */
export interface EncodedInferRequest {
  body: Uint8Array | string;
  headers: Record<string, string>;
  binaryInputs: boolean;
}

/**
 * Builds the body of POST …/infer: JSON, or the binary tensor extension (a JSON header, then each input's bytes in
 * input order; Inference-Header-Content-Length gives the header's length).
 */
export function encodeInferRequest(inputs: readonly EncodedInput[], parts: InferRequestParts, encoding: InferEncoding): EncodedInferRequest {
  const binaryInputs =
    encoding.binary === true || (encoding.binary === 'auto' && (tensorBytes(inputs) >= binaryThresholdBytes || inputs.some((input) => input.binaryOnly)));
  const binaryOutputs = encoding.binaryOutputs ?? binaryInputs;
  const parameters: Record<string, unknown> = { ...parts.parameters };
  if (binaryOutputs) parameters[binaryDataOutputParameter] = true;
  const header: Record<string, unknown> = {};
  if (parts.id !== undefined) header.id = parts.id;
  if (Object.keys(parameters).length > 0) header.parameters = parameters;
  header.inputs = inputs.map((input) =>
    binaryInputs
      ? { name: input.name, datatype: input.datatype, shape: input.shape, parameters: { [binaryDataSizeParameter]: input.bytes.byteLength } }
      : { name: input.name, datatype: input.datatype, shape: input.shape, data: encodeJsonData(input.datatype, input.bytes) },
  );
  if (parts.outputs !== undefined) header.outputs = parts.outputs.map((name) => ({ name }));
  Object.assign(header, parts.fields);
  const headerText = JSON.stringify(header);
  if (!binaryInputs) return { body: headerText, headers: { 'content-type': 'application/json' }, binaryInputs };
  const headerBytes = Buffer.from(headerText, 'utf8');
  // One copy into the body: a Content-Length the server checks against its limit before reading.
  const body = Buffer.concat([headerBytes, ...inputs.map((input) => input.bytes)]);
  return {
    body,
    headers: { 'content-type': 'application/octet-stream', [inferenceHeaderContentLength]: String(headerBytes.byteLength) },
    binaryInputs,
  };
}

/** A decoded inference answer. */
export interface InferResult {
  modelName: string;
  modelVersion?: string | undefined;
  id?: string | undefined;
  parameters?: Record<string, unknown> | undefined;
  outputs: Tensor[];
  /** The request id Gantry answered with (X-Request-Id): the one in its access log. */
  requestId?: string | undefined;
  /** The output called `name`. @throws Error when there is none. */
  output(name: string): Tensor;
}

interface WireOutput {
  name?: unknown;
  datatype?: unknown;
  shape?: unknown;
  parameters?: Record<string, unknown>;
  data?: unknown;
}

export interface WireResponse {
  model_name?: unknown;
  model_version?: unknown;
  id?: unknown;
  parameters?: Record<string, unknown>;
  outputs?: unknown;
}

function malformed(detail: string): GantryError {
  return new GantryError(`Gantry answered an inference with a malformed response: ${detail}.`, { status: 200, code: 'INTERNAL' });
}

/**
 * The JSON text with every integer of 16 or more digits outside strings written as a string, so JSON.parse keeps
 * its digits (a double holds 15–17). Only INT64/UINT64 outputs are read from it: a float printed as digits
 * (1e20 is written 100000000000000000000) stays a number in the plain parse.
 */
function withLongIntegersQuoted(text: string): string {
  return text.replace(/"(?:[^"\\]|\\.)*"|(?<![\w.+-])-?\d{16,}(?![\d.eE])/g, (token) => (token.startsWith('"') ? token : `"${token}"`));
}

function holdsUnsafeNumber(data: unknown): boolean {
  return Array.isArray(data) && data.some((value) => typeof value === 'number' && !Number.isSafeInteger(value) && Number.isInteger(value));
}

/**
 * Parses JSON holding an inference response (at the top, or where `responseOf` finds it), its INT64/UINT64 outputs
 * exactly: Gantry writes them as exact JSON numbers, which JSON.parse would round past 2^53.
 */
export function parseExactJson<T>(text: string, responseOf: (parsed: T) => WireResponse | undefined): T {
  const parsed = JSON.parse(text) as T;
  const outputs = responseOf(parsed)?.outputs;
  if (!Array.isArray(outputs)) return parsed;
  const sixtyFour = (output: WireOutput) => output.datatype === 'INT64' || output.datatype === 'UINT64';
  if (!(outputs as WireOutput[]).some((output) => sixtyFour(output) && holdsUnsafeNumber(output.data))) return parsed;
  const exact = responseOf(JSON.parse(withLongIntegersQuoted(text)) as T)?.outputs as WireOutput[] | undefined;
  (outputs as WireOutput[]).forEach((output, index) => {
    if (sixtyFour(output)) output.data = exact?.[index]?.data;
  });
  return parsed;
}

/** Raw tensor bytes → the values a caller gets (typed arrays, booleans, strings). */
export function tensorValues(datatype: Datatype, bytes: Uint8Array): TensorValues {
  if (datatype === 'BYTES') return readBytesStrings(bytes);
  if (datatype === 'BOOL') return Array.from(bytes, (byte) => byte !== 0);
  if (datatype === 'FP16') {
    const bits = typedView('FP16', bytes) as Uint16Array;
    return Float32Array.from(bits, (value) => fromFloat16Bits(value));
  }
  return typedView(datatype, bytes) as TensorValues;
}

/**
 * Decodes the answer of POST …/infer (JSON, or the binary extension when `headerLength` is given).
 * @throws GantryError(INTERNAL) when the answer does not read as an inference response.
 */
export function decodeInferResponse(body: Uint8Array, headerLength: string | null, requestId?: string): InferResult {
  const buffer = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  let jsonLength = buffer.byteLength;
  if (headerLength !== null) {
    jsonLength = Number(headerLength);
    if (!Number.isSafeInteger(jsonLength) || jsonLength < 0 || jsonLength > buffer.byteLength) {
      throw malformed(`Inference-Header-Content-Length ${headerLength.slice(0, 20)} does not fit the body`);
    }
  }
  let wire: WireResponse;
  try {
    wire = parseExactJson<WireResponse>(buffer.toString('utf8', 0, jsonLength), (parsed) => parsed);
  } catch {
    throw malformed('its JSON does not parse');
  }
  return decodeWireResponse(wire, buffer.subarray(jsonLength), requestId);
}

/**
 * Decodes a parsed inference response; outputs with `binary_data_size` take their bytes from `binary`, in order.
 * @throws GantryError(INTERNAL) when it does not read as an inference response.
 */
export function decodeWireResponse(wire: WireResponse, binary: Buffer = Buffer.alloc(0), requestId?: string): InferResult {
  if (typeof wire !== 'object' || wire === null || !Array.isArray(wire.outputs) || typeof wire.model_name !== 'string')
    throw malformed('no model_name or outputs');
  let offset = 0;
  const outputs = (wire.outputs as WireOutput[]).map((output, index): Tensor => {
    const { name, datatype, shape } = output;
    if (typeof name !== 'string' || !isDatatype(datatype) || !Array.isArray(shape)) throw malformed(`output ${index} lacks a name, datatype or shape`);
    const { [binaryDataSizeParameter]: size, ...parameters } = output.parameters ?? {};
    let bytes: Uint8Array;
    if (size !== undefined) {
      if (typeof size !== 'number' || offset + size > binary.byteLength) throw malformed(`output '${name}' has ${binaryDataSizeParameter} past the body`);
      bytes = binary.subarray(offset, offset + size);
      offset += size;
    } else {
      try {
        bytes = decodeJsonData(name, datatype, shape as number[], output.data);
      } catch (error) {
        throw malformed(error instanceof Error ? error.message : `output '${name}'`);
      }
    }
    const tensor: Tensor = { name, datatype, shape: shape as number[], data: tensorValues(datatype, bytes) };
    if (Object.keys(parameters).length > 0) tensor.parameters = parameters;
    return tensor;
  });
  return {
    modelName: wire.model_name,
    ...(typeof wire.model_version === 'string' ? { modelVersion: wire.model_version } : {}),
    ...(typeof wire.id === 'string' ? { id: wire.id } : {}),
    ...(wire.parameters === undefined ? {} : { parameters: wire.parameters }),
    outputs,
    ...(requestId === undefined ? {} : { requestId }),
    output(name: string): Tensor {
      const found = outputs.find((output) => output.name === name);
      if (found === undefined) throw new Error(`The response has no output '${name}' (it has ${outputs.map((output) => `'${output.name}'`).join(', ')}).`);
      return found;
    },
  };
}
