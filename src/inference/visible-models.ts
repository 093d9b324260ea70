import { splitQualifiedName } from '../auth/model-names.js';
import { isAdmin, type Principal } from '../auth/principal.js';
import type { ModelRegistry } from '../registry/model-registry.js';

/**
 * The qualified names of the models a caller's lists show (GET /v1/models, the repository index, statistics
 * without a model), sorted: the admin's are every tenant's; anyone else's are its tenant's only, read from that
 * tenant's own set. A key with a model allow-list sees only the listed models of its tenant (an admin key too:
 * the list is what the key was narrowed to).
 */
export async function visibleModelNames(registry: ModelRegistry, principal: Principal): Promise<string[]> {
  const allowed = principal.models;
  if (allowed !== undefined) {
    const names = await registry.listTenantModelNames(principal.tenant);
    return names.filter((qualified) => allowed.has(splitQualifiedName(qualified).name));
  }
  if (isAdmin(principal)) return registry.listModelNames();
  return registry.listTenantModelNames(principal.tenant);
}
