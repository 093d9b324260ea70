import { createWriteStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import type { Config } from '../config.js';
import { ErrorCode, GantryError } from '../errors.js';
import type { Logger } from '../logger.js';
import { redisEndpointSettings } from '../queue/redis-connection.js';
import { describeRedisEndpoint } from '../queue/redis-endpoint.js';
import { createModelStore } from '../registry/model-store-factory.js';
import type { ModelStore } from '../registry/model-store.js';
import type { StoredModel } from '../registry/registry-records.js';
import { deploymentMarkerKey } from '../redis-keys.js';
import {
  backupFormatName,
  backupFormatVersion,
  blobEntryPrefix,
  controlPlaneEntry,
  gantryVersion,
  manifestEntry,
  registryEntry,
  sampleEntryPrefix,
  trailerEntry,
  type BackupManifest,
  type BackupTrailer,
} from './backup-archive.js';
import { readControlPlane } from './backup-control-plane.js';
import { verifyingStream } from './backup-verify.js';
import { commandRedisUrl, connectCommandRedis } from './command-redis.js';

export interface ExportOptions {
  out: string;
  /** The target shares this model store: blobs stay out of the archive, only their presence is checked. */
  referencesOnly: boolean;
}

/**
 * `gantry export --out FILE [--references-only]`: one tar file (backup-archive.ts) with everything a deployment
 * (REDIS_URL + GANTRY_QUEUE_PREFIX, and its model store) needs to be rebuilt elsewhere by `gantry import`. Records
 * are read first, then the blobs they name, so uploads running meanwhile are simply not in the backup; a blob removed
 * meanwhile (its version was deleted) leaves its version out, with a warning. Written under FILE.partial and renamed
 * when whole: a failed export never leaves a file named FILE. Returns the exit code: 0 written, 1 otherwise.
 */
export async function runExportCommand(
  config: Config,
  logger: Logger,
  options: ExportOptions,
  print: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
): Promise<number> {
  const redisUrl = await commandRedisUrl(config);
  const prefix = config.GANTRY_QUEUE_PREFIX;
  const redis = await connectCommandRedis(redisUrl, 'export', redisEndpointSettings(config));
  if (redis === undefined) {
    print(
      `No Redis answers at ${describeRedisEndpoint(redisUrl)}. Start the Redis this deployment uses (or set REDIS_URL to it; with \`gantry start\` and its private redis-server, run the export while Gantry runs, with the same GANTRY_DATA_DIR) and run \`gantry export\` again.`,
    );
    return 1;
  }
  const partial = `${options.out}.partial`;
  try {
    const store = await createModelStore(config);
    const records = store.registryRecords(prefix);
    const deploymentId = (await records.readDeploymentId()) ?? (await redis.get(deploymentMarkerKey(prefix)));
    if (deploymentId === null) {
      print(
        `Nothing to export: neither the model store at ${store.describeLocation()} nor Redis at ${describeRedisEndpoint(redisUrl)} knows a deployment with prefix '${prefix}'. Check GANTRY_QUEUE_PREFIX, GANTRY_DATA_DIR (or GANTRY_MODEL_STORE) and REDIS_URL.`,
      );
      return 1;
    }
    // Records first: a blob read afterwards can only be missing because its version went meanwhile.
    const models = await records.readAll();
    const controlPlane = await readControlPlane(redis, prefix);
    const written = await writeArchive(partial, { store, models, controlPlane, deploymentId, prefix, referencesOnly: options.referencesOnly });
    await rename(partial, options.out);
    for (const left of written.trailer.leftOutVersions) print(`Warning: left out ${left.name} v${left.version}: ${left.reason}.`);
    for (const sample of written.trailer.leftOutSamples)
      print(`Warning: warm-up sample ${sample} went from the store meanwhile; its versions come back without one.`);
    const manifest = written.manifest;
    print(
      `Exported deployment ${deploymentId} (prefix '${prefix}') to ${path.resolve(options.out)}: ${manifest.counts.models} model(s), ` +
        `${manifest.counts.versions - written.trailer.leftOutVersions.length} version(s), ${manifest.counts.tenants} tenant(s), ${manifest.counts.keys} API key(s), ` +
        (options.referencesOnly
          ? `blob references only (${manifest.counts.blobs} blob(s) stay in ${store.describeLocation()}; import into a deployment sharing that store).`
          : `${written.trailer.blobs.length} blob(s), ${written.trailer.samples.length} warm-up sample(s).`),
    );
    logger.info({ out: options.out, deployment: deploymentId, blobs: written.trailer.blobs.length }, 'gantry export wrote an archive');
    return 0;
  } catch (error) {
    await rm(partial, { force: true });
    print(
      `Export failed: ${error instanceof Error ? error.message : String(error)}. Nothing was written to ${options.out}; fix the cause and run \`gantry export\` again.`,
    );
    return 1;
  } finally {
    redis.disconnect();
  }
}

interface ArchiveContents {
  store: ModelStore;
  models: StoredModel[];
  controlPlane: Awaited<ReturnType<typeof readControlPlane>>;
  deploymentId: string;
  prefix: string;
  referencesOnly: boolean;
}

/** Streams the archive into `file` (fsynced); returns its manifest and trailer. */
async function writeArchive(file: string, contents: ArchiveContents): Promise<{ manifest: BackupManifest; trailer: BackupTrailer }> {
  const { store, models, referencesOnly } = contents;
  const blobSizes = new Map<string, number>();
  const samples = new Set<string>();
  for (const model of models) {
    for (const version of model.versions) {
      blobSizes.set(version.sha256, version.size);
      if (version.warmupSample !== undefined) samples.add(version.warmupSample);
    }
  }
  const manifest: BackupManifest = {
    format: backupFormatName,
    formatVersion: backupFormatVersion,
    gantryVersion: gantryVersion(),
    deploymentId: contents.deploymentId,
    prefix: contents.prefix,
    createdAt: new Date().toISOString(),
    referencesOnly,
    counts: {
      models: models.length,
      versions: models.reduce((total, model) => total + model.versions.length, 0),
      tenants: contents.controlPlane.tenants.length,
      keys: contents.controlPlane.keys.length,
      blobs: blobSizes.size,
      samples: samples.size,
    },
  };
  const trailer: BackupTrailer = { blobs: [], samples: [], leftOutVersions: [], leftOutSamples: [] };
  const pack = tar.pack();
  const output = createWriteStream(file);
  const flowing = pipeline(pack, output);
  // A failed write of the file shows on the next entry's await instead of only at the end.
  flowing.catch(() => undefined);
  const addText = (name: string, value: unknown) => writeEntry(pack, name, Buffer.from(JSON.stringify(value)));

  await addText(manifestEntry, manifest);
  await addText(controlPlaneEntry, contents.controlPlane);
  await addText(registryEntry, { models });
  for (const sample of [...samples].sort()) {
    const text = await store.warmupSamples.get(sample);
    if (text === undefined) trailer.leftOutSamples.push(sample);
    else {
      await writeEntry(pack, `${sampleEntryPrefix}${sample}`, Buffer.from(text));
      trailer.samples.push(sample);
    }
  }
  const missingBlobs = new Set<string>();
  for (const [sha256, size] of [...blobSizes].sort(([a], [b]) => a.localeCompare(b))) {
    if (referencesOnly) {
      if (await store.exists(sha256)) trailer.blobs.push(sha256);
      else missingBlobs.add(sha256);
      continue;
    }
    const source = await openBlob(store, sha256);
    if (source === undefined) {
      missingBlobs.add(sha256);
      continue;
    }
    const entry = pack.entry({ name: `${blobEntryPrefix}${sha256}`, size });
    await pipeline(source, verifyingStream(sha256, size, `the blob ${sha256} in ${store.describeLocation()}`), entry as unknown as Writable);
    trailer.blobs.push(sha256);
  }
  for (const model of models) {
    for (const version of model.versions) {
      if (missingBlobs.has(version.sha256))
        trailer.leftOutVersions.push({
          name: model.name,
          version: version.version,
          reason: `its blob ${version.sha256} is not in the store (deleted meanwhile)`,
        });
    }
  }
  await addText(trailerEntry, trailer);
  pack.finalize();
  await flowing;
  const handle = await open(file, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
  return { manifest, trailer };
}

/** The blob's bytes, or undefined when it is not in the store (any other failure throws). */
async function openBlob(store: ModelStore, sha256: string): Promise<Readable | undefined> {
  try {
    return await store.read(sha256);
  } catch (error) {
    if (error instanceof GantryError && error.code === ErrorCode.NotFound) return undefined;
    throw error;
  }
}

function writeEntry(pack: tar.Pack, name: string, content: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    pack.entry({ name, size: content.length }, content, (error) => (error ? reject(error) : resolve()));
  });
}
