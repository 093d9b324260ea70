import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { ErrorCode, GantryError, errors, httpStatusFor, isRedisUnavailableError } from '../../errors.js';
import type { RequestFailure } from '../request-failure.js';

/** The Open Inference Protocol's error body, plus our machine-readable code and the request id. */
export interface ErrorBody {
  error: string;
  code: ErrorCode;
  requestId: string;
}

/**
 * Longest message the handler sends or logs, in characters. Messages are meant to be short; this is the backstop
 * for one that echoes a caller's value (a 50 MB parameter must not come back as a 50 MB answer, or fill the log).
 */
export const maxErrorMessageCharacters = 1000;

function capped(message: string): string {
  return message.length > maxErrorMessageCharacters
    ? `${message.slice(0, maxErrorMessageCharacters)}… (${message.length - maxErrorMessageCharacters} more characters cut)`
    : message;
}

function validationMessage(error: FastifyError): string {
  if (hasZodFastifySchemaValidationErrors(error)) {
    const issues = error.validation.map((issue) => {
      const where = issue.instancePath.replace(/^\//, '').replaceAll('/', '.') || 'body';
      return `${where}: ${issue.message}`;
    });
    return `Invalid request (${error.validationContext ?? 'body'}): ${issues.join('; ')}`;
  }
  return `Invalid request: ${error.message}`;
}

/** Body types routes parse, in the order a 415 answer lists them. */
const namedContentTypes = ['application/json', 'application/octet-stream', 'multipart/form-data', 'application/x-ndjson', 'application/jsonl'];

/**
 * What a 415 says: the Content-Type sent (or that none was) and those the route takes, read from the parsers of
 * the route's own context (`server`), so each route's answer stays true as routes change.
 */
function unsupportedContentTypeMessage(request: FastifyRequest, server: FastifyInstance): string {
  const sent = request.headers['content-type'];
  const accepted = namedContentTypes.filter((type) => server.hasContentTypeParser(type));
  const route = `${request.method} ${request.routeOptions.url ?? request.url.split('?')[0]}`;
  const takes = accepted.length === 0 ? 'takes no request body' : `takes ${accepted.join(' or ')}`;
  const what = sent === undefined || sent === '' ? 'A request body without a Content-Type' : `Content-Type '${sent.slice(0, 100)}'`;
  return `${what} is not supported here: ${route} ${takes}.`;
}

export interface ErrorHandlerOptions {
  /**
   * The access log is on (GANTRY_ACCESS_LOG): the request's access line carries the failure, so the handler writes
   * no line of its own, and a request leaves one line whatever its outcome.
   */
  accessLog: boolean;
}

/**
 * The one place errors become HTTP responses. 4xx bodies say what was wrong; 5xx bodies stay generic and the
 * detail goes to the log.
 */
async function errorHandlerPlugin(app: FastifyInstance, options: ErrorHandlerOptions): Promise<void> {
  app.decorateRequest('failure', null);

  /** Keeps the failure for the access line; logs it here only when no access line will carry it. */
  const record = (request: FastifyRequest, failure: RequestFailure) => {
    request.failure = failure;
    // The access line carries it; but one of a client that left first is already written, and a fault must
    // still reach the log (a refusal nobody received needs no second line).
    if (options.accessLog && (request.accessLogged !== true || failure.fault === undefined)) return;
    // Only a failure of Gantry's own is logged as one, with its stack. A refusal (503 load, 504 a caller's own
    // timeout, 507 a full store) is an answer, logged like a 4xx, so an attack does not flood the log with stacks.
    if (failure.fault !== undefined) request.log.error({ fault: failure.fault }, 'request failed');
    else request.log.info({ code: failure.code, reason: failure.reason }, 'request rejected');
  };

  app.setErrorHandler((error: FastifyError | GantryError, request, reply) => {
    let code: ErrorCode;
    let message: string;
    let retryAfterSeconds: number | undefined;
    if (error instanceof GantryError) {
      code = error.code;
      message = error.message;
      retryAfterSeconds = error.retryAfterSeconds;
    } else if (isRedisUnavailableError(error)) {
      const unreachable = errors.redisUnreachable();
      code = unreachable.code;
      message = unreachable.message;
      retryAfterSeconds = unreachable.retryAfterSeconds;
    } else if ((error as FastifyError).validation !== undefined) {
      code = ErrorCode.InvalidArgument;
      message = validationMessage(error as FastifyError);
    } else if ((error as FastifyError).statusCode === 413 || (error as FastifyError).code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      code = ErrorCode.PayloadTooLarge;
      message = `The request body is larger than the limit of ${app.initialConfig.bodyLimit} bytes (GANTRY_MAX_REQUEST_BYTES).`;
    } else if ((error as FastifyError).code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      code = ErrorCode.InvalidArgument;
      message = unsupportedContentTypeMessage(request, reply.server);
    } else if (typeof (error as FastifyError).statusCode === 'number' && (error as FastifyError).statusCode! < 500) {
      code = ErrorCode.InvalidArgument;
      message = error.message;
    } else {
      code = ErrorCode.Internal;
      message = 'Internal error.';
    }
    const status = (error as FastifyError).statusCode === 415 ? 415 : httpStatusFor(code);
    message = capped(message);
    record(
      request,
      code === ErrorCode.Internal
        ? { code, reason: message, fault: { type: error.name, message: capped(error.message), stack: error.stack?.slice(0, 4000) } }
        : { code, reason: message },
    );
    if (retryAfterSeconds !== undefined) void reply.header('retry-after', String(retryAfterSeconds));
    const body: ErrorBody = { error: message, code, requestId: request.id };
    return reply.status(status).send(body);
  });

  app.setNotFoundHandler((request, reply) => {
    const body: ErrorBody = { error: capped(`No route ${request.method} ${request.url.split('?')[0]}.`), code: ErrorCode.NotFound, requestId: request.id };
    // Kept for the access line only: a scan of unknown paths is not worth a line of its own.
    request.failure = { code: body.code, reason: body.error };
    return reply.status(404).send(body);
  });
}

export default fp(errorHandlerPlugin, { name: 'gantry-error-handler' });
