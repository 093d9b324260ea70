/** The label value of tenants past the bound: `_` cannot start a tenant id, so it never collides with one. */
export const otherTenantsLabel = '_other';

/**
 * Keeps the per-tenant metrics' `tenant` label bounded: the first `maxTenants` tenants this process meters get
 * their own value; any later one is counted under `_other` (and reported once through `onBoundReached`), so
 * sums over the label still equal the totals. Which tenants get their own value can differ between processes
 * that saw tenants in a different order; the usage report (GET /v1/usage) has every tenant exactly.
 */
export class TenantMetricLabels {
  private readonly labelled = new Set<string>();
  private warned = false;

  constructor(
    private readonly maxTenants: number,
    private readonly onBoundReached: (maxTenants: number) => void = () => undefined,
  ) {}

  labelFor(tenant: string): string {
    if (this.labelled.has(tenant)) return tenant;
    if (this.labelled.size < this.maxTenants) {
      this.labelled.add(tenant);
      return tenant;
    }
    if (!this.warned) {
      this.warned = true;
      this.onBoundReached(this.maxTenants);
    }
    return otherTenantsLabel;
  }
}
