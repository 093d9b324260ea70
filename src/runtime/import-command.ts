import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { redisEndpointSettings } from '../queue/redis-connection.js';
import { describeRedisEndpoint } from '../queue/redis-endpoint.js';
import { ModelRegistry } from '../registry/model-registry.js';
import { createModelStore } from '../registry/model-store-factory.js';
import type { ModelStore } from '../registry/model-store.js';
import type { StoredModel } from '../registry/registry-records.js';
import { rebuildRegistry } from '../registry/registry-rebuild.js';
import {
  BackupArchiveError,
  blobEntryPrefix,
  controlPlaneEntry,
  controlPlaneSchema,
  registryEntry,
  registrySchema,
  sampleEntryPrefix,
  sha256OfEntry,
  storedModelsOf,
  trailerEntry,
  trailerSchema,
  type ArchiveEntry,
  type BackupTrailer,
} from './backup-archive.js';
import { writeControlPlane } from './backup-control-plane.js';
import { describeRestoredVersion, loadRestoredAndReport, rebuildWhenFree } from './restored-loads.js';
import { readManifest, readJsonEntry } from './backup-reader.js';
import { writeImportedRecords } from './backup-records.js';
import { findTargetConflicts } from './backup-target-check.js';
import { verifyingStream } from './backup-verify.js';
import { commandRedisUrl, connectCommandRedis } from './command-redis.js';

/**
 * `gantry import FILE`: puts a `gantry export` archive into this deployment (REDIS_URL + GANTRY_QUEUE_PREFIX and its
 * model store), which must hold nothing the archive does not (backup-target-check.ts). Order, so that an archive
 * that turns out cut or corrupt never leaves a deployment that looks complete: blobs and samples into the store
 * (each verified against its sha256 as it streams), then, once the trailer proved the archive whole, the registry
 * records, then Redis (tenants, keys, limits, and the registry rebuilt from the records as `gantry repair` does),
 * then the workers are asked to load. Running the same import again after a failure takes it up where it stopped.
 * Returns the exit code: 0 imported; 1 Redis unreachable, the target refused, or a step failed (the message says how
 * to retry); 2 the file is not a whole Gantry export.
 */
