/**
 * When a failed call is tried again, and after how long. Pure functions, so the policy is tested without a
 * server (test/unit/client-retry-policy.test.ts).
 *
 * Gantry answers 429 (a rate limit, a quota, a full queue) and 503 (not ready yet, busy, shutting down, Redis
 * unreachable) before it does the work, with Retry-After: such a call did not run and is safe to send again,
 * whatever its method. A connection that fails before any answer is different: the request may have reached
 * the server and run, so only idempotent calls are sent again (GET, PUT, DELETE, inference — which Gantry
 * requires to be idempotent — and creations that carry an Idempotency-Key).
 */

/** Longest wait honoured from a Retry-After (a quota that resets tomorrow is not waited for). */
export const maxRetryDelayMs = 30_000;

/** The wait before a retry when the server gave no Retry-After (doubled per attempt). */
export const baseRetryDelayMs = 250;

/** Statuses retried after a pause: Gantry sends them before running anything. */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || status === 503;
}

/** Why the last attempt failed. */
export type AttemptFailure = { kind: 'status'; status: number; retryAfterSeconds?: number | undefined } | { kind: 'connection' };

/**
 * Whether attempt `attempt` (0 for the first) may be followed by another.
 * @param retries most retries after the first attempt.
 * @param idempotent the call may be sent twice without harm (decides only connection failures).
 * @param replayable the body can be sent again (a caller's stream cannot).
 */
export function shouldRetry(failure: AttemptFailure, attempt: number, retries: number, idempotent: boolean, replayable: boolean): boolean {
  if (attempt >= retries || !replayable) return false;
  if (failure.kind === 'connection') return idempotent;
  if (!isRetryableStatus(failure.status)) return false;
  // A Retry-After beyond the cap (a quota resetting in an hour) is not worth waiting for: the caller hears it now.
  return failure.retryAfterSeconds === undefined || failure.retryAfterSeconds * 1000 <= maxRetryDelayMs;
}

/**
 * Milliseconds to wait before retry number `attempt + 1`: the server's Retry-After when it gave one, else an
 * exponential backoff from baseRetryDelayMs; capped at maxRetryDelayMs, plus up to 20% jitter (so clients
 * that were refused together do not all come back in the same millisecond).
 * @param random a number in [0, 1) (Math.random by default; tests pass their own).
 */
export function retryDelayMs(failure: AttemptFailure, attempt: number, random: () => number = Math.random): number {
  const advised = failure.kind === 'status' && failure.retryAfterSeconds !== undefined ? failure.retryAfterSeconds * 1000 : undefined;
  const base = Math.min(advised ?? baseRetryDelayMs * 2 ** attempt, maxRetryDelayMs);
  return Math.round(base * (1 + 0.2 * random()));
}
