import { describeValue, errors } from '../errors.js';
import { byteSizeOf, elementCount, type Datatype } from './datatypes.js';
import { countBytesElements } from './bytes-elements.js';
import { encodeJsonData } from './json-tensor-codec.js';
import { restoreExactIntegers } from './exact-json-integers.js';
import { exactResponseText, needsExactJson } from './exact-json-response.js';
import { formatShape } from './shape-text.js';
import type { Tensor } from './tensor.js';

/**
 * Triton's binary tensor data extension (extension_binary_data.md). A body carrying binary tensors is the JSON
 * inference request/response followed by the tensors' raw bytes, in the order the tensors appear in the JSON;
 * the `Inference-Header-Content-Length` header gives the JSON part's length (§"Binary Tensor Request").
 *
 * The raw bytes use exactly Gantry's internal tensor layout (little-endian, row-major, BOOL one byte, BYTES as
 * 4-byte length + bytes), so inputs and outputs pass through without conversion.
 */

/** The HTTP header (lower-case, as Node exposes it) giving the JSON part's byte length. */
export const inferenceHeaderContentLength = 'inference-header-content-length';

/** Parameter names the extension defines (§"Binary Tensor Request"). */
export const binaryDataSizeParameter = 'binary_data_size';
export const binaryDataParameter = 'binary_data';
export const binaryDataOutputParameter = 'binary_data_output';

/** Why a BF16 tensor is answered with 400 (used by the infer route). */
export const bf16Message =
  'Datatype BF16 is not supported: Gantry runs models with onnxruntime-node, which cannot create bfloat16 tensors. Send FP32 (or FP16) data instead.';

const decimalDigits = /^\d+$/;

/**
 * Splits a request body into its JSON header and the binary tensor data after it.
 *
 * - `headerLength` undefined: the whole body is the JSON header and `binary` is empty.
 * - `headerLength` "0": a raw binary request (§"Raw Binary Request"): there is no JSON header, `header` is
 *   `undefined` and the whole body is `binary`. The caller must build the request from the model's metadata or
 *   refuse it.
 * - otherwise the first N bytes are parsed as JSON and the rest returned as a view (no copy).
 * @param maxHeaderBytes most bytes the JSON header may have (GANTRY_MAX_JSON_REQUEST_BYTES); default unlimited.
 * @throws GantryError(PAYLOAD_TOO_LARGE) when the header is longer than `maxHeaderBytes`;
 * GantryError(INVALID_ARGUMENT) when the length is not a non-negative integer, exceeds the body, or the
 * header is not valid JSON.
 */
export function splitBinaryBody(
  body: Buffer,
  headerLength: string | undefined,
  maxHeaderBytes = Number.POSITIVE_INFINITY,
): { header: unknown; binary: Buffer } {
  let length = body.byteLength;
  if (headerLength !== undefined) {
    const text = headerLength.trim();
    const parsed = Number(text);
    if (!decimalDigits.test(text) || !Number.isSafeInteger(parsed)) {
      throw errors.invalidArgument(`Inference-Header-Content-Length '${headerLength.slice(0, 40)}' is not a non-negative integer byte count.`);
    }
    if (parsed > body.byteLength) {
      throw errors.invalidArgument(`Inference-Header-Content-Length ${parsed} is larger than the body (${body.byteLength} bytes).`);
    }
    if (parsed === 0) return { header: undefined, binary: body };
    // JSON costs ~10x its bytes once parsed, so its part has a smaller limit than the whole body.
    if (parsed > maxHeaderBytes) throw errors.jsonRequestTooLarge(maxHeaderBytes);
    length = parsed;
  }
  const text = body.subarray(0, length).toString('utf8');
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (error) {
    const detail = error instanceof Error ? `: ${error.message.slice(0, 200)}` : '';
    const which = headerLength === undefined ? 'The request body' : `The JSON header (first ${length} bytes of the body)`;
    throw errors.invalidArgument(`${which} is not valid JSON${detail}.`);
  }
  // INT64/UINT64 numbers beyond 2^53 were rounded by JSON.parse: read those inputs' data again, exactly.
  restoreExactIntegers(header, text);
  return { header, binary: body.subarray(length) };
}

