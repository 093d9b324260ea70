import type { ErrorCode } from '../errors.js';

/**
 * Why a request was answered with an error, kept on the request by the error handler (and the not-found handler)
 * so that the request's one access line can say it (src/api/plugins/access-log.ts) instead of a second line.
 */
export interface RequestFailure {
  code: ErrorCode;
  /** The message the client got (already cut to the handler's maximum). */
  reason: string;
  /** Only for a failure of Gantry's own (500): what went wrong, for the operator; never sent to the client. */
  fault?: { type: string; message: string; stack?: string };
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set when the request was answered with an error; null otherwise. */
    failure: RequestFailure | null;
    /** True once the request's access line was written (at its answer, or when the client left first). */
    accessLogged: boolean;
  }
}
