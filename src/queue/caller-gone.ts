/**
 * How a transport tells the queue that its caller went away: the part of an AbortSignal the queue uses, and no more.
 * gRPC passes an AbortSignal; REST passes the response's own `close` event (api/connection-closed.ts), because an
 * AbortController per request, kept alive for the whole request, cost ~20 µs of the API's CPU per call (issue 18).
 */
export interface CallerGone {
  /** True once the caller has gone: a request not yet queued is then not queued at all. */
  readonly aborted: boolean;
  /** Calls `listener` once, when the caller goes (never, if it stays until its answer is written). */
  addEventListener(type: 'abort', listener: () => void, options: { once: true }): void;
}
