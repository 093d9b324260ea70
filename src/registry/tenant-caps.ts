import { errors } from '../errors.js';

/**
 * The caps on what one tenant may hold in the registry (the `maxModels`, `maxVersions` and `maxStoredBytes` of its
 * limits, src/limits/tenant-limits.ts). A missing cap is no cap.
 */
export interface TenantCaps {
  /** Models the tenant may have at once. */
  maxModels?: number | undefined;
  /** Versions the tenant may have at once, over all its models. */
  maxVersions?: number | undefined;
  /** Bytes the tenant's versions may take in the model store (each version's size as uploaded). */
  maxStoredBytes?: number | undefined;
}

/** What a tenant holds now (ModelRegistry.tenantHoldings). */
export interface TenantHoldings {
  models: number;
  /** Versions over all the tenant's models. */
  versions: number;
  /** Bytes of those versions, each counted at its own size. */
  storedBytes: number;
  /** Whether the model being uploaded to exists already (a new version of it adds no model). */
  hasModel: boolean;
}

/** The name a refusal is counted under in gantry_limit_rejections_total. */
export type TenantCapLimit = 'tenant_models' | 'tenant_versions' | 'tenant_stored_bytes';

export function hasTenantCaps(caps: TenantCaps): boolean {
  return caps.maxModels !== undefined || caps.maxVersions !== undefined || caps.maxStoredBytes !== undefined;
}

/**
 * Refuses one more version of `bytes` bytes (`bytes` undefined: not known yet, so the bytes cap is checked only
 * against what is stored) when it would take the tenant past a cap: 409 for models and versions, 413 for bytes,
 * each naming the cap and how to get under it. `onRefused` is told which cap refused.
 */
export function checkTenantCaps(
  tenant: string,
  caps: TenantCaps,
  holdings: TenantHoldings,
  bytes: number | undefined,
  onRefused: (limit: TenantCapLimit) => void = () => undefined,
): void {
  if (!holdings.hasModel && caps.maxModels !== undefined && holdings.models + 1 > caps.maxModels) {
    onRefused('tenant_models');
    throw errors.tenantModelCap(tenant, caps.maxModels);
  }
  if (caps.maxVersions !== undefined && holdings.versions + 1 > caps.maxVersions) {
    onRefused('tenant_versions');
    throw errors.tenantVersionCap(tenant, caps.maxVersions);
  }
  if (caps.maxStoredBytes !== undefined && holdings.storedBytes + (bytes ?? 1) > caps.maxStoredBytes) {
    onRefused('tenant_stored_bytes');
    throw errors.tenantStoredBytesCap(tenant, holdings.storedBytes, bytes, caps.maxStoredBytes);
  }
}
