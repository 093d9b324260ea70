import { mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { isValidQualifiedModelName } from '../auth/model-names.js';
import type { ModelSignature } from '../protocol/signature.js';
import { createFileDurablyIfAbsent, readTextIfExists, writeFileDurably } from './durable-file.js';
import type { ModelRouting, RegistryRecords, StoredModel, VersionRecord } from './registry-records.js';

const versionFilePattern = /^([1-9][0-9]{0,15})\.json$/;
const recordSchemaVersion = 1;

interface Tombstone {
  schemaVersion: number;
  name: string;
  version: string;
  deletedAt: string;
}

type VersionFile = (VersionRecord & { schemaVersion: number }) | Tombstone;

function isTombstone(file: VersionFile): file is Tombstone {
  return 'deletedAt' in file;
}

/**
 * A model's qualified name as a folder name. Names are letters, digits, '_', '.' and '-' (queue/names.ts), and
 * another tenant's carry its id and '~' (auth/model-names.ts), all safe in a file name; on a
 * case-insensitive filesystem "Mlp" and "mlp" would share a folder, so each capital becomes '^' plus its lower
 * case ('^' never appears in a name, so two names never map to one folder).
 */
function folderNameOf(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `^${letter.toLowerCase()}`);
}

/**
 * Registry records as small JSON files under `<data>/registry/<prefix>/` (layout in docs: deployment.json;
 * models/<name>/<version>.json, a record or a tombstone; <version>.signature.json; <version>.warmup.json;
 * config.json; routing.json, the aliases and traffic policy). One file per
 * version, so concurrent uploads of different versions never write the same file.
 */
export class FileRegistryRecords implements RegistryRecords {
  private readonly root: string;

  constructor(registryRoot: string, prefix: string) {
    this.root = path.join(registryRoot, prefix);
  }

  private modelFolder(name: string): string {
    return path.join(this.root, 'models', folderNameOf(name));
  }

  private versionFile(name: string, version: string): string {
    return path.join(this.modelFolder(name), `${version}.json`);
  }

  private signatureFile(name: string, version: string): string {
    return path.join(this.modelFolder(name), `${version}.signature.json`);
  }

  private warmupSampleFile(name: string, version: string): string {
    return path.join(this.modelFolder(name), `${version}.warmup.json`);
  }

  async readDeploymentId(): Promise<string | undefined> {
    const text = await readTextIfExists(path.join(this.root, 'deployment.json'));
    if (text === undefined) return undefined;
    const parsed = JSON.parse(text) as { deploymentId?: unknown };
    return typeof parsed.deploymentId === 'string' && parsed.deploymentId !== '' ? parsed.deploymentId : undefined;
  }

  async claimDeploymentId(id: string): Promise<string> {
    await mkdir(this.root, { recursive: true });
    const content = JSON.stringify({ schemaVersion: recordSchemaVersion, deploymentId: id, createdAt: new Date().toISOString() });
    await createFileDurablyIfAbsent(path.join(this.root, 'deployment.json'), content);
    const held = await this.readDeploymentId();
    if (held === undefined) throw new Error(`the deployment record under ${this.root} is unreadable`);
    return held;
  }

  async writeVersion(record: VersionRecord): Promise<void> {
    await mkdir(this.modelFolder(record.name), { recursive: true });
    await writeFileDurably(this.versionFile(record.name, record.version), JSON.stringify({ schemaVersion: recordSchemaVersion, ...record }));
  }

  async writeSignature(name: string, version: string, signature: ModelSignature): Promise<void> {
    await mkdir(this.modelFolder(name), { recursive: true });
    await writeFileDurably(this.signatureFile(name, version), JSON.stringify(signature));
  }

  async writeWarmupSample(name: string, version: string, sample: string): Promise<void> {
    await mkdir(this.modelFolder(name), { recursive: true });
    await writeFileDurably(this.warmupSampleFile(name, version), JSON.stringify({ sample }));
  }

  async writeRouting(name: string, routing: ModelRouting | undefined): Promise<void> {
    const file = path.join(this.modelFolder(name), 'routing.json');
    if (routing === undefined) {
      await rm(file, { force: true });
      return;
    }
    await mkdir(this.modelFolder(name), { recursive: true });
    await writeFileDurably(file, JSON.stringify({ name, ...routing }));
  }

  async markDeleted(name: string, version: string): Promise<void> {
    await mkdir(this.modelFolder(name), { recursive: true });
    const tombstone: Tombstone = { schemaVersion: recordSchemaVersion, name, version, deletedAt: new Date().toISOString() };
    await writeFileDurably(this.versionFile(name, version), JSON.stringify(tombstone));
    await rm(this.signatureFile(name, version), { force: true });
    await rm(this.warmupSampleFile(name, version), { force: true });
  }

  async highestVersion(name: string): Promise<number> {
    let highest = 0;
    for (const entry of await listNames(this.modelFolder(name))) {
      const match = versionFilePattern.exec(entry);
      if (match !== null) highest = Math.max(highest, Number(match[1]));
    }
    return highest;
  }

