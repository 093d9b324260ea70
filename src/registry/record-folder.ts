import { isValidQualifiedModelName } from '../auth/model-names.js';
import type { ModelSignature } from '../protocol/signature.js';
import type { ModelRouting, StoredModel, VersionRecord } from './registry-records.js';

/**
 * The layout and format of registry records, which both stores keep the same way (file-registry-records.ts in a
 * folder, s3-registry-records.ts under a key prefix), so a data directory copied into a bucket reads back the same:
 * `models/<folder name>/` holds `<version>.json` (a record or a tombstone), `<version>.signature.json`,
 * `<version>.warmup.json`, `config.json` and `routing.json`.
 */

export const versionFilePattern = /^([1-9][0-9]{0,15})\.json$/;
export const recordSchemaVersion = 1;

export interface Tombstone {
  schemaVersion: number;
  name: string;
  version: string;
  deletedAt: string;
}

export type VersionFile = (VersionRecord & { schemaVersion: number }) | Tombstone;

export function isTombstone(file: VersionFile): file is Tombstone {
  return 'deletedAt' in file;
}

export function tombstoneOf(name: string, version: string): Tombstone {
  return { schemaVersion: recordSchemaVersion, name, version, deletedAt: new Date().toISOString() };
}

/**
 * A model's qualified name as a folder name. Names are letters, digits, '_', '.' and '-' (queue/names.ts), and
 * another tenant's carry its id and '~' (auth/model-names.ts), all safe in a file name or a key; on a
 * case-insensitive filesystem "Mlp" and "mlp" would share a folder, so each capital becomes '^' plus its lower
 * case ('^' never appears in a name, so two names never map to one folder).
 */
export function folderNameOf(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `^${letter.toLowerCase()}`);
}

/** One model's folder of records as a store reads it: the file names it holds, and a file's text. */
export interface ModelFolderReader {
  names: readonly string[];
  /** The file's text; undefined when it is absent (or went since it was listed). */
  read(file: string): Promise<string | undefined>;
}

/** The version files (records and tombstones) of one model folder; one that does not parse is skipped, not fatal. */
export async function readVersionFiles(folder: ModelFolderReader): Promise<VersionFile[]> {
  const texts = await Promise.all(folder.names.filter((name) => versionFilePattern.test(name)).map((name) => folder.read(name)));
  const files: VersionFile[] = [];
  for (const text of texts) {
    if (text === undefined) continue;
    try {
      files.push(JSON.parse(text) as VersionFile);
    } catch {
      // Records are written whole (a rename, a PutObject): one that does not parse was put there by hand.
    }
  }
  return files;
}

/** A version's warm-up sample record, or undefined (none, or unreadable: the sample then simply is not named). */
export async function readWarmupSampleRecord(folder: ModelFolderReader, version: string): Promise<string | undefined> {
  const parsed = parseOrUndefined(await folder.read(`${version}.warmup.json`)) as { sample?: unknown } | undefined;
  return typeof parsed?.sample === 'string' ? parsed.sample : undefined;
}

/** A model's routing record, or undefined (none, or unreadable). */
async function readRoutingRecord(folder: ModelFolderReader): Promise<ModelRouting | undefined> {
  const parsed = parseOrUndefined(await folder.read('routing.json')) as { aliases?: unknown; traffic?: unknown } | undefined;
  if (parsed === undefined || !Array.isArray(parsed.aliases)) return undefined;
  return { aliases: parsed.aliases as ModelRouting['aliases'], ...(parsed.traffic === undefined ? {} : { traffic: parsed.traffic }) };
}

/** Everything one model folder records, or undefined for a folder that does not name a model this store wrote. */
export async function readStoredModel(folder: ModelFolderReader): Promise<StoredModel | undefined> {
  const files = await readVersionFiles(folder);
  const configText = await folder.read('config.json');
  const configDocument = configText === undefined ? undefined : (JSON.parse(configText) as { name: string; config: unknown });
  const name = files[0]?.name ?? configDocument?.name;
  // A rebuild turns these names into Redis keys and queue names: a folder naming anything else was not written here.
  if (typeof name !== 'string' || !isValidQualifiedModelName(name)) return undefined;
  let highestVersion = 0;
  const versions: VersionRecord[] = [];
  for (const file of files) {
    highestVersion = Math.max(highestVersion, Number(file.version));
    if (isTombstone(file)) continue;
    const { schemaVersion: _schemaVersion, ...record } = file;
    const signatureText = await folder.read(`${file.version}.signature.json`);
    const warmupSample = await readWarmupSampleRecord(folder, file.version);
    versions.push({
      ...record,
      ...(signatureText === undefined ? {} : { signature: JSON.parse(signatureText) as ModelSignature }),
      ...(warmupSample === undefined ? {} : { warmupSample }),
    });
  }
  versions.sort((a, b) => Number(a.version) - Number(b.version));
  const routing = await readRoutingRecord(folder);
  return {
    name,
    highestVersion,
    versions,
    ...(configDocument === undefined ? {} : { config: configDocument.config }),
    ...(routing === undefined ? {} : { routing }),
  };
}

/** What live records of model folders name: their blobs, or their warm-up samples. */
export async function namedByRecords(folder: ModelFolderReader, what: 'blobs' | 'warmup-samples', named: Set<string>): Promise<void> {
  for (const file of await readVersionFiles(folder)) {
    if (isTombstone(file)) continue;
    if (what === 'blobs') named.add(file.sha256);
    else {
      const sample = await readWarmupSampleRecord(folder, file.version);
      if (sample !== undefined) named.add(sample);
    }
  }
}

function parseOrUndefined(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
