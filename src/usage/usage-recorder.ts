import type { Counter } from 'prom-client';
import type { Principal } from '../auth/principal.js';
import { ErrorCode } from '../errors.js';
import { TenantMetricLabels } from './tenant-metric-labels.js';
import type { UsageMeter } from './usage-meter.js';
import type { UsageOutcome } from './usage-record.js';

/** What one metered inference call used, as its transport learned it. */
export interface CallUsageRecord {
  principal: Principal;
  /** Qualified model name and version; '' when the call never got to a model. */
  model?: string;
  version?: string;
  rows?: number;
  /** The call's share of the model's compute on the worker, in ns. */
  computeNs?: number;
  outcome: UsageOutcome;
  bytesIn: number;
  bytesOut: number;
  /** Inference requests the call stands for (a batch file's queued lines); 1 when unset. */
  requests?: number;
}

export interface UsageRecorderOptions {
  meter: UsageMeter;
  /** `gantry_tenant_requests_total` and `gantry_tenant_compute_seconds_total`. */
  tenantRequests: Counter<'tenant'>;
  tenantComputeSeconds: Counter<'tenant'>;
  /** GANTRY_MAX_TENANT_METRICS. */
  maxTenantMetrics: number;
  /** Told once when more tenants than GANTRY_MAX_TENANT_METRICS were metered. */
  onTenantBound?: (maxTenants: number) => void;
}

/**
 * Meters inference calls for every transport (README "Usage"): the usage meter (flushed to Redis) and the
 * per-tenant metrics, with the tenant label bounded once for the process. REST's usage-metering plugin and the
 * gRPC server record through this one object, so usage and the per-tenant metrics sum both transports.
 */
export class UsageRecorder {
  private readonly labels: TenantMetricLabels;

  constructor(private readonly options: UsageRecorderOptions) {
    this.labels = new TenantMetricLabels(options.maxTenantMetrics, options.onTenantBound);
  }

  record(call: CallUsageRecord): void {
    const computeNs = call.computeNs ?? 0;
    this.options.meter.record(
      {
        tenant: call.principal.tenant,
        keyId: call.principal.keyId,
        model: call.model ?? '',
        version: call.version ?? '',
        outcome: call.outcome,
        rows: call.rows ?? 0,
        computeNs,
        bytesIn: call.bytesIn,
        bytesOut: call.bytesOut,
      },
      Date.now(),
      call.requests ?? 1,
    );
    const tenant = this.labels.labelFor(call.principal.tenant);
    this.options.tenantRequests.inc({ tenant });
    if (computeNs > 0) this.options.tenantComputeSeconds.inc({ tenant }, computeNs / 1e9);
  }
}

/**
 * The usage outcome of a call that ended with `code` (undefined: it succeeded), in the words REST's statuses map
 * to: a timeout, the server refusing for load (unavailable, resource exhausted), the caller's mistake, or an error.
 */
export function usageOutcomeOf(code: ErrorCode | undefined): UsageOutcome {
  switch (code) {
    case undefined:
      return 'success';
    case ErrorCode.DeadlineExceeded:
      return 'timeout';
    case ErrorCode.Unavailable:
    case ErrorCode.ResourceExhausted:
      return 'unavailable';
    case ErrorCode.Internal:
    case ErrorCode.InsufficientStorage:
    case ErrorCode.Unsupported:
      return 'error';
    default:
      return 'client_error';
  }
}