  async writeModelConfig(name: string, config: unknown): Promise<void> {
    const file = path.join(this.modelFolder(name), 'config.json');
    if (config === undefined) {
      await rm(file, { force: true });
      return;
    }
    await mkdir(this.modelFolder(name), { recursive: true });
    await writeFileDurably(file, JSON.stringify({ name, config }));
  }

  async readAll(): Promise<StoredModel[]> {
    const models: StoredModel[] = [];
    for (const folderName of await listNames(path.join(this.root, 'models'))) {
      const model = await readModelFolder(path.join(this.root, 'models', folderName));
      if (model !== undefined) models.push(model);
    }
    return models.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }
}

/**
 * The sha256 of every warm-up sample a live version names, over every deployment whose records are under
 * `registryRoot` (the samples' folder is the data directory's, shared like the blobs).
 */
export async function warmupSamplesNamedByRecords(registryRoot: string): Promise<Set<string>> {
  const named = new Set<string>();
  for (const prefix of await listNames(registryRoot)) {
    const modelsFolder = path.join(registryRoot, prefix, 'models');
    for (const folderName of await listNames(modelsFolder)) {
      const folder = path.join(modelsFolder, folderName);
      for (const file of await readVersionFiles(folder)) {
        if (isTombstone(file)) continue;
        const sample = await readWarmupSampleFile(folder, file.version);
        if (sample !== undefined) named.add(sample);
      }
    }
  }
  return named;
}

/** A version's warm-up sample record, or undefined (none, or unreadable: the sample then simply is not named). */
async function readWarmupSampleFile(folder: string, version: string): Promise<string | undefined> {
  const text = await readTextIfExists(path.join(folder, `${version}.warmup.json`)).catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const parsed = JSON.parse(text) as { sample?: unknown };
    return typeof parsed.sample === 'string' ? parsed.sample : undefined;
  } catch {
    return undefined;
  }
}

/** A model's routing record, or undefined (none, or unreadable). */
async function readRoutingFile(folder: string): Promise<ModelRouting | undefined> {
  const text = await readTextIfExists(path.join(folder, 'routing.json')).catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const parsed = JSON.parse(text) as { aliases?: unknown; traffic?: unknown };
    if (!Array.isArray(parsed.aliases)) return undefined;
    return { aliases: parsed.aliases as ModelRouting['aliases'], ...(parsed.traffic === undefined ? {} : { traffic: parsed.traffic }) };
  } catch {
    return undefined;
  }
}

/**
 * The sha256 of every blob a live version record names, over every deployment whose records are under
 * `registryRoot` (a data directory shared by several queue prefixes keeps each one's blobs).
 */
export async function blobsNamedByRecords(registryRoot: string): Promise<Set<string>> {
  const named = new Set<string>();
  for (const prefix of await listNames(registryRoot)) {
    const modelsFolder = path.join(registryRoot, prefix, 'models');
    for (const folderName of await listNames(modelsFolder)) {
      for (const file of await readVersionFiles(path.join(modelsFolder, folderName))) if (!isTombstone(file)) named.add(file.sha256);
    }
  }
  return named;
}

async function readModelFolder(folder: string): Promise<StoredModel | undefined> {
  const files = await readVersionFiles(folder);
  const configText = await readTextIfExists(path.join(folder, 'config.json'));
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
    const signatureText = await readTextIfExists(path.join(folder, `${file.version}.signature.json`));
    const warmupSample = await readWarmupSampleFile(folder, file.version);
    versions.push({
      ...record,
      ...(signatureText === undefined ? {} : { signature: JSON.parse(signatureText) as ModelSignature }),
      ...(warmupSample === undefined ? {} : { warmupSample }),
    });
  }
  versions.sort((a, b) => Number(a.version) - Number(b.version));
  const routing = await readRoutingFile(folder);
  return {
    name,
    highestVersion,
    versions,
    ...(configDocument === undefined ? {} : { config: configDocument.config }),
    ...(routing === undefined ? {} : { routing }),
  };
}

/** The version files (records and tombstones) of one model folder; an unreadable one is skipped, not fatal. */
async function readVersionFiles(folder: string): Promise<VersionFile[]> {
  const names = (await listNames(folder)).filter((name) => versionFilePattern.test(name));
  const texts = await Promise.all(names.map((name) => readTextIfExists(path.join(folder, name)).catch(() => undefined)));
  const files: VersionFile[] = [];
  for (const text of texts) {
    if (text === undefined) continue;
    try {
      files.push(JSON.parse(text) as VersionFile);
    } catch {
      // A record is written by rename, so it is never half-written; a file that does not parse was put there by hand.
    }
  }
  return files;
}

async function listNames(folder: string): Promise<string[]> {
  try {
    return await readdir(folder);
  } catch {
    return [];
  }
}
