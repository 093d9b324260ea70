import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import { ErrorCode } from '../../errors.js';
import type { ApiMetrics } from '../../metrics/api-metrics.js';

export interface BodyTimeoutOptions {
  /** Longest pause between two pieces of a request body, in ms (GANTRY_BODY_IDLE_TIMEOUT_MS). */
  bodyIdleTimeoutMs: number;
  metrics: ApiMetrics;
}

function hasBody(request: FastifyRequest): boolean {
  const length = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

function timeoutResponse(requestId: string, timeoutMs: number): string {
  const body = JSON.stringify({
    error: `The request body paused for more than ${timeoutMs} ms (GANTRY_BODY_IDLE_TIMEOUT_MS); send it without stalling.`,
    code: ErrorCode.DeadlineExceeded,
    requestId,
  });
  return `HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/** A request whose body is still arriving, as the sweep last saw it. */
interface Receiving {
  request: FastifyRequest;
  reply: FastifyReply;
  socket: Socket;
  /** socket.bytesRead at the last sweep that saw it change. */
  bytesRead: number;
  /** performance.now() of that sweep (or of the request's start). */
  activeAt: number;
}

/**
 * Cuts request bodies that stall: while a body is being received, no byte may arrive for more than
 * `bodyIdleTimeoutMs`; then the client gets a 408 and the connection is closed, which releases the body's memory
 * and its descriptor (a temp file of an upload goes with its stream's error). Only the time between the headers
 * and the body's last byte counts, so a long inference waiting for its answer is never cut: that is why this is
 * not a plain socket timeout. It works on the raw request, so inference bodies and streamed uploads are covered
 * alike without their routes knowing.
 *
 * One sweep on a timer compares each receiving socket's byte count with the last sweep's, instead of a timer per
 * request: a socket timer would be created, refreshed on every chunk and reset at the end of every request, a
 * cost on the hot path (measured on the tiny MLP) for an event that almost never fires. A body is therefore cut
 * between one and 1.25 idle periods after its last byte.
 *
 * Headers and whole-request timeouts are Node's own (headersTimeout, requestTimeout; set in app.ts).
 */
async function bodyTimeoutsPlugin(app: FastifyInstance, options: BodyTimeoutOptions): Promise<void> {
  const { bodyIdleTimeoutMs, metrics } = options;
  const receiving = new Map<IncomingMessage, Receiving>();
  // One shared listener, not a closure per request: `this` is the request whose body ended.
  function bodyEnded(this: IncomingMessage): void {
    receiving.delete(this);
  }
  const cut = (entry: Receiving) => {
    const { request, reply, socket } = entry;
    metrics.limitRejections.inc({ limit: 'body_timeout' });
    request.log.info({ code: ErrorCode.DeadlineExceeded, receivedBytes: socket.bytesRead }, 'request body stalled; connection closed');
    // As Node does for its own request timeout: a raw 408 when nothing of a response went out yet, then close.
    if (!reply.raw.headersSent && socket.writable) socket.write(timeoutResponse(request.id, bodyIdleTimeoutMs));
    socket.destroy();
  };
  const sweep = () => {
    const now = performance.now();
    for (const [raw, entry] of receiving) {
      if (raw.complete || entry.socket.destroyed) receiving.delete(raw);
      else if (entry.socket.bytesRead !== entry.bytesRead) {
        entry.bytesRead = entry.socket.bytesRead;
        entry.activeAt = now;
      } else if (now - entry.activeAt > bodyIdleTimeoutMs) {
        receiving.delete(raw);
        cut(entry);
      }
    }
  };
  const timer = setInterval(sweep, Math.max(10, Math.floor(bodyIdleTimeoutMs / 4)));
  timer.unref();
  app.addHook('onClose', (_instance, done) => {
    clearInterval(timer);
    done();
  });

  app.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    const raw = request.raw;
    const socket = raw.socket;
    // inject() (tests) has no real socket to watch.
    if (hasBody(request) && socket instanceof Socket && !raw.complete) {
      receiving.set(raw, { request, reply, socket, bytesRead: socket.bytesRead, activeAt: performance.now() });
      raw.on('end', bodyEnded);
    }
    done();
  });
  // A connection past server.maxConnections is closed by Node at accept; counting it is all that can be done.
  app.server.on('drop', () => metrics.limitRejections.inc({ limit: 'connections' }));
  // Node's headers and whole-request timeouts end as a client error (Fastify answers 408); count them here.
  app.server.on('clientError', (error: NodeJS.ErrnoException) => {
    if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') metrics.limitRejections.inc({ limit: 'request_timeout' });
  });
}

export default fp(bodyTimeoutsPlugin, { name: 'gantry-body-timeouts' });