export async function runImportCommand(
  config: Config,
  logger: Logger,
  file: string,
  print: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
): Promise<number> {
  const size = await stat(file).then(
    (info) => (info.isFile() ? info.size : undefined),
    () => undefined,
  );
  if (size === undefined) {
    print(`Cannot read '${file}': give the path of a file \`gantry export --out\` wrote.`);
    return 2;
  }
  const redisUrl = await commandRedisUrl(config);
  const prefix = config.GANTRY_QUEUE_PREFIX;
  const redis = await connectCommandRedis(redisUrl, 'import', redisEndpointSettings(config));
  if (redis === undefined) {
    print(
      `No Redis answers at ${describeRedisEndpoint(redisUrl)}. Start the Redis the target deployment uses (or set REDIS_URL to it; with \`gantry start\` and its private redis-server, run the import while Gantry runs, with the same GANTRY_DATA_DIR) and run \`gantry import\` again.`,
    );
    return 1;
  }
  const store = await createModelStore(config);
  const extract = tar.extract();
  // A cut or corrupt tar shows here (and as the entry iterator's error): either way it is the file's fault.
  let archiveFailure: unknown;
  const reading = pipeline(createReadStream(file), extract);
  reading.catch((error: unknown) => (archiveFailure ??= error));
  const entries = extract[Symbol.asyncIterator]();
  // reading: the archive's small entries; checking: the target; store, redis: what is being written.
  let stage: 'reading' | 'checking' | 'store' | 'redis' = 'reading';
  try {
    const manifest = await readManifest(entries);
    const controlPlane = await readJsonEntry(entries, controlPlaneEntry, controlPlaneSchema);
    const models = storedModelsOf(await readJsonEntry(entries, registryEntry, registrySchema));
    print(
      `Archive: deployment ${manifest.deploymentId} (prefix '${manifest.prefix}'), written ${manifest.createdAt} by Gantry ${manifest.gantryVersion}` +
        `${manifest.referencesOnly ? ', blob references only' : ''}. Target: ${store.describeLocation()}, Redis ${describeRedisEndpoint(redisUrl)}, prefix '${prefix}'.`,
    );

    stage = 'checking';
    await store.init();
    const conflicts = await findTargetConflicts({ redis, prefix, store }, { models, controlPlane });
    if (conflicts.length > 0) {
      print(`Refused: the target deployment is not empty, and an import would mix two deployments:`);
      for (const conflict of conflicts.slice(0, 20)) print(`  - ${conflict}`);
      print('Import into an empty deployment: another GANTRY_QUEUE_PREFIX, or a Redis and model store with nothing of this prefix. Nothing was written.');
      return 1;
    }
    const referenced = new Set(models.flatMap((model) => model.versions.map((version) => version.sha256)));
    if (manifest.referencesOnly) {
      const missing = [];
      for (const sha256 of referenced) if (!(await store.exists(sha256))) missing.push(sha256);
      if (missing.length > 0) {
        print(
          `Refused: the archive holds only references to blobs (--references-only), and the model store at ${store.describeLocation()} lacks ${missing.length} of them: ${missing.slice(0, 10).join(', ')}. ` +
            "Import into a deployment that shares the exported deployment's store, or export again without --references-only. Nothing was written.",
        );
        return 1;
      }
    }

    stage = 'store';
    const contents = await storeBlobsAndSamples(entries, store, referenced);
    const received = checkTrailer(contents, manifest.referencesOnly, models);
    const trailer = contents.trailer;
    const records = store.registryRecords(prefix);
    const written = await writeImportedRecords(records, models, trailer);
    const deploymentId = await records.claimDeploymentId(manifest.deploymentId);
    await checkBlobsStillStored(store, models, trailer);

    stage = 'redis';
    await writeControlPlane(redis, prefix, controlPlane);
    const registry = new ModelRegistry(redis, prefix);
    const outcome = await rebuildWhenFree(() => rebuildRegistry({ redis, prefix, registry, records, store, deploymentId }, { fillIn: true }));
    if (outcome.status === 'busy') throw new Error('another process (an API) kept the registry rebuild lock for 30 s');

    for (const left of trailer.leftOutVersions) print(`  left out at export: ${left.name} v${left.version} (${left.reason}); its number stays taken`);
    print(
      `Imported ${written.models} model(s), ${written.versions} version(s), ${controlPlane.tenants.length} tenant(s), ${controlPlane.keys.length} API key(s), ` +
        `${received.blobs} blob(s) (${received.alreadyStored} already in the store), ${trailer.samples.length} warm-up sample(s) into deployment ${deploymentId}.`,
    );
    for (const version of outcome.restored)
      if (version.state === 'UNAVAILABLE') print(`  ${describeRestoredVersion(version)}  UNAVAILABLE (its blob is missing)`);
    logger.info({ file, deployment: deploymentId, versions: written.versions }, 'gantry import restored an archive');
    await loadRestoredAndReport(outcome.restored, { redis, redisUrl }, config, logger, print, 'import');
    return 0;
  } catch (error) {
    // Once the trailer was read the file has said all it had to: a later failure is the target's, whatever the tar does.
    const fileAtFault = error instanceof BackupArchiveError || stage === 'reading' || (stage === 'store' && archiveFailure !== undefined);
    const cause = fileAtFault ? (archiveFailure ?? error) : error;
    const reason = cause instanceof Error ? cause.message : String(cause);
    if (fileAtFault) {
      print(
        `Refused: '${file}' is not a whole Gantry export archive: ${reason}. ` +
          (stage === 'reading'
            ? 'Nothing was imported.'
            : 'No registry record and nothing in Redis was written, so the deployment is as it was (blobs stored so far are removed by the garbage collection when nothing uses them). Export again, or import a whole copy of the file.'),
      );
      return 2;
    }
    if (stage === 'checking') {
      print(`Import failed while checking the target: ${reason}. Nothing was written; fix the cause and run \`gantry import\` again.`);
      return 1;
    }
    print(
      stage === 'store'
        ? `Import failed while storing the archive's contents: ${reason}. Redis was not changed, so the deployment does not look imported; blobs stored so far stay (the garbage collection removes them if unused). Fix the cause and run the same \`gantry import\` again.`
        : `Import failed while writing Redis: ${reason}. The model store holds every record; run the same \`gantry import\` again (or \`gantry repair\`) to finish.`,
    );
    return 1;
  } finally {
    extract.destroy();
    redis.disconnect();
  }
}

interface StoredContents {
  trailer: BackupTrailer;
  blobs: number;
  alreadyStored: number;
}

/**
 * Stores the rest of the archive (samples, then blobs) and returns its trailer. A blob the store has already (a
 * shared store, or a retried import) is skipped: its name is its sha256, and readers verify it.
 * @throws BackupArchiveError on an entry that does not belong, a blob or sample whose bytes are not its name, or a
 *   missing trailer.
 */
