import { splitBinaryBody } from './binary-extension.js';
import { isDatatype } from './datatypes.js';
import { checkJsonCost, type JsonCostBounds } from './json-cost.js';
import { decodeErrorToWire, decodeJsonData, type WireDecodeError } from './json-tensor-codec.js';

/**
 * What replaces an input's JSON `data` once it was decoded into bytes elsewhere: any value that is not
 * null or undefined, so the binary extension's checks ('data' and 'binary_data_size' both given) see it as data.
 */
export const decodedDataMarker = '(decoded off the event loop)';

/** One input's JSON `data`, decoded as decodeJsonData would have decoded it, or the error it would have thrown. */
export type DecodedInputData = { bytes: Uint8Array; error?: undefined } | { bytes?: undefined; error: WireDecodeError };

export interface DecodedJsonBody {
  /** The parsed JSON (the body, or a binary body's JSON header) with each decoded input's `data` replaced. */
  header: unknown;
  /**
   * By input index: the decoded data of each input whose name, datatype and shape let it be decoded; undefined
   * for the others (the route refuses those before it decodes anything: schema, unknown datatype).
   */
  inputs: Array<DecodedInputData | undefined>;
  /** Where the binary part starts in the body (its length when there is none). */
  binaryOffset: number;
}

export interface DecodeJsonBodyOptions {
  /** The request's Inference-Header-Content-Length, when it is a binary-extension body. */
  headerLength: string | undefined;
  /** GANTRY_MAX_JSON_REQUEST_BYTES (bounded by the request limit). */
  maxJsonBytes: number;
  bounds: JsonCostBounds;
}

const decimalDigits = /^\d+$/;

/**
 * How many bytes of a body are JSON: all of them, or what a binary body's Inference-Header-Content-Length says.
 * @returns undefined when that header is not a positive byte count within the body and the JSON limit; then
 * splitBinaryBody, on the event loop, answers it with its own error (cheap: nothing is parsed).
 */
export function jsonPartLength(bodyLength: number, headerLength: string | undefined, maxJsonBytes: number): number | undefined {
  if (headerLength === undefined) return bodyLength;
  const text = headerLength.trim();
  const length = Number(text);
  if (!decimalDigits.test(text) || !Number.isSafeInteger(length) || length === 0 || length > bodyLength || length > maxJsonBytes) return undefined;
  return length;
}

/** How an error message names the JSON part of a body. */
export function describeJsonPart(headerLength: string | undefined, jsonLength: number): string {
  return headerLength === undefined ? 'The request body' : `The JSON header (first ${jsonLength} bytes of the body)`;
}

function isShape(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((dimension) => typeof dimension === 'number');
}

/**
 * Checks the JSON part of a body against the cost bounds, parses it, and decodes every input's `data` into raw
 * tensor bytes with its declared datatype and shape, so that only a small skeleton and the bytes are left: the
 * work a JSON parse thread does so the API's event loop never holds a large parsed body. Decode errors are not
 * thrown: they are returned per input, for the route to throw where it decodes that input (after its own checks
 * of names and datatypes, so which error a bad request gets is the same as on the main thread).
 * @throws GantryError(INVALID_ARGUMENT) when the JSON is too costly to parse or is not valid JSON, and the
 * binary extension's errors about the header length.
 */
export function decodeJsonBody(body: Buffer, options: DecodeJsonBodyOptions): DecodedJsonBody {
  const { headerLength } = options;
  // An invalid header length is splitBinaryBody's to refuse (below), before anything is parsed.
  const jsonLength = jsonPartLength(body.byteLength, headerLength, options.maxJsonBytes);
  if (jsonLength !== undefined) checkJsonCost(body.subarray(0, jsonLength), options.bounds, describeJsonPart(headerLength, jsonLength));
  const { header, binary } = splitBinaryBody(body, headerLength, options.maxJsonBytes);
  const binaryOffset = body.byteLength - binary.byteLength;
  const inputs: Array<DecodedInputData | undefined> = [];
  const list = (header as { inputs?: unknown } | null)?.inputs;
  if (typeof header === 'object' && header !== null && Array.isArray(list)) {
    for (let index = 0; index < list.length; index++) {
      const input = list[index] as { name?: unknown; datatype?: unknown; shape?: unknown; data?: unknown } | null;
      if (typeof input !== 'object' || input === null || typeof input.name !== 'string' || typeof input.datatype !== 'string') continue;
      if (!isDatatype(input.datatype) || !isShape(input.shape)) continue;
      // Decoded whether or not it has data, as the route would (data absent is an error there unless the input is
      // binary, which the route takes first).
      try {
        inputs[index] = { bytes: decodeJsonData(input.name, input.datatype, input.shape, input.data) };
      } catch (error) {
        inputs[index] = { error: decodeErrorToWire(error) };
      }
      if (input.data !== undefined && input.data !== null) input.data = decodedDataMarker;
    }
  }
  return { header, inputs, binaryOffset };
}
