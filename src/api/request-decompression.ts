import type { Readable, Transform } from 'node:stream';
import { createGunzip, createInflate, createInflateRaw } from 'node:zlib';
import { ErrorCode, GantryError, errors } from '../errors.js';
import type { InflightReservation } from '../limits/inflight-bytes.js';

/** A request body's compression, as its Content-Encoding names it (`identity`: not compressed). */
export type RequestCoding = 'identity' | 'gzip' | 'deflate';

const codingsByName: ReadonlyMap<string, RequestCoding> = new Map([
  ['identity', 'identity'],
  ['gzip', 'gzip'],
  // RFC 9110 §8.4.1.3: a recipient should treat x-gzip as gzip.
  ['x-gzip', 'gzip'],
  ['deflate', 'deflate'],
]);

/** An error the error handler answers with 415 (Fastify's own 415 errors carry the same statusCode). */
function unsupportedMediaType(message: string): GantryError {
  return Object.assign(new GantryError(ErrorCode.InvalidArgument, message), { statusCode: 415 });
}

/**
 * The coding of a request body from its Content-Encoding header: none, `identity`, `gzip` (or `x-gzip`) or
 * `deflate`, case-insensitive; `identity` may appear around the one compressing coding (`gzip, identity`).
 * @throws a 415 error naming the supported codings, for any other coding or for two compressing codings.
 */
export function requestCodingOf(header: string | string[] | undefined): RequestCoding {
  if (header === undefined) return 'identity';
  let coding: RequestCoding = 'identity';
  const names = (Array.isArray(header) ? header.join(',') : header).split(',');
  for (const rawName of names) {
    const name = rawName.trim().toLowerCase();
    if (name === '') continue;
    const known = codingsByName.get(name);
    if (known === undefined) {
      throw unsupportedMediaType(
        `Content-Encoding '${name.slice(0, 40)}' is not supported: send the body as it is, or compressed with gzip or deflate (Content-Encoding: gzip | deflate).`,
      );
    }
    if (known === 'identity') continue;
    if (coding !== 'identity') throw unsupportedMediaType('A request body may be compressed once (one of gzip or deflate in Content-Encoding), not twice.');
    coding = known;
  }
  return coding;
}

export interface DecompressedBodyOptions {
  coding: Exclude<RequestCoding, 'identity'>;
  /** Most bytes the body may have, compressed (as sent) and decompressed alike. */
  limitBytes: number;
  /** Grown by each decompressed chunk: the in-flight budget counts what is held, not what was sent. */
  reservation: InflightReservation;
  /** Thrown when the body as sent is longer than `limitBytes`. */
  tooLarge: () => Error;
  /** Thrown when the decompressed body grows past `limitBytes` (a compression bomb, or just a large body). */
  decompressedTooLarge: () => Error;
  /** Thrown when the in-flight budget has no room for the next decompressed chunk. */
  busy: () => Error;
}

/**
 * Whether a deflate body starts with a zlib header (RFC 1950), as HTTP's `deflate` coding means; some
 * clients send the bare deflate stream (RFC 1951) instead, which is read as well.
 */
function startsWithZlibHeader(first: number, second: number): boolean {
  return (first & 0x0f) === 8 && first >> 4 <= 7 && ((first << 8) | second) % 31 === 0;
}

/** Inflates with output chunks of 64 KiB: at most one chunk past the limit is ever held. */
const inflateChunkBytes = 64 * 1024;

/**
 * Reads a compressed request body and decompresses it while it arrives, into one Buffer, never holding more than
 * `limitBytes` of decompressed bytes (plus one inflater chunk): as soon as the output passes the limit the inflater
 * is destroyed, so a small body that inflates to gigabytes costs no more memory than the limit. Input is read
 * with backpressure (the inflater's queue stays small). On a refusal the request stream is left flowing without a
 * reader, so Node drains the rest; the caller closes the connection after its answer.
 * @throws (rejects with) the options' errors, a 400 when the body is not valid gzip/deflate data, or
 *   errors.cancelled() when the client goes away mid-body.
 */
export function readDecompressedBody(stream: Readable, options: DecompressedBodyOptions): Promise<Buffer> {
  const { coding, limitBytes, reservation } = options;
  return new Promise<Buffer>((resolve, reject) => {
    let inflater: Transform | undefined;
    let pending: Buffer | undefined;
    const chunks: Buffer[] = [];
    let compressedBytes = 0;
    let decompressedBytes = 0;
    let ended = false;
    let settled = false;
    const finish = (error: Error | undefined) => {
      if (settled) return;
      settled = true;
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onCancelled);
      stream.off('close', onCancelled);
      if (inflater !== undefined) {
        inflater.removeAllListeners();
        // A late error from the destroyed inflater has nobody to tell.
        inflater.on('error', () => {});
        if (error !== undefined) inflater.destroy();
      }
      if (error !== undefined) {
        chunks.length = 0;
        // Keep the request flowing so its rest is read and dropped, not buffered.
        stream.resume();
        return reject(error);
      }
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, decompressedBytes));
    };
    const startInflater = (head: Buffer) => {
      const zlibOptions = { chunkSize: inflateChunkBytes };
      const started: Transform =
        coding === 'gzip'
          ? createGunzip(zlibOptions)
          : startsWithZlibHeader(head[0]!, head[1] ?? 0)
            ? createInflate(zlibOptions)
            : createInflateRaw(zlibOptions);
      inflater = started;
      started.on('data', (chunk: Buffer) => {
        if (decompressedBytes + chunk.byteLength > limitBytes) return finish(options.decompressedTooLarge());
        if (!reservation.grow(chunk.byteLength)) return finish(options.busy());
        chunks.push(chunk);
        decompressedBytes += chunk.byteLength;
      });
      started.on('drain', () => stream.resume());
      started.on('error', (error: Error) =>
        finish(
          errors.invalidArgument(
            `The request body (Content-Encoding: ${coding}) could not be decompressed (${error.message}): send valid ${coding} data, or the body uncompressed without Content-Encoding.`,
          ),
        ),
      );
      started.on('end', () => finish(undefined));
    };
    const write = (chunk: Buffer) => {
      if (inflater === undefined) {
        // The deflate flavour is told by the first two bytes, which may come in two chunks.
        const head = pending === undefined ? chunk : Buffer.concat([pending, chunk]);
        if (coding === 'deflate' && head.byteLength < 2) {
          pending = head;
          return;
        }
        pending = undefined;
        startInflater(head);
        chunk = head;
      }
      if (!inflater!.write(chunk)) stream.pause();
    };
    const onData = (chunk: Buffer) => {
      compressedBytes += chunk.byteLength;
      if (compressedBytes > limitBytes) return finish(options.tooLarge());
      write(chunk);
    };
    const onEnd = () => {
      // The request has been read whole; its 'close' that follows is no disconnection.
      ended = true;
      if (inflater === undefined) {
        if (pending === undefined)
          return finish(
            errors.invalidArgument(`The request body is empty, yet its Content-Encoding says ${coding}: send ${coding} data, or no Content-Encoding.`),
          );
        startInflater(pending);
        inflater!.write(pending);
      }
      // Settles on the inflater's 'end' (all output read) or 'error' (a truncated or corrupt stream).
      inflater!.end();
    };
    // An error or 'close' before 'end': the client disconnected mid-body (or the idle timeout cut it).
    const onCancelled = () => {
      if (!ended) finish(errors.cancelled());
    };
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', onCancelled);
    stream.on('close', onCancelled);
  });
}