/** The parts of a request input (§"Request Input" of inference_rest.md) this module reads. */
export interface BinaryCapableInput {
  name: string;
  datatype: Datatype;
  shape: number[];
  parameters?: Record<string, unknown> | undefined;
  data?: unknown;
}

/**
 * Takes each binary input's bytes from the binary part of the body, in input order (§"Binary Tensor Request":
 * binary data follows the JSON in the order the tensors are listed). Inputs that carry JSON `data` are skipped.
 * @returns input name → its raw bytes (views into `binary`, not copies).
 * @throws GantryError(INVALID_ARGUMENT) naming the input when `binary_data_size` is not a non-negative integer,
 * is given together with `data`, disagrees with the shape, or when an input has no data at all; and when the
 * sizes do not add up to exactly the binary part of the body.
 */
export function takeBinaryInputs(inputs: readonly BinaryCapableInput[], binary: Buffer): Map<string, Uint8Array> {
  const taken = new Map<string, Uint8Array>();
  let offset = 0;
  for (const input of inputs) {
    const size = input.parameters?.[binaryDataSizeParameter];
    const hasData = input.data !== undefined && input.data !== null;
    if (size === undefined) {
      if (!hasData) {
        throw errors.invalidArgument(`Input '${input.name}' has no data: give either 'data' or the '${binaryDataSizeParameter}' parameter.`);
      }
      continue;
    }
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
      throw errors.invalidArgument(`Input '${input.name}': parameter '${binaryDataSizeParameter}' must be a non-negative integer, got ${describeValue(size)}.`);
    }
    if (hasData) {
      throw errors.invalidArgument(`Input '${input.name}' has both 'data' and '${binaryDataSizeParameter}'; give one or the other.`);
    }
    if (offset + size > binary.byteLength) {
      throw errors.invalidArgument(
        `Input '${input.name}' declares ${binaryDataSizeParameter} ${size} but only ${binary.byteLength - offset} bytes of binary data remain after the JSON header.`,
      );
    }
    const bytes = binary.subarray(offset, offset + size);
    offset += size;
    checkBinarySize(input, bytes);
    taken.set(input.name, bytes);
  }
  if (offset !== binary.byteLength) {
    throw errors.invalidArgument(
      `The body has ${binary.byteLength} bytes of binary data after the JSON header but the inputs' ${binaryDataSizeParameter} add up to ${offset}.`,
    );
  }
  return taken;
}

function checkBinarySize(input: BinaryCapableInput, bytes: Uint8Array): void {
  const count = elementCount(input.shape);
  if (input.datatype === 'BYTES') {
    // Counted by walking the lengths: one object per element would let 100 MB of empty elements exhaust the heap.
    const found = countBytesElements(bytes, input.name, count);
    if (found !== count) {
      const holds = found > count ? `more than ${count}` : String(found);
      throw errors.invalidArgument(
        `Input '${input.name}': shape ${formatShape(input.shape)} needs ${count} BYTES elements but its binary data holds ${holds}.`,
      );
    }
    return;
  }
  const expected = count * byteSizeOf(input.datatype);
  if (bytes.byteLength !== expected) {
    throw errors.invalidArgument(
      `Input '${input.name}': ${input.datatype} shape ${formatShape(input.shape)} needs ${expected} bytes but ${binaryDataSizeParameter} is ${bytes.byteLength}.`,
    );
  }
}

function booleanParameter(parameters: Record<string, unknown> | undefined, name: string, where: string): boolean | undefined {
  const value = parameters?.[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') {
    throw errors.invalidArgument(`Parameter '${name}' ${where} must be true or false, got ${describeValue(value)}.`);
  }
  return value;
}

/**
 * Whether an output goes back as binary data: the output's `binary_data` overrides the request's
 * `binary_data_output`; neither given means JSON (§"Binary Tensor Request").
 * @throws GantryError(INVALID_ARGUMENT) naming the parameter when either is not a boolean.
 */
