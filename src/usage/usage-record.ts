/**
 * What the usage meter counts. One metered request is one inference call (REST `POST …/infer`), attributed to the
 * caller's tenant and key and to the model version it ran on; the other routes are rate-limited but not metered.
 */

/** How a metered request ended (the same words as gantry_inference_requests_total{outcome}, plus the limits'). */
export const usageOutcomes = ['success', 'client_error', 'timeout', 'unavailable', 'error', 'rate_limited', 'quota_exceeded'] as const;
export type UsageOutcome = (typeof usageOutcomes)[number];

/** Outcomes of requests refused by a rate limit or quota: metered, but never counted against a quota. */
export function isLimitRefusal(outcome: UsageOutcome): boolean {
  return outcome === 'rate_limited' || outcome === 'quota_exceeded';
}

/** One metered request. */
export interface UsageEvent {
  tenant: string;
  keyId: string;
  /** The qualified model name (`<tenant>~<name>`, bare for the default tenant); '' when the request never got to a model. */
  model: string;
  /** The version that ran; '' when none did. */
  version: string;
  outcome: UsageOutcome;
  /** Rows (along the batch dimension) the request ran; 0 when it did not run. */
  rows: number;
  /** This request's share of the model's compute on the worker, in ns (an execution batching several requests is split by rows). */
  computeNs: number;
  bytesIn: number;
  bytesOut: number;
}

/** The counters summed per (tenant, key, model, version, outcome, hour). Compute is kept in ns so sums stay exact integers. */
export const usageMeasures = ['requests', 'rows', 'compute_ns', 'bytes_in', 'bytes_out'] as const;
export type UsageMeasure = (typeof usageMeasures)[number];
export type UsageCounts = Record<UsageMeasure, number>;

export function emptyCounts(): UsageCounts {
  return { requests: 0, rows: 0, compute_ns: 0, bytes_in: 0, bytes_out: 0 };
}

/** The fields of one hourly hash: `key|model|version|outcome|measure` (none of these contains '|'). */
export function usageField(keyId: string, model: string, version: string, outcome: string, measure: UsageMeasure): string {
  return `${keyId}|${model}|${version}|${outcome}|${measure}`;
}

export function parseUsageField(field: string): { keyId: string; model: string; version: string; outcome: string; measure: UsageMeasure } | undefined {
  const parts = field.split('|');
  if (parts.length !== 5) return undefined;
  const [keyId, model, version, outcome, measure] = parts as [string, string, string, string, string];
  if (!(usageMeasures as readonly string[]).includes(measure)) return undefined;
  return { keyId, model, version, outcome, measure: measure as UsageMeasure };
}

/** UTC hour of a time, as the hourly keys name it: `2025-01-31T13`. */
export function hourOf(timeMs: number): string {
  return new Date(timeMs).toISOString().slice(0, 13);
}

/** UTC day `2025-01-31` and month `2025-01` of a time (the quota periods). */
export function dayOf(timeMs: number): string {
  return new Date(timeMs).toISOString().slice(0, 10);
}

export function monthOf(timeMs: number): string {
  return new Date(timeMs).toISOString().slice(0, 7);
}

/** When the UTC day and month containing `timeMs` end (when day and month quotas reset). */
export function nextDayStart(timeMs: number): Date {
  const date = new Date(timeMs);
  return new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate() + 1));
}

export function nextMonthStart(timeMs: number): Date {
  const date = new Date(timeMs);
  return new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 1));
}
