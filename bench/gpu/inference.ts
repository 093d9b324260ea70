/** Sending a check model's request to a gantry and reading the answer's outputs in any datatype. */
import type { GantryProcess } from '../../support/gantry-process.js';
import { inferenceHeaderContentLength, splitInferResponse, type InferRequest } from '../infer-encoding.js';
import type { CheckModel } from './model-catalogue.js';

/** An answer's output, every datatype widened to float64 so that one comparison serves them all. */
export interface OutputTensor {
  name: string;
  datatype: string;
  shape: number[];
  data: Float64Array;
}

export function inferUrl(gantry: GantryProcess, model: CheckModel): string {
  return `${gantry.baseUrl}/v2/models/${model.name}/infer`;
}

/** POSTs the request; the caller decides what the status and body mean. */
export function sendInferRequest(gantry: GantryProcess, model: CheckModel, request: InferRequest): Promise<Response> {
  return fetch(inferUrl(gantry, model), { method: 'POST', headers: request.headers, body: request.body as unknown as BodyInit });
}

function decodeBinary(datatype: string, bytes: Buffer): Float64Array {
  const copy = Uint8Array.from(bytes).buffer;
  switch (datatype) {
    case 'FP32':
      return Float64Array.from(new Float32Array(copy));
    case 'FP64':
      return new Float64Array(copy);
    case 'INT64':
      return Float64Array.from(new BigInt64Array(copy), (value) => Number(value));
    case 'INT32':
      return Float64Array.from(new Int32Array(copy));
    default:
      throw new Error(`no decoder for binary ${datatype}`);
  }
}

export function decodeOutputs(body: Buffer, headerLength: string | null): OutputTensor[] {
  return splitInferResponse(body, headerLength).map(({ name, datatype, shape, jsonData, binaryData }) => {
    if (binaryData !== undefined) return { name, datatype, shape, data: decodeBinary(datatype, binaryData) };
    const flat = (jsonData ?? []).flat(Infinity as 1) as unknown[];
    return { name, datatype, shape, data: Float64Array.from(flat, (value) => Number(value)) };
  });
}

/** One inference whose answer must be a 200; its outputs. */
export async function infer(gantry: GantryProcess, model: CheckModel, request: InferRequest): Promise<OutputTensor[]> {
  const response = await sendInferRequest(gantry, model, request);
  const bytes = Buffer.from(await response.arrayBuffer());
  if (response.status !== 200) throw new Error(`${model.name}: answered ${response.status}: ${bytes.toString('utf8', 0, 500)}`);
  return decodeOutputs(bytes, response.headers.get(inferenceHeaderContentLength));
}
