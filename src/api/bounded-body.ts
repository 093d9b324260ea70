import type { Readable } from 'node:stream';
import { errors } from '../errors.js';
import type { InflightReservation } from '../limits/inflight-bytes.js';

export interface BoundedBodyOptions {
  /** Most bytes the body may have; past it `tooLarge()` is thrown and reading stops. */
  limitBytes: number;
  /** The request's Content-Length when it gave one: already reserved in full, and the buffer is allocated once. */
  contentLength: number | undefined;
  /** Grown chunk by chunk when there is no Content-Length (chunked transfer encoding). */
  reservation: InflightReservation;
  tooLarge: () => Error;
  /** Thrown when the in-flight budget has no room for the next chunk. */
  busy: () => Error;
}

/**
 * Reads a request body into one Buffer without ever holding more than `limitBytes`, or more than the in-flight
 * budget allows. With a Content-Length the body is copied into one buffer of that size as it arrives (no chunk
 * list, no second copy); without one, chunks are counted as they come and joined at the end.
 *
 * On a refusal the stream is left flowing without a reader, so the rest of the body is drained by Node rather
 * than buffered; the caller closes the connection after its answer.
 * @throws (rejects with) `tooLarge()`, `busy()`, or errors.cancelled() when the client goes away mid-body.
 */
export function readBoundedBody(stream: Readable, options: BoundedBodyOptions): Promise<Buffer> {
  const { limitBytes, contentLength, reservation } = options;
  return new Promise<Buffer>((resolve, reject) => {
    const whole = contentLength === undefined ? undefined : Buffer.allocUnsafe(contentLength);
    const chunks: Buffer[] = [];
    let received = 0;
    let settled = false;
    const finish = (error: Error | undefined, body?: Buffer) => {
      if (settled) return;
      settled = true;
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.off('close', onClose);
      chunks.length = 0;
      if (error === undefined) resolve(body!);
      else reject(error);
    };
    const onData = (chunk: Buffer) => {
      if (received + chunk.byteLength > limitBytes) return finish(options.tooLarge());
      if (whole !== undefined) {
        if (received + chunk.byteLength > whole.byteLength) return finish(errors.invalidArgument('The request body is longer than its Content-Length.'));
        whole.set(chunk, received);
      } else {
        if (!reservation.grow(chunk.byteLength)) return finish(options.busy());
        chunks.push(chunk);
      }
      received += chunk.byteLength;
    };
    const onEnd = () => {
      if (whole !== undefined) {
        if (received !== whole.byteLength)
          return finish(errors.invalidArgument(`The request body ended after ${received} of its ${whole.byteLength} bytes (Content-Length).`));
        return finish(undefined, whole);
      }
      finish(undefined, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, received));
    };
    const onError = () => finish(errors.cancelled());
    // 'close' before 'end': the client disconnected mid-body (or the idle timeout cut it).
    const onClose = () => finish(errors.cancelled());
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', onError);
    stream.on('close', onClose);
  });
}
