import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { ErrorCode } from '../../errors.js';
import '../request-failure.js';

/** Longest URL an access line repeats for a request that matched no route (a scanner's URLs can be long). */
const maxLoggedUrlCharacters = 200;

/** Status nginx and others log for a request whose client closed the connection before the answer. */
const clientClosedStatus = 499;

type Level = 'info' | 'warn' | 'error';

/**
 * How loud a line is. What the client caused (a 4xx, its own deadline's 504, leaving early) is an ordinary
 * answer: info. A refusal the operator may need to act on (503 overloaded or no worker, 507 a full store, 501) is
 * a warning. Only a failure of Gantry's own (500) is an error, and its line carries the stack.
 */
function levelOf(status: number, code: ErrorCode | undefined): Level {
  if (status < 500 || status === clientClosedStatus) return 'info';
  if (status === 504 || code === ErrorCode.DeadlineExceeded) return 'info';
  if (code === ErrorCode.Internal || status === 500) return 'error';
  return 'warn';
}

interface AccessLine {
  requestId: string;
  method: string;
  route?: string;
  url?: string;
  model?: string;
  version?: string;
  tenant?: string;
  keyId?: string;
  status: number;
  durationMs: number;
  bytesIn: number;
  bytesOut: number;
  code?: ErrorCode;
  reason?: string;
  /** A fault's type, message and stack (not `err`: pino's serializer of `err` would call every plain object an `Object`). */
  fault?: { type: string; message: string; stack?: string };
}

/** The request's model and version: as resolved by the inference routes (qualified, the version served), else as named in the path. */
function modelOf(request: FastifyRequest): { model?: string; version?: string } {
  const usage = request.usage;
  const params = request.params as { model?: unknown; version?: unknown } | undefined;
  const model = usage?.model ?? (typeof params?.model === 'string' ? params.model : undefined);
  const version = usage?.version ?? (typeof params?.version === 'string' ? params.version : undefined);
  return { ...(model === undefined ? {} : { model }), ...(version === undefined ? {} : { version }) };
}

/** Bytes a header says (Content-Length), 0 when it is missing (a chunked body or answer). */
function headerBytes(value: unknown): number {
  const bytes = Number(value);
  return Number.isFinite(bytes) && bytes >= 0 ? bytes : 0;
}

/** The URL without its query string: a caller may put anything there, and the path says which route it missed. */
function pathOf(url: string): string {
  const query = url.indexOf('?');
  return query < 0 ? url : url.slice(0, query);
}

function lineOf(request: FastifyRequest, status: number, durationMs: number, bytesOut: number): AccessLine {
  const route = request.routeOptions.url;
  const line: AccessLine = {
    requestId: request.id,
    method: request.method,
    ...(route === undefined ? { url: pathOf(request.url).slice(0, maxLoggedUrlCharacters) } : { route }),
    ...modelOf(request),
    status,
    durationMs: Math.round(durationMs * 100) / 100,
    bytesIn: headerBytes(request.headers['content-length']),
    bytesOut,
  };
  const principal = request.principal;
  // Who called, by the key's id (never the key): public routes have no one in particular.
  if (principal !== null && principal !== undefined && principal.keyId !== 'public') {
    line.tenant = principal.tenant;
    line.keyId = principal.keyId;
  }
  const failure = request.failure;
  if (failure !== null && failure !== undefined) {
    line.code = failure.code;
    line.reason = failure.reason;
    if (failure.fault !== undefined) line.fault = failure.fault;
  }
  return line;
}

/**
 * One access line per request (GANTRY_ACCESS_LOG=on): method, route template, model and version, status,
 * duration, request id (the `x-request-id` the client got), bytes in and out, the caller's tenant and key id, and
 * for an error its code and the message the client got. Never a body, a tensor or a key. It replaces the error
 * handler's own line, so a 400 or a 504 leaves exactly one line to match the request id a client reports.
 *
 * The line is written when the answer's connection side closes: after the answer was sent, or when the client
 * left first (Fastify's onResponse never runs then, and its onRequestAbort only while the body is still
 * arriving: Node ends a request whose body was read whole, so a client that hangs up while its inference runs
 * would leave no line). On the hot path: one listener and one object per request, written with one logger made
 * at start-up (no child logger per request; the request id is a field).
 */
async function accessLogPlugin(app: FastifyInstance, options: { enabled: boolean }): Promise<void> {
  if (!options.enabled) return;
  app.decorateRequest('accessLogged', false);
  // One child made here, without the redaction: the line is built only from the fields above (no header, body,
  // tensor or URL with a password), and pino's wildcard redaction paths cost ~15 µs a line, 5x the write itself.
  const log = app.log.child({}, { redact: { paths: [] } });

  const write = (request: FastifyRequest, reply: FastifyReply) => {
    if (request.accessLogged) return;
    request.accessLogged = true;
    const answered = reply.raw.writableFinished;
    // Begun but not finished: a stream (server-sent events) its client closed, or a download cut short. Its status
    // went out; the line keeps it.
    const begun = !answered && reply.raw.headersSent;
    // Not begun: the client left (499), unless Gantry ended it with an error of its own (a body timeout's 408).
    const status = answered || begun || request.failure !== null ? reply.statusCode : clientClosedStatus;
    const line = lineOf(request, status, reply.elapsedTime, answered ? headerBytes(reply.getHeader('content-length')) : 0);
    const message = answered ? 'request answered' : begun ? 'connection closed while the answer was being sent' : 'request ended before its answer was sent';
    log[levelOf(line.status, line.code)](line, message);
  };

  app.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    reply.raw.once('close', () => write(request, reply));
    done();
  });
}

export default fp(accessLogPlugin, { name: 'gantry-access-log' });
