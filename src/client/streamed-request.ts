import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';

/**
 * Sends a request whose body is a stream with node:http, piped with backpressure, and answers a fetch Response.
 * fetch (undici) reads a request stream ahead of the socket: measured here, a 400 MB upload held all 400 MB in
 * memory at its peak. Piped, the file is read only as fast as the socket drains, so memory stays at a few chunks
 * whatever the file's size. Only uploads (models.push, batches.submit) come here; every other call uses fetch.
 */
export async function sendStreamed(url: string, method: string, headers: Record<string, string>, body: Readable, signal: AbortSignal): Promise<Response> {
  const target = new URL(url);
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<Response>((resolve, reject) => {
    const outgoing = send(target, { method, headers, signal }, (incoming: IncomingMessage) => {
      // The answer may come before the whole body was sent (a refusal: 413, 400): the rest is not sent. The request
      // is closed once the answer was read (not before: that would cut the answer too).
      body.unpipe(outgoing);
      body.destroy();
      if (!outgoing.writableFinished) incoming.once('close', () => outgoing.destroy());
      const responseHeaders = new Headers();
      for (const [name, value] of Object.entries(incoming.headers)) {
        if (Array.isArray(value)) for (const each of value) responseHeaders.append(name, each);
        else if (value !== undefined) responseHeaders.set(name, value);
      }
      const status = incoming.statusCode ?? 500;
      const empty = status === 204 || status === 304;
      if (empty) incoming.resume();
      resolve(
        new Response(empty ? null : (Readable.toWeb(incoming) as ReadableStream<Uint8Array>), {
          status,
          statusText: incoming.statusMessage ?? '',
          headers: responseHeaders,
        }),
      );
    });
    // Before an answer, a failure of the connection or of the file rejects (once answered, this is a no-op).
    outgoing.once('error', reject);
    body.once('error', (error) => {
      reject(error);
      outgoing.destroy(error);
    });
    // pipe() waits for the socket to drain before reading more, and ends the request after the last chunk.
    body.pipe(outgoing);
  });
}
