import { fromWire, type GantryError, type WireError } from '../errors.js';
import type { Tensor } from '../protocol/tensor.js';
import { decodeReply, encodeReply, type InferenceResult } from '../queue/reply-codec.js';

/**
 * One request's answer as asynchronous work keeps it (a job's result key, a batch line's field): the reply
 * codec's framing with a single result, so the worker writes exactly what it would have published and the API
 * reads it back with the same decoder as a synchronous reply.
 */
export function encodeStoredAnswer(result: InferenceResult, bodies: readonly Uint8Array[]): Buffer {
  return encodeReply({ kind: 'infer', results: [result] }, bodies);
}

/** A stored answer read back: the outputs (views into the stored bytes) or the error the request ended with. */
export type StoredAnswer = { ok: true; outputs: Tensor[]; computeNs: number; rows: number } | { ok: false; error: WireError; toError: () => GantryError };

export function decodeStoredAnswer(stored: Buffer): StoredAnswer {
  const { header, body } = decodeReply(stored);
  if (header.kind !== 'infer' || header.results.length !== 1) throw new Error('not a stored answer');
  const result = header.results[0]!;
  if (result.error !== undefined) {
    const error = result.error;
    return { ok: false, error, toError: () => fromWire(error) };
  }
  const outputs: Tensor[] = [];
  let offset = 0;
  for (const layout of result.outputs ?? []) {
    outputs.push({ name: layout.name, datatype: layout.datatype, shape: layout.shape, data: body.subarray(offset, offset + layout.byteLength) });
    offset += layout.byteLength;
  }
  return { ok: true, outputs, computeNs: result.computeNs ?? 0, rows: result.rows ?? 0 };
}
