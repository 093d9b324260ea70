/** What a key may do (docs/security.md). */
export type Scope = 'models:read' | 'models:write' | 'infer' | 'usage:read' | 'keys:write' | 'metrics:read' | 'admin';

/** A key's own rate limits (its tenant's apply too). */
export interface KeyLimits {
  requestsPerSecond?: number;
  requestsPerMinute?: number;
}

/** A tenant's rates, quotas and caps (README "Limits"); a limit left out is unlimited. */
export interface TenantLimits extends KeyLimits {
  requestsPerDay?: number;
  requestsPerMonth?: number;
  computeSecondsPerDay?: number;
  computeSecondsPerMonth?: number;
  maxModels?: number;
  maxVersions?: number;
  maxStoredBytes?: number;
}

/** An API key as listed (never its secret or hash). */
export interface ApiKey {
  /** The public part of the key (gk_<id>_…): safe to log and to show. */
  id: string;
  tenant: string;
  name: string;
  scopes: Scope[];
  models?: string[];
  createdAt: string;
  expiresAt?: string;
  revokedAt?: string;
  status: 'active' | 'expired' | 'revoked';
  limits: KeyLimits;
}

/** A key just created: `key` is the secret, shown this once. */
export interface CreatedKey extends ApiKey {
  key: string;
}

export interface KeyCreation {
  /** The key's tenant (an admin's choice); default: the caller's own. */
  tenant?: string;
  name: string;
  scopes: Scope[];
  /** Bare model names of the tenant the key may use; omit for all. */
  models?: string[];
  /** ISO 8601 date-time after which the key is refused. */
  expiresAt?: string;
  limits?: KeyLimits;
}

export interface KeyChanges {
  name?: string;
  scopes?: Scope[];
  /** null: no allow-list any more. */
  models?: string[] | null;
  /** null: never expires. */
  expiresAt?: string | null;
  /** Replaces the limits whole ({} removes them). */
  limits?: KeyLimits;
}

export interface Tenant {
  id: string;
  name: string;
  createdAt: string;
  disabled: boolean;
  limits: TenantLimits;
}

export interface TenantCreation {
  /** Lower-case letters, digits and -, at most 32 characters. */
  id: string;
  name?: string;
  limits?: TenantLimits;
}

export interface TenantChanges {
  name?: string;
  /** A disabled tenant's keys are refused (403) until it is enabled again. */
  disabled?: boolean;
  /** Replaces the limits whole ({} removes them all). */
  limits?: TenantLimits;
}

export interface UsageQuery {
  /** ISO 8601 date-time; default the start of today (UTC). */
  from?: string;
  /** ISO 8601 date-time; default now. */
  to?: string;
  groupBy?: 'tenant' | 'key' | 'model';
  granularity?: 'total' | 'hour';
  /** An admin's filter. */
  tenant?: string;
}

export type UsageOutcome = 'success' | 'client_error' | 'timeout' | 'unavailable' | 'error' | 'rate_limited' | 'quota_exceeded';

export interface UsageCounts {
  requests: number;
  rows: number;
  computeSeconds: number;
  computeNanoseconds: number;
  bytesIn: number;
  bytesOut: number;
  outcomes: Record<UsageOutcome, number>;
}

export interface UsageRow extends UsageCounts {
  hour?: string;
  tenant: string;
  key?: string;
  model?: string;
}

export interface UsageReport {
  from: string;
  to: string;
  groupBy: 'tenant' | 'key' | 'model';
  granularity: 'total' | 'hour';
  usage: UsageRow[];
  totals: UsageCounts;
}
