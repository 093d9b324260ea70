import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
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

/**
 * Cuts request bodies that stall: while a body is being received, the socket may be idle (no byte arriving) for
 * at most `bodyIdleTimeoutMs`; then the client gets a 408 and the connection is closed, which releases the body's
 * memory and its descriptor (a temp file of an upload goes with its stream's error). The timer is armed only
 * between the headers and the body's last byte, so a long inference waiting for its answer is never cut: that
 * is why this is not a plain socket timeout. It works on the raw request, so inference bodies and streamed
 * uploads are covered alike without their routes knowing.
 *
 * Headers and whole-request timeouts are Node's own (headersTimeout, requestTimeout; set in app.ts).
 */
async function bodyTimeoutsPlugin(app: FastifyInstance, options: BodyTimeoutOptions): Promise<void> {
  const { bodyIdleTimeoutMs, metrics } = options;
  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    if (!hasBody(request)) return;
    const raw = request.raw;
    const socket = raw.socket;
    // inject() (tests) has no real socket to time.
    if (!(socket instanceof Socket) || typeof raw.setTimeout !== 'function') return;
    const onIdle = () => {
      metrics.limitRejections.inc({ limit: 'body_timeout' });
      request.log.info({ code: ErrorCode.DeadlineExceeded, receivedBytes: socket.bytesRead }, 'request body stalled; connection closed');
      // As Node does for its own request timeout: a raw 408 when nothing of a response went out yet, then close.
      if (!reply.raw.headersSent && socket.writable) socket.write(timeoutResponse(request.id, bodyIdleTimeoutMs));
      socket.destroy();
    };
    const disarm = () => {
      raw.off('timeout', onIdle);
      if (socket.destroyed) return;
      // After the response went out Node's keep-alive timeout owns the socket's timer; restore it, never clear it.
      if (reply.raw.writableFinished) {
        const keepAliveMs = app.server.keepAliveTimeout;
        socket.setTimeout(keepAliveMs > 0 ? keepAliveMs + 1000 : 0);
      } else socket.setTimeout(0);
    };
    // IncomingMessage.setTimeout sets the socket's idle timer and listens on the request (so Node does not
    // destroy the socket by itself); it fires only while the request is incomplete.
    raw.setTimeout(bodyIdleTimeoutMs, onIdle);
    raw.once('end', disarm);
    raw.once('close', () => raw.off('timeout', onIdle));
    // Fully received but not yet read to its end: Node then offers the timeout to the response, and with no
    // listener it would destroy the socket under a request still being answered.
    reply.raw.once('timeout', () => {
      if (raw.complete) disarm();
    });
  });
  // A connection past server.maxConnections is closed by Node at accept; counting it is all that can be done.
  app.server.on('drop', () => metrics.limitRejections.inc({ limit: 'connections' }));
  // Node's headers and whole-request timeouts end as a client error (Fastify answers 408); count them here.
  app.server.on('clientError', (error: NodeJS.ErrnoException) => {
    if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') metrics.limitRejections.inc({ limit: 'request_timeout' });
  });
}

export default fp(bodyTimeoutsPlugin, { name: 'gantry-body-timeouts' });
