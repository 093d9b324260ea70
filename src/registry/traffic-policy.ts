/**
 * A model's traffic policy (`PUT /v1/models/{m}/traffic`): how requests that name no version are spread over
 * versions, and which version shadows them. The types are shared by the store and route (traffic splits) and the
 * data plane (shadow traffic); the store lives beside them in src/registry/.
 */

/** One version's share of the requests that name no version. */
export interface TrafficSplit {
  version: string;
  /** A positive integer; shares are weight / sum of weights. */
  weight: number;
}

/** What keeps one caller on one version across requests: a request header's value, the API key, or nothing. */
export type StickyBy = { kind: 'header'; header: string } | { kind: 'key' } | null;

/** A copy of a share of the primary requests also runs on another version; its answer is compared, then discarded. */
export interface ShadowPolicy {
  version: string;
  /** 0–100: the share of primary requests copied to the shadow. */
  percent: number;
}

export interface TrafficPolicy {
  /** Absent or empty: no split (the `production` alias, else the newest READY version, serves). */
  splits?: TrafficSplit[];
  stickyBy?: StickyBy;
  shadow?: ShadowPolicy;
}
