import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { ErrorCode, GantryError, errors, isRedisUnavailableError } from '../errors.js';

/**
 * Gantry's error codes as gRPC status codes: the one mapping every gRPC method answers through (REST's is
 * `httpStatusFor` in src/errors.ts). The codes already are gRPC's vocabulary; the Gantry-only ones land on the
 * gRPC code a client would retry or report the same way: a too-large payload or output is RESOURCE_EXHAUSTED
 * (what grpc-js itself answers for a message over the size limit), a model that will not load and an unsupported
 * feature are INVALID_ARGUMENT and UNIMPLEMENTED, a full store RESOURCE_EXHAUSTED.
 */
const grpcStatusByCode: Record<ErrorCode, status> = {
  [ErrorCode.InvalidArgument]: status.INVALID_ARGUMENT,
  [ErrorCode.Unauthenticated]: status.UNAUTHENTICATED,
  [ErrorCode.PermissionDenied]: status.PERMISSION_DENIED,
  [ErrorCode.NotFound]: status.NOT_FOUND,
  [ErrorCode.AlreadyExists]: status.ALREADY_EXISTS,
  [ErrorCode.FailedPrecondition]: status.FAILED_PRECONDITION,
  [ErrorCode.InvalidModel]: status.INVALID_ARGUMENT,
  [ErrorCode.PayloadTooLarge]: status.RESOURCE_EXHAUSTED,
  [ErrorCode.OutputTooLarge]: status.RESOURCE_EXHAUSTED,
  [ErrorCode.InsufficientStorage]: status.RESOURCE_EXHAUSTED,
  [ErrorCode.ResourceExhausted]: status.RESOURCE_EXHAUSTED,
  [ErrorCode.Unsupported]: status.UNIMPLEMENTED,
  [ErrorCode.Unavailable]: status.UNAVAILABLE,
  [ErrorCode.DeadlineExceeded]: status.DEADLINE_EXCEEDED,
  [ErrorCode.Cancelled]: status.CANCELLED,
  [ErrorCode.Internal]: status.INTERNAL,
};

/** The gRPC status of a Gantry error code. */
export function grpcStatusFor(code: ErrorCode): status {
  return grpcStatusByCode[code];
}

/** What an unexpected failure tells the caller; the detail goes to the log only (like REST's 500 body). */
export const internalErrorMessage = 'Internal server error; the details are in the server log.';

/**
 * The error a gRPC handler answers with: a GantryError keeps its message (the same words REST sends) and, when it
 * has one, its Retry-After as `retry-after` trailing metadata (seconds); anything else is INTERNAL with a generic
 * message, and `isUnexpected` tells the caller to log it.
 */
export function toServiceError(error: unknown): { serviceError: Partial<ServiceError>; isUnexpected: boolean } {
  // Redis away is "retry shortly" (UNAVAILABLE), as REST's 503, not a bug.
  if (isRedisUnavailableError(error)) error = errors.redisUnreachable();
  if (!(error instanceof GantryError)) {
    return { serviceError: { code: status.INTERNAL, details: internalErrorMessage, metadata: new Metadata() }, isUnexpected: true };
  }
  const metadata = new Metadata();
  if (error.retryAfterSeconds !== undefined) metadata.set('retry-after', String(error.retryAfterSeconds));
  const code = grpcStatusFor(error.code);
  // An INTERNAL GantryError may carry a worker's detail meant for the log; callers get the generic words.
  if (code === status.INTERNAL) return { serviceError: { code, details: internalErrorMessage, metadata }, isUnexpected: true };
  return { serviceError: { code, details: error.message, metadata }, isUnexpected: false };
}

/** The name of a status code for metric labels and logs (`NOT_FOUND`); `OK` for 0. */
export function statusName(code: number): string {
  return status[code] ?? 'UNKNOWN';
}
