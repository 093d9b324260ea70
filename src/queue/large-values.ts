import type { ChainableCommander, Redis } from 'ioredis';

/**
 * Large tensors (a job's inputs, a reply's outputs) travel through Redis in keys of their own, one command each
 * way: SET (plus APPEND for further parts) and GET. Measured here on 4 MiB values, one SET takes ~2 ms and one
 * GET ~6 ms through ioredis; splitting the value into 128 KiB SET/APPEND and GETRANGE pieces, as earlier
 * versions did, was slower on both sides (~5 ms and ~6 ms) and allocated one more copy of the value on reads.
 */

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
  // A value given in parts (several input tensors, several outputs) is written part by part, never concatenated
  // here: ioredis already copies each argument once into the command it writes.
  const parts = Array.isArray(value) ? (value as readonly Uint8Array[]) : [value as Uint8Array];
  const pipeline = redis.pipeline();
  const ttl = Math.max(1, Math.ceil(ttlMs));
  if (parts.length === 0) pipeline.set(key, Buffer.alloc(0), 'PX', ttl);
  parts.forEach((part, index) => {
    const bytes = Buffer.isBuffer(part) ? part : Buffer.from(part.buffer, part.byteOffset, part.byteLength);
    if (index === 0) pipeline.set(key, bytes, 'PX', ttl);
    else pipeline.append(key, bytes);
  });
  then?.(pipeline);
  const replies = (await pipeline.exec()) ?? [];
  const failed = replies.find(([error]) => error !== null);
  if (failed !== undefined) throw failed[0];
}

/**
 * Reads a value written by writeLargeValue, deleting it in the same round trip when asked (a reply body is read
 * once; a job's payload must stay until the job is done, for a re-run).
 * @returns undefined when the key is gone (expired) or does not hold exactly `byteLength` bytes.
 */
export async function readLargeValue(redis: Redis, key: string, byteLength: number, options: { deleteAfter?: boolean } = {}): Promise<Buffer | undefined> {
  const pipeline = redis.pipeline().getBuffer(key);
  if (options.deleteAfter === true) pipeline.del(key);
  const replies = (await pipeline.exec()) ?? [];
  const [error, value] = replies[0] ?? [null, null];
  if (error !== null || !Buffer.isBuffer(value) || value.byteLength !== byteLength) return undefined;
  return value;
}
