import type { WireError } from '../errors.js';
import type { ModelSignature } from '../protocol/signature.js';
import type { TensorLayout } from './job-contracts.js';

export interface InferenceResult {
  correlationId: string;
  error?: WireError;
  outputs?: TensorLayout[];
  /**
   * This request's share of the model's compute on the worker (input copy, run, output copy), in ns: an
   * execution that batched several requests is split between them by rows. Set for a request that ran; what the
   * usage meter bills as compute seconds.
   */
  computeNs?: number;
  /** Rows (along the batch dimension) the request ran; set for a request that ran. */
  rows?: number;
}

export interface InferenceReplyHeader {
  kind: 'infer';
  results: InferenceResult[];
  /** Set for large replies: the output bytes wait under this key instead of following the header. */
  bodyKey?: string;
  bodyLength?: number;
}

export interface LoadReplyHeader {
  kind: 'load';
  correlationId: string;
  error?: WireError;
  signature?: ModelSignature;
}

export type ReplyHeader = InferenceReplyHeader | LoadReplyHeader;

/**
 * One reply message per job: a 4-byte little-endian header length, the JSON header, then the output bytes of
 * every successful result in order. Tensors never go through JSON on the way back.
 */
export function encodeReply(header: ReplyHeader, bodies: readonly Uint8Array[] = []): Buffer {
  const headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
  let total = 4 + headerBytes.byteLength;
  for (const body of bodies) total += body.byteLength;
  const message = Buffer.allocUnsafe(total);
  message.writeUInt32LE(headerBytes.byteLength, 0);
  headerBytes.copy(message, 4);
  let offset = 4 + headerBytes.byteLength;
  for (const body of bodies) {
    message.set(body, offset);
    offset += body.byteLength;
  }
  return message;
}

export interface DecodedReply {
  header: ReplyHeader;
  /** Output bytes after the header; results' layouts give each tensor's length in order. */
  body: Buffer;
}

export function decodeReply(message: Buffer): DecodedReply {
  const headerLength = message.readUInt32LE(0);
  const header = JSON.parse(message.toString('utf8', 4, 4 + headerLength)) as ReplyHeader;
  return { header, body: message.subarray(4 + headerLength) };
}