export function wantsBinaryOutput(
  requestParameters: Record<string, unknown> | undefined,
  outputParameters: Record<string, unknown> | undefined,
  outputName?: string,
): boolean {
  const perOutput = booleanParameter(outputParameters, binaryDataParameter, outputName === undefined ? 'of an output' : `of output '${outputName}'`);
  const perRequest = booleanParameter(requestParameters, binaryDataOutputParameter, 'of the request');
  return perOutput ?? perRequest ?? false;
}

export interface ResponseEnvelope {
  model_name: string;
  model_version?: string | undefined;
  id?: string | undefined;
  parameters?: Record<string, unknown> | undefined;
}

export interface ResponseOutput {
  tensor: Tensor;
  /** Send this output's bytes after the JSON header instead of as JSON `data`. */
  binary: boolean;
  /** JSON `data` for a non-binary output; computed from the tensor's bytes when omitted. */
  jsonData?: unknown[] | undefined;
  parameters?: Record<string, unknown> | undefined;
}

/** An inference response, ready to send (see encodeInferResponseParts). */
export interface EncodedInferResponse {
  /**
   * The response as an object (INT64/UINT64 values beyond 2^53 in it are decimal strings: a JavaScript number
   * cannot hold them). Sent as it is unless `serialized` or `parts` is set.
   */
  json: object;
  /**
   * The whole JSON response as text, set only when some output answered as JSON is INT64/UINT64 and the
   * response has no binary parts: those values are written as exact JSON numbers, as Triton does. Send it
   * verbatim as application/json instead of `json`.
   */
  serialized?: string;
  /** With binary outputs: the JSON header (exact numbers too), then each binary output's bytes. */
  parts?: Uint8Array[];
  /** The JSON header's length in bytes (the Inference-Header-Content-Length of the response). */
  headerLength?: number;
  /** The whole body's length in bytes. */
  byteLength?: number;
}

/**
 * Builds an inference response. Without binary outputs it is the plain JSON object (and, with 64-bit JSON
 * outputs, its exact text in `serialized`); with some, it is a JSON header (binary outputs carry
 * `binary_data_size` and no `data`) followed by their bytes, as a list of parts so that a multi-megabyte tensor is
 * sent as it is instead of being copied into one new buffer.
 */
export function encodeInferResponseParts(response: ResponseEnvelope, outputs: readonly ResponseOutput[]): EncodedInferResponse {
  const json: Record<string, unknown> = { model_name: response.model_name };
  if (response.model_version !== undefined) json.model_version = response.model_version;
  if (response.id !== undefined) json.id = response.id;
  if (response.parameters !== undefined) json.parameters = response.parameters;

  const binaryParts: Uint8Array[] = [];
  let exact: Map<number, Tensor> | undefined;
  const jsonOutputs = outputs.map(({ tensor, binary, jsonData, parameters }, index) => {
    const out: Record<string, unknown> = { name: tensor.name, datatype: tensor.datatype, shape: tensor.shape };
    if (binary) {
      out.parameters = { ...parameters, [binaryDataSizeParameter]: tensor.data.byteLength };
      binaryParts.push(tensor.data);
    } else {
      if (parameters !== undefined) out.parameters = parameters;
      if (jsonData === undefined && needsExactJson(tensor.datatype)) (exact ??= new Map()).set(index, tensor);
      out.data = jsonData ?? encodeJsonData(tensor.datatype, tensor.data);
    }
    return out;
  });
  json.outputs = jsonOutputs;

  const text = exact === undefined ? undefined : exactResponseText({ ...json, outputs: jsonOutputs }, exact);
  if (binaryParts.length === 0) return text === undefined ? { json } : { json, serialized: text };
  const header = Buffer.from(text ?? JSON.stringify(json), 'utf8');
  const byteLength = binaryParts.reduce((sum, part) => sum + part.byteLength, header.byteLength);
  return { json, parts: [header, ...binaryParts], headerLength: header.byteLength, byteLength };
}
