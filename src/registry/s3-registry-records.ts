import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { ModelSignature } from '../protocol/signature.js';
import {
  folderNameOf,
  namedByRecords,
  readStoredModel,
  recordSchemaVersion,
  tombstoneOf,
  versionFilePattern,
  type ModelFolderReader,
} from './record-folder.js';
import { httpStatusOf, type S3Bucket } from './s3-bucket.js';
import type { ModelRouting, RegistryRecords, StoredModel, VersionRecord } from './registry-records.js';

/** Objects read at once while a whole registry is read (a rebuild, a collection pass): S3 answers each in ~10 ms. */
const readConcurrency = 8;

/**
 * Registry records as small JSON objects under `<GANTRY_S3_PREFIX>/registry/<queue prefix>/`, one object per file of
 * the file store's layout (deployment.json; models/<name>/<version>.json, a record or a tombstone;
 * <version>.signature.json; <version>.warmup.json; config.json; routing.json). A PutObject is atomic and durable
 * once answered, which is what writeFileDurably gives the file store.
 */
export class S3RegistryRecords implements RegistryRecords {
  /** The relative key prefix of this deployment's records, with a trailing '/'. */
  private readonly root: string;

  constructor(
    private readonly bucket: S3Bucket,
    prefix: string,
  ) {
    this.root = `registry/${prefix}/`;
  }

  private modelFolder(name: string): string {
    return `${this.root}models/${folderNameOf(name)}/`;
  }

  private keyOf(relative: string): string {
    return this.bucket.key(relative);
  }

  async readDeploymentId(): Promise<string | undefined> {
    const text = await this.bucket.getText(this.keyOf(`${this.root}deployment.json`));
    if (text === undefined) return undefined;
    const parsed = JSON.parse(text) as { deploymentId?: unknown };
    return typeof parsed.deploymentId === 'string' && parsed.deploymentId !== '' ? parsed.deploymentId : undefined;
  }

  /**
   * Create-if-absent with S3's conditional write (`If-None-Match: *`, AWS since 2024, MinIO, moto): of racing
   * claims exactly one is stored, the others get 412 and read the winner. A server that does not implement it
   * answers 501; the claim then falls back to read-then-write, which is only safe when one process claims at a
   * time (docs/decisions.md): the id read back afterwards is the one returned either way.
   */
  async claimDeploymentId(id: string): Promise<string> {
    const key = this.keyOf(`${this.root}deployment.json`);
    const content = JSON.stringify({ schemaVersion: recordSchemaVersion, deploymentId: id, createdAt: new Date().toISOString() });
    try {
      await this.bucket.client.send(
        new PutObjectCommand({ Bucket: this.bucket.name, Key: key, Body: content, ContentType: 'application/json', IfNoneMatch: '*' }),
      );
    } catch (error) {
      const status = httpStatusOf(error);
      // 412: another claim is stored; 409: another conditional write on the key is in flight (AWS), it will win.
      if (status === 501) {
        if ((await this.readDeploymentId()) === undefined) await this.bucket.putText(key, content);
      } else if (status !== 412 && status !== 409) {
        throw this.bucket.unavailable(`writing ${this.root}deployment.json`, error);
      }
    }
    const held = await this.readDeploymentId();
    if (held === undefined) throw new Error(`the deployment record ${this.bucket.describe()}${this.root}deployment.json is unreadable`);
    return held;
  }

  async writeVersion(record: VersionRecord): Promise<void> {
    await this.bucket.putText(
      this.keyOf(`${this.modelFolder(record.name)}${record.version}.json`),
      JSON.stringify({ schemaVersion: recordSchemaVersion, ...record }),
    );
  }

  async writeSignature(name: string, version: string, signature: ModelSignature): Promise<void> {
    await this.bucket.putText(this.keyOf(`${this.modelFolder(name)}${version}.signature.json`), JSON.stringify(signature));
  }

  async writeWarmupSample(name: string, version: string, sample: string): Promise<void> {
    await this.bucket.putText(this.keyOf(`${this.modelFolder(name)}${version}.warmup.json`), JSON.stringify({ sample }));
  }

  async writeRouting(name: string, routing: ModelRouting | undefined): Promise<void> {
    const key = this.keyOf(`${this.modelFolder(name)}routing.json`);
    if (routing === undefined) await this.bucket.delete(key);
    else await this.bucket.putText(key, JSON.stringify({ name, ...routing }));
  }

  async markDeleted(name: string, version: string): Promise<void> {
    const folder = this.modelFolder(name);
    await this.bucket.putText(this.keyOf(`${folder}${version}.json`), JSON.stringify(tombstoneOf(name, version)));
    await this.bucket.delete(this.keyOf(`${folder}${version}.signature.json`));
    await this.bucket.delete(this.keyOf(`${folder}${version}.warmup.json`));
  }

