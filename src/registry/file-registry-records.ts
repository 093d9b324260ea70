import { mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { ModelSignature } from '../protocol/signature.js';
import { createFileDurablyIfAbsent, readTextIfExists, writeFileDurably } from './durable-file.js';
import {
  folderNameOf,
  namedByRecords,
  readStoredModel,
  recordSchemaVersion,
  tombstoneOf,
  versionFilePattern,
  type ModelFolderReader,
} from './record-folder.js';
import type { ModelRouting, RegistryRecords, StoredModel, VersionRecord } from './registry-records.js';

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
    await writeFileDurably(this.versionFile(name, version), JSON.stringify(tombstoneOf(name, version)));
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
      const model = await readStoredModel(await folderReader(path.join(this.root, 'models', folderName)));
      if (model !== undefined) models.push(model);
    }
    return models.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }
}

/** The sha256 of every warm-up sample a live version names, over every deployment whose records are under `registryRoot`. */
export async function warmupSamplesNamedByRecords(registryRoot: string): Promise<Set<string>> {
  return everyModelFolderNames(registryRoot, 'warmup-samples');
}

/**
 * The sha256 of every blob a live version record names, over every deployment whose records are under
 * `registryRoot` (a data directory shared by several queue prefixes keeps each one's blobs).
 */
export async function blobsNamedByRecords(registryRoot: string): Promise<Set<string>> {
  return everyModelFolderNames(registryRoot, 'blobs');
}

async function everyModelFolderNames(registryRoot: string, what: 'blobs' | 'warmup-samples'): Promise<Set<string>> {
  const named = new Set<string>();
  for (const prefix of await listNames(registryRoot)) {
    const modelsFolder = path.join(registryRoot, prefix, 'models');
    for (const folderName of await listNames(modelsFolder)) await namedByRecords(await folderReader(path.join(modelsFolder, folderName)), what, named);
  }
  return named;
}

/** One model folder on disk, as the record format reads it. */
async function folderReader(folder: string): Promise<ModelFolderReader> {
  return { names: await listNames(folder), read: (file) => readTextIfExists(path.join(folder, file)).catch(() => undefined) };
}

async function listNames(folder: string): Promise<string[]> {
  try {
    return await readdir(folder);
  } catch {
    return [];
  }
}