async function storeBlobsAndSamples(entries: AsyncIterator<ArchiveEntry>, store: ModelStore, referenced: ReadonlySet<string>): Promise<StoredContents> {
  let blobs = 0;
  let alreadyStored = 0;
  for (;;) {
    // The tar reader failing (a file cut inside an entry's header, bad checksums) is the file's fault.
    const next = await entries.next().catch((error: unknown) => {
      throw new BackupArchiveError(error instanceof Error ? error.message : String(error));
    });
    if (next.done === true) throw new BackupArchiveError(`it ends before its last entry (${trailerEntry}): the file was cut short`);
    const entry = next.value;
    const name = entry.header.name;
    if (name === trailerEntry) {
      const trailer = trailerSchema.parse(JSON.parse(await textOf(entry)));
      return { trailer, blobs, alreadyStored };
    }
    const sample = sha256OfEntry(name, sampleEntryPrefix);
    const blob = sha256OfEntry(name, blobEntryPrefix);
    if (sample !== undefined) {
      const text = await textOf(entry);
      if (createHash('sha256').update(text).digest('hex') !== sample) throw new BackupArchiveError(`the warm-up sample ${name} does not match its sha256`);
      await store.warmupSamples.put(sample, text);
    } else if (blob !== undefined && referenced.has(blob)) {
      const size = entry.header.size ?? 0;
      blobs += 1;
      if (await store.exists(blob)) {
        alreadyStored += 1;
        await drain(entry);
        continue;
      }
      // The store reads the verifier: an archive cut inside this blob fails the put, which then keeps nothing.
      const verifier = verifyingStream(blob, size, `the archive's blob ${blob}`);
      const bytes = Readable.from(entry);
      bytes.once('error', (error) => verifier.destroy(error));
      bytes.pipe(verifier);
      // The verifier failing is the archive's fault (its bytes, or its end), not the store's: exit 2, not 1.
      let archiveFault: Error | undefined;
      verifier.once('error', (error) => (archiveFault = error));
      await store.put(verifier, size, { expectedBytes: size }).catch((error: unknown) => {
        throw archiveFault === undefined ? error : new BackupArchiveError(archiveFault.message);
      });
    } else {
      throw new BackupArchiveError(`it holds an entry no Gantry export has: '${name.slice(0, 100)}'`);
    }
  }
}

/**
 * What the trailer says was written must be what arrived, and every blob a kept version names must be among it.
 * @returns the counts for the summary.
 */
function checkTrailer(contents: StoredContents, referencesOnly: boolean, models: readonly StoredModel[]): { blobs: number; alreadyStored: number } {
  const { trailer } = contents;
  const expectedBlobs = referencesOnly ? 0 : trailer.blobs.length;
  if (contents.blobs !== expectedBlobs) throw new BackupArchiveError(`its trailer lists ${expectedBlobs} blob(s) but ${contents.blobs} arrived`);
  if (!referencesOnly) {
    const leftOut = new Set(trailer.leftOutVersions.map((version) => `${version.name}/${version.version}`));
    const inArchive = new Set(trailer.blobs);
    for (const model of models) {
      for (const version of model.versions) {
        if (!leftOut.has(`${model.name}/${version.version}`) && !inArchive.has(version.sha256))
          throw new BackupArchiveError(`the blob of ${model.name} v${version.version} (${version.sha256}) is not in it`);
      }
    }
  }
  return { blobs: contents.blobs, alreadyStored: contents.alreadyStored };
}

/**
 * A blob stored early in a long import is named by no record until the records are written: a running target's
 * garbage collection may take it once GANTRY_BLOB_GC_GRACE_MS passed. Checked after the records are written (they
 * protect the blobs from then on), so running the import again stores what went and finishes.
 * @throws Error naming how many went and what to do.
 */
async function checkBlobsStillStored(store: ModelStore, models: readonly StoredModel[], trailer: BackupTrailer): Promise<void> {
  const leftOut = new Set(trailer.leftOutVersions.map((version) => `${version.name}/${version.version}`));
  const gone = new Set<string>();
  for (const model of models) {
    for (const version of model.versions) {
      if (!leftOut.has(`${model.name}/${version.version}`) && !(await store.exists(version.sha256))) gone.add(version.sha256);
    }
  }
  if (gone.size > 0)
    throw new Error(
      `${gone.size} blob(s) went from the store while the import ran (a garbage collection took them: the import outlasted GANTRY_BLOB_GC_GRACE_MS), e.g. ${[...gone][0]}; the records written now protect them, so the same import run again stores them`,
    );
}

async function textOf(entry: ArchiveEntry, limitBytes = 64 * 1024 ** 2): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  await readArchive(async () => {
    for await (const chunk of entry) {
      const bytes = chunk as Buffer;
      total += bytes.length;
      if (total > limitBytes) throw new BackupArchiveError(`its entry ${entry.header.name} is larger than ${limitBytes} bytes`);
      chunks.push(bytes);
    }
  });
  return Buffer.concat(chunks).toString('utf8');
}

async function drain(entry: ArchiveEntry): Promise<void> {
  await readArchive(async () => {
    for await (const _chunk of entry) {
      // skipped: the store has this blob already
    }
  });
}

/** Runs a read of the archive's bytes; a failure of the tar reader (a cut file) becomes the file's fault. */
async function readArchive(read: () => Promise<void>): Promise<void> {
  try {
    await read();
  } catch (error) {
    throw error instanceof BackupArchiveError ? error : new BackupArchiveError(error instanceof Error ? error.message : String(error));
  }
}
