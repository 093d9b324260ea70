import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';

/**
 * A pass-through that hashes the bytes and fails at the end of the stream when they are not `expectedSha256` (or
 * not `expectedBytes` long): a stream piped through it only completes with the right bytes, so a corrupt blob
 * never becomes an archive entry that looks whole (export) or a stored blob (import: the store keeps nothing of a
 * failed put).
 */
export function verifyingStream(expectedSha256: string, expectedBytes: number, what: string): Transform {
  const hash = createHash('sha256');
  let bytes = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      bytes += chunk.length;
      callback(null, chunk);
    },
    flush(callback) {
      const actual = hash.digest('hex');
      if (bytes !== expectedBytes) callback(new Error(`${what} has ${bytes} bytes where ${expectedBytes} were expected`));
      else if (actual !== expectedSha256) callback(new Error(`${what} does not match its sha256 (its bytes hash to ${actual})`));
      else callback();
    },
  });
}