  async highestVersion(name: string): Promise<number> {
    let highest = 0;
    for (const object of await this.bucket.list(this.modelFolder(name))) {
      const match = versionFilePattern.exec(baseName(object.key));
      if (match !== null) highest = Math.max(highest, Number(match[1]));
    }
    return highest;
  }

  async writeModelConfig(name: string, config: unknown): Promise<void> {
    const key = this.keyOf(`${this.modelFolder(name)}config.json`);
    if (config === undefined) await this.bucket.delete(key);
    else await this.bucket.putText(key, JSON.stringify({ name, config }));
  }

  async readAll(): Promise<StoredModel[]> {
    const folders = groupByModelFolder(this.bucket, await this.bucket.list(`${this.root}models/`), this.root.length + 'models/'.length);
    const models = await mapWithConcurrency([...folders.values()], readConcurrency, (folder) => readStoredModel(folderReader(this.bucket, folder)));
    return models.filter((model): model is StoredModel => model !== undefined).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }
}

/** The objects of one model's folder, by file name (`1.json`, `config.json`…), as full keys. */
type ModelFolder = Map<string, string>;

/**
 * Groups listed keys by model folder. `start` is where the folder name begins in the relative key, so
 * `registry/<p>/models/<folder>/<file>` and a scan over every prefix share this.
 */
function groupByModelFolder(bucket: S3Bucket, objects: Array<{ key: string }>, start: number): Map<string, ModelFolder> {
  const folders = new Map<string, ModelFolder>();
  for (const { key } of objects) {
    const rest = bucket.relative(key).slice(start);
    const slash = rest.indexOf('/');
    if (slash <= 0 || rest.indexOf('/', slash + 1) !== -1) continue;
    const folderName = rest.slice(0, slash);
    let folder = folders.get(folderName);
    if (folder === undefined) folders.set(folderName, (folder = new Map()));
    folder.set(rest.slice(slash + 1), key);
  }
  return folders;
}

/** Every model folder of every deployment (queue prefix) keeping records in this store, keyed `<prefix>/<folder>`. */
function everyModelFolder(bucket: S3Bucket, objects: Array<{ key: string }>): ModelFolder[] {
  const folders = new Map<string, ModelFolder>();
  for (const { key } of objects) {
    // registry/<prefix>/models/<folder>/<file>
    const parts = bucket.relative(key).split('/');
    if (parts.length !== 5 || parts[0] !== 'registry' || parts[2] !== 'models') continue;
    const id = `${parts[1]}/${parts[3]}`;
    let folder = folders.get(id);
    if (folder === undefined) folders.set(id, (folder = new Map()));
    folder.set(parts[4]!, key);
  }
  return [...folders.values()];
}

/**
 * The sha256 of every blob a live version record names, over every deployment whose records are in this store
 * (several queue prefixes may share one bucket prefix and its blobs).
 */
export async function s3BlobsNamedByRecords(bucket: S3Bucket): Promise<Set<string>> {
  return everyModelFolderNames(bucket, 'blobs');
}

/** The sha256 of every warm-up sample a live version names, over every deployment in this store. */
export async function s3WarmupSamplesNamedByRecords(bucket: S3Bucket): Promise<Set<string>> {
  return everyModelFolderNames(bucket, 'warmup-samples');
}

async function everyModelFolderNames(bucket: S3Bucket, what: 'blobs' | 'warmup-samples'): Promise<Set<string>> {
  const folders = everyModelFolder(bucket, await bucket.list('registry/'));
  const named = new Set<string>();
  await mapWithConcurrency(folders, readConcurrency, (folder) => namedByRecords(folderReader(bucket, folder), what, named));
  return named;
}

/** One model folder's listed objects, as the record format reads them. */
function folderReader(bucket: S3Bucket, folder: ModelFolder): ModelFolderReader {
  return {
    names: [...folder.keys()],
    read: async (file) => {
      const key = folder.get(file);
      return key === undefined ? undefined : bucket.getText(key);
    },
  };
}

function baseName(key: string): string {
  return key.slice(key.lastIndexOf('/') + 1);
}

/** Runs `work` over `items`, at most `limit` at a time, keeping the order of the results. */
async function mapWithConcurrency<Item, Result>(items: Item[], limit: number, work: (item: Item) => Promise<Result>): Promise<Result[]> {
  const results: Result[] = new Array<Result>(items.length);
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!);
    }
  });
  await Promise.all(runners);
  return results;
}
