import type { BackupTrailer } from './backup-archive.js';
import type { RegistryRecords, StoredModel } from '../registry/registry-records.js';

/**
 * Writes an archive's registry records into the target store, through the same interface uploads write them. A
 * version the export left out (its blob went while it ran: it was being deleted) becomes a tombstone, and each
 * model's highest number ever given gets one too, so numbers are never given again, as after a deletion. Writing
 * the same records again (a retried import) gives the same files; a version the target holds as deleted stays so.
 */
export async function writeImportedRecords(
  records: RegistryRecords,
  models: StoredModel[],
  trailer: BackupTrailer,
): Promise<{ models: number; versions: number }> {
  const leftOut = new Set(trailer.leftOutVersions.map((version) => `${version.name}/${version.version}`));
  // A number the target's records already hold as a tombstone stays deleted: in a shared store it was deleted after
  // the export (the newer knowledge), and after an interrupted import it is one the export left out.
  const present = new Map((await records.readAll()).map((model) => [model.name, model]));
  const deletedInTarget = (name: string, version: string) => {
    const model = present.get(name);
    return model !== undefined && Number(version) <= model.highestVersion && !model.versions.some((live) => live.version === version);
  };
  const goneSamples = new Set(trailer.leftOutSamples);
  let versions = 0;
  for (const model of models) {
    let highestWritten = 0;
    for (const version of model.versions) {
      highestWritten = Math.max(highestWritten, Number(version.version));
      if (leftOut.has(`${model.name}/${version.version}`) || deletedInTarget(model.name, version.version)) {
        await records.markDeleted(model.name, version.version);
        continue;
      }
      // Signatures and samples are written apart from the record, as a load and a warm-up request write them.
      const { signature, warmupSample, ...record } = version;
      await records.writeVersion(record);
      if (signature !== undefined) await records.writeSignature(model.name, version.version, signature);
      if (warmupSample !== undefined && !goneSamples.has(warmupSample)) await records.writeWarmupSample(model.name, version.version, warmupSample);
      versions += 1;
    }
    if (model.highestVersion > highestWritten) await records.markDeleted(model.name, String(model.highestVersion));
    if (model.config !== undefined) await records.writeModelConfig(model.name, model.config);
    if (model.routing !== undefined) await records.writeRouting(model.name, model.routing);
  }
  return { models: models.length, versions };
}
