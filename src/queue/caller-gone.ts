/**
 * How a transport tells the queue that its caller went away: the part of an AbortSignal the queue uses, and no more.
 * gRPC passes an AbortSignal; REST passes the response's own `close` event (api/connection-closed.ts), because an
 * AbortController per request, kept alive for the whole request, was measurably expensive: without it the API's CPU
 * per request fell from 259 to 198 µs on the tiny MLP at 64 connections (docs/performance.md, History).
 */
export interface CallerGone {
  /** True once the caller has gone: a request not yet queued is then not queued at all. */
  readonly aborted: boolean;
  /** Calls `listener` once, when the caller goes (never, if it stays until its answer is written). */
  addEventListener(type: 'abort', listener: () => void, options: { once: true }): void;
}
