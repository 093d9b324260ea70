/**
 * A JSON parse thread (see json-parse-pool.ts): checks a body's parse cost, parses it and decodes its tensors,
 * so that the API's event loop only ever sees the small skeleton and the raw bytes. Runs one body at a time,
 * inside the heap limit the pool gave it: a body that needs more kills only this thread.
 */
import { parentPort } from 'node:worker_threads';
import { ErrorCode, GantryError } from '../errors.js';
import { decodeJsonBody } from '../protocol/decoded-json-body.js';
import { isJsonTooCostly } from '../protocol/json-cost.js';
import type { JsonParseReply, JsonParseRequest } from './json-parse-messages.js';

/** A view's own buffer when the view covers all of it (then it can be transferred), else a copy of the view. */
function transferable(view: Uint8Array): Uint8Array {
  if (view.byteOffset === 0 && view.byteLength === view.buffer.byteLength && view.buffer instanceof ArrayBuffer) return view;
  // A view into a shared buffer (Node's Buffer pool for small allocations) cannot be transferred.
  return new Uint8Array(view);
}

function handle(request: JsonParseRequest): { reply: JsonParseReply; transfer: ArrayBuffer[] } {
  const body = Buffer.from(request.body, request.byteOffset, request.byteLength);
  try {
    const decoded = decodeJsonBody(body, { headerLength: request.headerLength, maxJsonBytes: request.maxJsonBytes, bounds: request.bounds });
    const transfer: ArrayBuffer[] = [];
    const inputs = decoded.inputs.map((input) => {
      if (input?.bytes === undefined) return input;
      const bytes = transferable(input.bytes);
      transfer.push(bytes.buffer as ArrayBuffer);
      return { bytes };
    });
    const binaryLength = body.byteLength - decoded.binaryOffset;
    let binary: { buffer: ArrayBuffer; byteOffset: number; byteLength: number } | undefined;
    if (binaryLength > 0) {
      binary = { buffer: request.body, byteOffset: request.byteOffset + decoded.binaryOffset, byteLength: binaryLength };
      transfer.push(request.body);
    }
    return { reply: { id: request.id, ok: true, header: decoded.header, inputs, binary }, transfer };
  } catch (error) {
    const wire =
      error instanceof GantryError
        ? { code: error.code, message: error.message }
        : { code: ErrorCode.Internal, message: 'Internal error while parsing a JSON body.' };
    return { reply: { id: request.id, ok: false, error: wire, limit: isJsonTooCostly(error) ? 'json_cost' : undefined }, transfer: [] };
  }
}

parentPort?.on('message', (request: JsonParseRequest) => {
  const { reply, transfer } = handle(request);
  parentPort!.postMessage(reply, transfer);
});
