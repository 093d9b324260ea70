import { open, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { invalidClientArgument } from './gantry-error.js';
import type { RequestBody } from './http-transport.js';

/** What models.push() uploads: a file path (streamed), bytes, or a stream (sent once: not retried). */
export type UploadSource = string | Uint8Array | ReadableStream<Uint8Array>;

/** Bytes read from a file per chunk: big enough for few system calls, small enough for smooth progress. */
const chunkBytes = 256 * 1024;

/**
 * Streams parts in order, counting the file's bytes as they are read. The stream is piped to the socket with
 * backpressure (streamed-request.ts), so a chunk is read only when the previous ones were sent: progress
 * follows the socket, and memory holds a few chunks whatever the file's size.
 */
function countedStream(parts: ReadonlyArray<Uint8Array | (() => AsyncIterable<Uint8Array>)>, onFileBytes: (bytes: number) => void): Readable {
  return Readable.from(
    (async function* () {
      for (const part of parts) {
        if (part instanceof Uint8Array) {
          yield part;
          continue;
        }
        for await (const chunk of part()) {
          yield chunk;
          onFileBytes(chunk.byteLength);
        }
      }
    })(),
    { objectMode: false, highWaterMark: 1 },
  );
}

/** A file read in chunks, never whole: a 1 GB model costs one chunk of memory. */
async function* fileChunks(path: string): AsyncIterable<Uint8Array> {
  const handle = await open(path, 'r');
  try {
    for (;;) {
      const buffer = Buffer.allocUnsafe(chunkBytes);
      const { bytesRead } = await handle.read(buffer, 0, chunkBytes, null);
      if (bytesRead === 0) return;
      yield buffer.subarray(0, bytesRead);
    }
  } finally {
    await handle.close();
  }
}

async function* streamChunks(stream: ReadableStream<Uint8Array>): AsyncIterable<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

/** The model's bytes as a chunk source and their count, when known. */
async function sourceOf(source: UploadSource): Promise<{ chunks: () => AsyncIterable<Uint8Array>; totalBytes?: number; replayable: boolean }> {
  if (typeof source === 'string') {
    let size: number;
    try {
      const info = await stat(source);
      if (!info.isFile()) throw invalidClientArgument(`'${source.slice(0, 200)}' is not a file.`);
      size = info.size;
    } catch (error) {
      if (error instanceof Error && error.name === 'GantryError') throw error;
      throw invalidClientArgument(`Cannot read the model file '${source.slice(0, 200)}': ${(error as NodeJS.ErrnoException).code ?? String(error)}.`);
    }
    return { chunks: () => fileChunks(source), totalBytes: size, replayable: true };
  }
  if (source instanceof Uint8Array) {
    return {
      chunks: async function* () {
        for (let offset = 0; offset < source.byteLength; offset += chunkBytes) yield source.subarray(offset, offset + chunkBytes);
      },
      totalBytes: source.byteLength,
      replayable: true,
    };
  }
  if (source instanceof ReadableStream) return { chunks: () => streamChunks(source), replayable: false };
  throw invalidClientArgument('models.push() takes a file path, a Uint8Array or a ReadableStream of the ONNX file.');
}

/**
 * The body of an upload to POST /v1/models/{m}/versions: the raw file (application/octet-stream) or, with a
 * warm-up sample, multipart (the `warmup` field first, so the server checks it before storing a byte of the
 * file; then the field `file`). The length is sent when known, so the server can refuse an upload that cannot
 * fit before it is sent.
 * @param onProgress called with the file's bytes sent so far (and their total, when known).
 */
export async function uploadBody(
  source: UploadSource,
  warmup: object | undefined,
  onProgress: ((sentBytes: number, totalBytes?: number) => void) | undefined,
): Promise<RequestBody> {
  const { chunks, totalBytes, replayable } = await sourceOf(source);
  const make = () => {
    let sent = 0;
    const count = (bytes: number) => {
      sent += bytes;
      onProgress?.(sent, totalBytes);
    };
    if (warmup === undefined) {
      const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
      if (totalBytes !== undefined) headers['content-length'] = String(totalBytes);
      return { body: countedStream([chunks], count), headers };
    }
    const boundary = `gantry-${randomBytes(12).toString('hex')}`;
    const head = Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="warmup"\r\nContent-Type: application/json\r\n\r\n${JSON.stringify(warmup)}\r\n` +
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="model.onnx"\r\nContent-Type: application/octet-stream\r\n\r\n`,
      'utf8',
    );
    const tail = Buffer.from(`\r\n--${boundary}--\r\n`, 'utf8');
    const headers: Record<string, string> = { 'content-type': `multipart/form-data; boundary=${boundary}` };
    if (totalBytes !== undefined) headers['content-length'] = String(head.byteLength + totalBytes + tail.byteLength);
    return { body: countedStream([head, chunks, tail], count), headers };
  };
  return { make, replayable };
}
