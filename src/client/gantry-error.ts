/**
 * What every failed client call throws. `status` is the HTTP status of Gantry's answer, or 0 when there was no
 * answer: the call was refused before it was sent (`INVALID_ARGUMENT`), timed out (`DEADLINE_EXCEEDED`), was
 * aborted by the caller's signal (`CANCELLED`) or could not reach the server (`UNAVAILABLE`). `code` is Gantry's
 * error code (src/errors.ts's vocabulary), so callers branch on it instead of on the message.
 */
export class GantryError extends Error {
  /** HTTP status of the answer; 0 when no answer came. */
  readonly status: number;
  /** Gantry's error code (INVALID_ARGUMENT, NOT_FOUND, UNAVAILABLE, ...). */
  readonly code: string;
  /** The request id Gantry answered with: the one its access log line carries. */
  readonly requestId: string | undefined;
  /** Seconds the server asked the caller to wait (Retry-After), on a 429 or 503. */
  readonly retryAfterSeconds: number | undefined;

  constructor(
    message: string,
    options: { status: number; code: string; requestId?: string | undefined; retryAfterSeconds?: number | undefined; cause?: unknown },
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GantryError';
    this.status = options.status;
    this.code = options.code;
    this.requestId = options.requestId;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

/** A call the client refuses before sending anything (bad tensor, bad option). */
export function invalidClientArgument(message: string): GantryError {
  return new GantryError(message, { status: 0, code: 'INVALID_ARGUMENT' });
}

/** Longest server message kept in a GantryError: errors never carry large values around. */
const maxMessageCharacters = 2000;

/** Gantry's error body: `{error, code, requestId}` (docs/protocol.md). */
interface ErrorBody {
  error?: unknown;
  code?: unknown;
  requestId?: unknown;
}

/** HTTP status → the code Gantry uses for it, for answers without a Gantry body (a proxy's 502, say). */
function codeForStatus(status: number): string {
  if (status === 400) return 'INVALID_ARGUMENT';
  if (status === 401) return 'UNAUTHENTICATED';
  if (status === 403) return 'PERMISSION_DENIED';
  if (status === 404) return 'NOT_FOUND';
  if (status === 409) return 'FAILED_PRECONDITION';
  if (status === 413) return 'PAYLOAD_TOO_LARGE';
  if (status === 429) return 'RESOURCE_EXHAUSTED';
  if (status === 501) return 'UNSUPPORTED';
  if (status === 503) return 'UNAVAILABLE';
  if (status === 504) return 'DEADLINE_EXCEEDED';
  return status >= 500 ? 'INTERNAL' : 'UNKNOWN';
}

/**
 * Reads Retry-After: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
 * @returns seconds (never negative), or undefined when the header is absent or unreadable.
 */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (value === null || value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text);
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.ceil((date - now) / 1000));
}

/**
 * The GantryError for a non-2xx answer, from its body text (Gantry's `{error, code, requestId}`, or anything
 * else a proxy may have answered) and headers.
 */
export function errorFromResponse(status: number, headers: Headers, bodyText: string): GantryError {
  let body: ErrorBody | undefined;
  try {
    const parsed: unknown = JSON.parse(bodyText);
    if (typeof parsed === 'object' && parsed !== null) body = parsed as ErrorBody;
  } catch {
    // Not JSON: the text itself (cut) is the message.
  }
  const serverMessage = typeof body?.error === 'string' ? body.error : bodyText.trim() || `HTTP ${status}`;
  const message = serverMessage.length > maxMessageCharacters ? `${serverMessage.slice(0, maxMessageCharacters)}…` : serverMessage;
  const requestId = typeof body?.requestId === 'string' ? body.requestId : (headers.get('x-request-id') ?? undefined);
  return new GantryError(message, {
    status,
    code: typeof body?.code === 'string' ? body.code : codeForStatus(status),
    requestId,
    retryAfterSeconds: parseRetryAfter(headers.get('retry-after')),
  });
}
