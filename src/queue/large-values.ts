import type { ChainableCommander, Redis } from 'ioredis';

/**
 * Moving multi-megabyte tensors through Redis in one command is slow on the client side: ioredis parses one
 * 4 MiB bulk reply in ~40 ms here, while 128 KiB pieces in one pipeline take ~14 ms (Redis itself needs ~1 ms).
 * So large values are written with SET + APPEND and read with GETRANGE, in pieces, one round trip each way.
 */
const pieceBytes = 128 * 1024;

/**
 * Writes `value` under `key`, expiring after `ttlMs`, in one pipelined round trip; `then` adds commands to the
 * same pipeline (a PUBLISH announcing the value, say), so they run once the value is complete.
 */
export async function writeLargeValue(
  redis: Redis,
  key: string,
  value: Uint8Array | readonly Uint8Array[],
  ttlMs: number,
  then?: (pipeline: ChainableCommander) => void,
): Promise<void> {
  // A value given in parts (a job's inputs, a reply's outputs) is written part by part, never concatenated:
  // a fresh multi-megabyte buffer costs more in page faults than the copy itself.
  const parts = Array.isArray(value) ? (value as readonly Uint8Array[]) : [value as Uint8Array];
  const pipeline = redis.pipeline();
  let first = true;
  for (const part of parts) {
    const bytes = Buffer.isBuffer(part) ? part : Buffer.from(part.buffer, part.byteOffset, part.byteLength);
    for (let offset = 0; offset < bytes.byteLength || (first && offset === 0); offset += pieceBytes) {
      const piece = bytes.subarray(offset, offset + pieceBytes);
      if (first) pipeline.set(key, piece, 'PX', Math.max(1, Math.ceil(ttlMs)));
      else pipeline.append(key, piece);
      first = false;
    }
  }
  then?.(pipeline);
  const replies = (await pipeline.exec()) ?? [];
  const failed = replies.find(([error]) => error !== null);
  if (failed !== undefined) throw failed[0];
}

/**
 * Reads a value of known length written by writeLargeValue into one buffer, deleting it in the same round trip
 * when asked (a reply body is read once; a job's payload must stay until the job is done, for a re-run).
 * @returns undefined when the key is gone (expired) or shorter than expected.
 */
export async function readLargeValue(redis: Redis, key: string, byteLength: number, options: { deleteAfter?: boolean } = {}): Promise<Buffer | undefined> {
  const pipeline = redis.pipeline();
  for (let offset = 0; offset < byteLength; offset += pieceBytes) pipeline.getrangeBuffer(key, offset, Math.min(offset + pieceBytes, byteLength) - 1);
  if (options.deleteAfter === true) pipeline.del(key);
  const replies = (await pipeline.exec()) ?? [];
  if (options.deleteAfter === true) replies.pop();
  const value = Buffer.allocUnsafe(byteLength);
  let offset = 0;
  for (const [error, piece] of replies) {
    if (error !== null || !Buffer.isBuffer(piece)) return undefined;
    piece.copy(value, offset);
    offset += piece.byteLength;
  }
  return offset === byteLength ? value : undefined;
}
