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
  value: Uint8Array,
  ttlMs: number,
  then?: (pipeline: ChainableCommander) => void,
): Promise<void> {
  const bytes = Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  const pipeline = redis.pipeline();
  pipeline.set(key, bytes.subarray(0, pieceBytes), 'PX', Math.max(1, Math.ceil(ttlMs)));
  for (let offset = pieceBytes; offset < bytes.byteLength; offset += pieceBytes) pipeline.append(key, bytes.subarray(offset, offset + pieceBytes));
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
