/**
 * OIP v2 inference requests and answers on the wire, in JSON or with the binary tensor data extension (a JSON
 * header followed by raw little-endian tensor bytes). Shared by the bench (models.ts wraps it for its one FP32
 * input) and gpu-check (several inputs, INT64 among them), so both speak the protocol through one encoder and
 * one answer splitter.
 */

import { adminAuthorization } from '../support/gantry-process.js';

/** How tensors travel: OIP v2 JSON, or the binary tensor data extension (JSON header + raw bytes). */
export type Encoding = 'json' | 'binary';

/** The header giving the JSON part's length in a binary-extension body (request and response). */
export const inferenceHeaderContentLength = 'inference-header-content-length';

/**
 * A request ready for any HTTP target: the body and the headers that go with it, the test admin key among them
 * (gantry processes started by the bench get it; a plain server or an older build without auth ignores it, and
 * every target parses the same header bytes).
 */
export interface InferRequest {
  body: string | Buffer;
  headers: Record<string, string>;
}

/** One request input. */
export interface InputTensor {
  name: string;
  shape: number[];
  datatype: 'FP32' | 'INT64';
  /** Values already representable in the datatype (float32-rounded), so JSON and binary send identical bits. */
  data: number[];
}

function rawBytes(input: InputTensor): Buffer {
  if (input.datatype === 'FP32') return Buffer.from(Float32Array.from(input.data).buffer);
  return Buffer.from(BigInt64Array.from(input.data.map((value) => BigInt(value))).buffer);
}

/**
 * The request in either encoding. Binary: a JSON header declaring each input's `binary_data_size` and
 * `binary_data_output: true` for the answer, followed by the inputs' raw bytes in order; the
 * `Inference-Header-Content-Length` header gives the JSON part's length. Each input's fields are written in the
 * caller's order, so every caller keeps sending the bytes it always sent.
 */
export function encodeInferRequest(inputs: InputTensor[], encoding: Encoding): InferRequest {
  if (encoding === 'json') return { body: JSON.stringify({ inputs }), headers: { authorization: adminAuthorization, 'content-type': 'application/json' } };
  const raws = inputs.map(rawBytes);
  const header = Buffer.from(
    JSON.stringify({
      inputs: inputs.map(({ data: _data, ...declaration }, index) => ({ ...declaration, parameters: { binary_data_size: raws[index]!.byteLength } })),
      parameters: { binary_data_output: true },
    }),
  );
  return {
    body: Buffer.concat([header, ...raws]),
    headers: { authorization: adminAuthorization, 'content-type': 'application/octet-stream', [inferenceHeaderContentLength]: String(header.byteLength) },
  };
}

/** One output of an answer as it arrived: JSON values, or the raw bytes from the binary part. */
export interface ReceivedOutput {
  name: string;
  shape: number[];
  datatype: string;
  /** The (possibly nested) JSON `data`, when the output came as JSON. */
  jsonData?: unknown[];
  /** The output's raw bytes, when it came in the binary part. */
  binaryData?: Buffer;
}

/**
 * Splits an answer in either encoding into its outputs (binary outputs follow the JSON header in order). How the
 * values are read is the caller's: the bench wants FP32 as float32, gpu-check each datatype as itself.
 */
export function splitInferResponse(body: Buffer, headerLength: string | null): ReceivedOutput[] {
  const jsonLength = headerLength === null ? body.byteLength : Number(headerLength);
  const parsed = JSON.parse(body.subarray(0, jsonLength).toString('utf8')) as {
    outputs?: Array<{ name: string; shape: number[]; datatype: string; data?: unknown[]; parameters?: { binary_data_size?: number } }>;
  };
  let offset = jsonLength;
  return (parsed.outputs ?? []).map((output) => {
    const described = { name: output.name, shape: output.shape, datatype: output.datatype };
    const size = output.parameters?.binary_data_size;
    if (size === undefined) return { ...described, jsonData: output.data };
    const binaryData = body.subarray(offset, offset + size);
    offset += size;
    return { ...described, binaryData };
  });
}
