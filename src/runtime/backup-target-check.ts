import type { Redis } from 'ioredis';
import { ModelRegistry } from '../registry/model-registry.js';
import type { ModelStore } from '../registry/model-store.js';
import type { StoredModel } from '../registry/registry-records.js';
import { describeControlPlane, type ControlPlaneSnapshot } from './backup-control-plane.js';

/**
 * Whether an import may write into its target (one Redis prefix and its model store). The target may hold nothing
 * the archive does not: an empty deployment (a fresh `gantry start` has only its default tenant and admin key), or
 * what an earlier run of the same import wrote before it stopped, or, for a store shared with the exported
 * deployment, the very records the archive holds (a version deleted there since stays deleted: backup-records.ts). Anything else (another model, another version under a number,
 * a version deleted since the export, another tenant or key) would be overwritten or mixed in: refused, named.
 * @returns the problems found; empty when the import may go on.
 */
export async function findTargetConflicts(
  target: { redis: Redis; prefix: string; store: ModelStore },
  archive: { models: StoredModel[]; controlPlane: ControlPlaneSnapshot },
): Promise<string[]> {
  const problems: string[] = [];
  const archived = new Map(archive.models.map((model) => [model.name, model]));

  for (const model of await target.store.registryRecords(target.prefix).readAll()) {
    const problem = recordConflict(model, archived.get(model.name));
    if (problem !== undefined) problems.push(`the model store at ${target.store.describeLocation()} ${problem}`);
  }

  const registry = new ModelRegistry(target.redis, target.prefix);
  for (const name of await registry.listModelNames()) {
    const versions = archived.get(name)?.versions ?? [];
    for (const version of await registry.listVersions(name)) {
      const expected = versions.find((candidate) => candidate.version === version.version);
      if (expected?.sha256 !== version.sha256) problems.push(`Redis holds model '${name}' v${version.version}, which the archive does not have`);
    }
  }

  const present = await describeControlPlane(target.redis, target.prefix);
  const archivedTenants = new Set(archive.controlPlane.tenants.map((tenant) => tenant.id));
  const archivedKeys = new Set(archive.controlPlane.keys.map((key) => key.id));
  const otherTenants = present.tenants.filter((id) => !archivedTenants.has(id));
  const otherKeys = present.keys.filter((id) => !archivedKeys.has(id));
  if (otherTenants.length > 0) problems.push(`Redis holds tenant(s) the archive does not have: ${otherTenants.slice(0, 10).join(', ')}`);
  if (otherKeys.length > 0) problems.push(`Redis holds API key(s) the archive does not have: ${otherKeys.slice(0, 10).join(', ')}`);
  return problems;
}

/** Why the target's records of one model are not a part of the archive's, or undefined when they are. */
function recordConflict(present: StoredModel, archived: StoredModel | undefined): string | undefined {
  if (archived === undefined) return `records model '${present.name}', which the archive does not have`;
  if (present.highestVersion > archived.highestVersion)
    return `has numbered model '${present.name}' up to v${present.highestVersion}, past the archive's v${archived.highestVersion}`;
  const live = new Map(present.versions.map((version) => [version.version, version.sha256]));
  for (const version of archived.versions) {
    // Numbers above the store's highest are the ones an interrupted import had not written yet.
    if (Number(version.version) > present.highestVersion) continue;
    const sha256 = live.get(version.version);
    // Deleted in the target (since the export, in a shared store; or left out by the export): it stays deleted.
    if (sha256 === undefined) continue;
    if (sha256 !== version.sha256) return `records other bytes for model '${present.name}' v${version.version} than the archive`;
  }
  for (const version of live.keys()) {
    if (!archived.versions.some((candidate) => candidate.version === version))
      return `records model '${present.name}' v${version}, which the archive does not have`;
  }
  return undefined;
}
