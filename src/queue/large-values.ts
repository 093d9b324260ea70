import type { Redis } from 'ioredis';

/**
 * Large tensors (a job's inputs, a reply's outputs) travel through Redis in keys of their own, one command each
 * way: SET (plus APPEND for further parts) and GET. Measured here on 4 MiB values, one SET takes ~2 ms and one
 * GET ~6 ms through ioredis; splitting the value into 128 KiB SET/APPEND and GETRANGE pieces, as earlier
 * versions did, was slower on both sides (~5 ms and ~6 ms) and allocated one more copy of the value on reads.
 */

/**
 * Tensor bytes up to this size ride inside the message that carries them (a job's JSON as base64, a reply
 * after its header); larger ones get a key of their own. The one place this is decided, for jobs and replies.
 */
export const inlineValueLimitBytes = 64 * 1024;

/** How long a value written for a request lives: until its deadline plus a margin, at least a second. */
export function valueTtlMs(deadline: number): number {
  return Math.max(1000, deadline - Date.now() + 5000);
}

/**
 * Places tensor bytes for a message: when they fit inline (inlineValueLimitBytes) nothing is written and the
 * caller carries `parts` in its message; otherwise they are written under `keyFor()`, expiring with the deadline
 * so a lost message leaves nothing behind, before the message that names the key is sent.
 * @returns undefined when the bytes go inline, else the key they were written under.
 */
export async function placeValue(
  redis: Redis,
  parts: readonly Uint8Array[],
  byteLength: number,
  keyFor: () => string,
  deadline: number,
): Promise<string | undefined> {
  if (byteLength <= inlineValueLimitBytes) return undefined;
  const key = keyFor();
  await writeLargeValue(redis, key, parts, valueTtlMs(deadline));
  return key;
}

/**
 * Writes `value` under `key`, expiring after `ttlMs`. The commands go out one by one on the connection, not as
 * an ioredis pipeline: a pipeline concatenates every command it carries into one more buffer before writing,
 * a second copy of the whole value. Commands sent on one connection still run in order, so a PUBLISH issued
 * after this resolves sees the value complete.
 */
export async function writeLargeValue(redis: Redis, key: string, value: Uint8Array | readonly Uint8Array[], ttlMs: number): Promise<void> {
  // A value given in parts (several input tensors, several outputs) is written part by part, never concatenated
  // here: ioredis already copies each argument once into the command it writes.
  const parts = Array.isArray(value) ? (value as readonly Uint8Array[]) : [value as Uint8Array];
  const ttl = Math.max(1, Math.ceil(ttlMs));
  const writes: Promise<unknown>[] = [];
  if (parts.length === 0) writes.push(redis.set(key, Buffer.alloc(0), 'PX', ttl));
  parts.forEach((part, index) => {
    const bytes = Buffer.isBuffer(part) ? part : Buffer.from(part.buffer, part.byteOffset, part.byteLength);
    writes.push(index === 0 ? redis.set(key, bytes, 'PX', ttl) : redis.append(key, bytes));
  });
  await Promise.all(writes);
}

/**
 * Reads a value written by writeLargeValue, deleting it in the same round trip when asked (a reply body is read
 * once; a job's payload must stay until the job is done, for a re-run).
 * @returns undefined when the key is gone (expired) or does not hold exactly `byteLength` bytes.
 */
export async function readLargeValue(redis: Redis, key: string, byteLength: number, options: { deleteAfter?: boolean } = {}): Promise<Buffer | undefined> {
  // GET is sent first; DEL follows on the same connection. A failed delete loses nothing: the key expires.
  const reading = redis.getBuffer(key);
  const deletion = options.deleteAfter === true ? redis.del(key).catch(() => 0) : undefined;
  const [value] = await Promise.all([reading, deletion]);
  if (value === null || value.byteLength !== byteLength) return undefined;
  return value;
}

/**
 * Reads `byteLength` bytes of a value from `start` (GETRANGE), leaving the key in place: for taking some
 * results out of a reply body without reading the rest.
 * @returns undefined when the key is gone or shorter than the range.
 */
export async function readLargeValueRange(redis: Redis, key: string, start: number, byteLength: number): Promise<Buffer | undefined> {
  if (byteLength === 0) return Buffer.alloc(0);
  const value = await redis.getrangeBuffer(key, start, start + byteLength - 1);
  if (value === null || value.byteLength !== byteLength) return undefined;
  return value;
}
