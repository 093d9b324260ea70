import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GantryError, errors } from '../errors.js';
import { UploadMeter, declaredBytes } from './upload-meter.js';
import { FileRegistryRecords, blobsNamedByRecords, warmupSamplesNamedByRecords } from './file-registry-records.js';
import { FolderWarmupSamples } from './folder-warmup-samples.js';
import type { ModelStore, PutOptions, StoredBlob, WarmupSampleFiles } from './model-store.js';
import type { RegistryRecords } from './registry-records.js';

const sha256Pattern = /^[0-9a-f]{64}$/;

/**
 * A temporary file (`*.partial`) untouched for this long belongs to an upload or an optimization that died: an
 * upload in progress writes at least every GANTRY_BODY_IDLE_TIMEOUT_MS (30 s by default) or is cut off.
 */
export const staleTemporaryFileMs = 15 * 60_000;

/** While an upload streams, the budget and the free space are measured again after every this many bytes. */
const recheckEveryBytes = 16 * 1024 ** 2;

/** A measurement of the room an upload has (see FileModelStore.measureRoom). */
interface Room {
  otherBytes: number;
  freeBytes: number;
  writtenBytes: number;
}

export interface StoreLimits {
  /** Bytes the store (blobs plus uploads in progress, of every process) may hold; 0 = no budget. GANTRY_MAX_STORE_BYTES. */
  maxStoreBytes?: number;
  /** Free bytes an upload must leave on the store's filesystem; 0 = none. GANTRY_MIN_FREE_DISK_BYTES. */
  minFreeDiskBytes?: number;
  /** Told each time an upload is refused for room ('store_bytes' or 'disk_free'). */
  onLimitRejection?: (limit: string) => void;
}

/** True when something exists at `file` (any stat error counts as absent). */
export async function fileExists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

/**
 * Content-addressed model store on the local (or a shared) filesystem. A blob's path is derived only from its
 * sha256, never from a model name. Writes go to a temporary file, are fsynced and renamed into place, so a
 * crash at any point leaves either the whole blob or none of it.
 *
 * Room is bounded (README "Limits"): the store's size is measured from the directory itself (blobs plus every
 * process's uploads in progress) when an upload starts and again as it grows, so several API processes sharing
 * the directory see each other's bytes with no counter to drift; an upload is a rare event and a directory of
 * a few thousand blobs is listed in milliseconds.
 */
export class FileModelStore implements ModelStore {
  private readonly blobDirectory: string;
  private readonly temporaryDirectory: string;
  /** Where workers keep optimized graphs (`<host kind>/<sha256>-<level>.onnx`), derived from blobs. */
  private readonly optimizedCacheDirectory: string;
  /** The registry records of each deployment (queue prefix) using this store: `registry/<prefix>/`. */
  private readonly registryDirectory: string;
  readonly warmupSamples: WarmupSampleFiles;

  constructor(
    private readonly dataDirectory: string,
    private readonly limits: StoreLimits = {},
  ) {
    this.blobDirectory = path.join(dataDirectory, 'blobs', 'sha256');
    this.temporaryDirectory = path.join(dataDirectory, 'blobs', 'tmp');
    this.optimizedCacheDirectory = path.join(dataDirectory, 'cache', 'optimized');
    this.registryDirectory = path.join(dataDirectory, 'registry');
    this.warmupSamples = new FolderWarmupSamples(path.join(dataDirectory, 'warmup-samples'));
  }

  /** The durable registry records of one deployment (its queue prefix), kept beside the blobs. */
  registryRecords(prefix: string): RegistryRecords {
    return new FileRegistryRecords(this.registryDirectory, prefix);
  }

  /** Where the store is, for messages to operators (a folder here; a bucket URL for an object store). */
  describeLocation(): string {
    return path.resolve(this.dataDirectory);
  }

  /** Every published blob with its size in bytes (the garbage collection's candidates). */
  async listBlobs(): Promise<StoredBlob[]> {
    const names = (await listNames(this.blobDirectory)).filter((name) => sha256Pattern.test(name));
    const sizes = await Promise.all(
      names.map((name) =>
        stat(path.join(this.blobDirectory, name)).then(
          (info) => info.size,
          () => -1,
        ),
      ),
    );
    return names.map((sha256, index) => ({ sha256, size: sizes[index]! })).filter((blob) => blob.size >= 0);
  }

  /** The blobs a live version record of any deployment sharing this store names: never garbage. */
  async blobsNamedByRecords(): Promise<Set<string>> {
    return blobsNamedByRecords(this.registryDirectory);
  }

  /** The warm-up samples live records name, over every deployment in this data directory. */
  async warmupSamplesNamedByRecords(): Promise<Set<string>> {
    return warmupSamplesNamedByRecords(this.registryDirectory);
  }

  /** Creates the folders and removes temporary files of uploads (and optimizations) that died. */
  async init(): Promise<void> {
    await mkdir(this.blobDirectory, { recursive: true });
    await mkdir(this.temporaryDirectory, { recursive: true });
    await this.removeStaleTemporaries();
  }

  /**
   * Deletes `*.partial` files not written for staleTemporaryFileMs, in the upload folder and the optimized-model
   * cache: a process that died mid-write leaves them, and nothing else would ever remove them. Fresh ones may
   * belong to another process writing now, so they stay.
   */
  private async removeStaleTemporaries(): Promise<void> {
    const folders = [this.temporaryDirectory, ...(await listFolders(this.optimizedCacheDirectory))];
    const cutoff = Date.now() - staleTemporaryFileMs;
    for (const folder of folders) {
      for (const name of await listNames(folder)) {
        if (!name.endsWith('.partial')) continue;
        const file = path.join(folder, name);
        const info = await stat(file).catch(() => undefined);
        if (info !== undefined && info.mtimeMs < cutoff) await rm(file, { force: true });
      }
    }
  }

  /**
   * Bytes the store holds now: every blob file on disk (a deleted version's blob too, until the garbage
   * collection removes it after GANTRY_BLOB_GC_GRACE_MS), plus every upload in progress (any process) but
   * `except`. Registry records and the optimized-model cache are not counted: they are small or derived.
   */
  async usedBytes(except?: string): Promise<number> {
    let total = 0;
    for (const folder of [this.blobDirectory, this.temporaryDirectory]) {
      const names = (await listNames(folder)).filter((name) => path.join(folder, name) !== except);
      const sizes = await Promise.all(
        names.map((name) =>
          stat(path.join(folder, name)).then(
            (info) => info.size,
            () => 0,
          ),
        ),
      );
      for (const size of sizes) total += size;
    }
    return total;
  }

  /**
   * What the room is now for an upload writing to `temporaryPath`: the bytes everything else in the store holds
   * (other processes' uploads included), the free bytes of its filesystem, and how much of this upload was on
   * disk then (those bytes are out of `freeBytes` already).
   */
  private async measureRoom(temporaryPath: string): Promise<Room> {
    const { maxStoreBytes = 0, minFreeDiskBytes = 0 } = this.limits;
    const otherBytes = maxStoreBytes > 0 ? await this.usedBytes(temporaryPath) : 0;
    let freeBytes = Number.POSITIVE_INFINITY;
    if (minFreeDiskBytes > 0) {
      const disk = await statfs(this.temporaryDirectory);
      freeBytes = disk.bavail * disk.bsize;
    }
    const writtenBytes = (await stat(temporaryPath).catch(() => undefined))?.size ?? 0;
    return { otherBytes, freeBytes, writtenBytes };
  }

  /**
   * Refuses (507) an upload that would take the store past its budget, or its disk below the free space it must
   * keep, once `bytes` of it are written. Synchronous, so it can run on every chunk against the last measurement.
   */
  private checkRoom(room: Room, bytes: number, finalSizeKnown: boolean): void {
    const { maxStoreBytes = 0, minFreeDiskBytes = 0 } = this.limits;
    const what = finalSizeKnown ? `this upload of ${bytes} bytes` : `this upload (${bytes} bytes so far)`;
    if (maxStoreBytes > 0 && room.otherBytes + bytes > maxStoreBytes) {
      this.limits.onLimitRejection?.('store_bytes');
      throw errors.storeFull(
        `it holds ${room.otherBytes} bytes and ${what} would bring it to ${room.otherBytes + bytes}, more than GANTRY_MAX_STORE_BYTES (${maxStoreBytes})`,
      );
    }
    const freeAfter = room.freeBytes - Math.max(0, bytes - room.writtenBytes);
    if (minFreeDiskBytes > 0 && freeAfter < minFreeDiskBytes) {
      this.limits.onLimitRejection?.('disk_free');
      throw errors.storeFull(
        `${what} would leave ${Math.max(0, freeAfter)} bytes free on its disk, less than GANTRY_MIN_FREE_DISK_BYTES (${minFreeDiskBytes})`,
      );
    }
  }

  private pathOf(sha256: string): string {
    if (!sha256Pattern.test(sha256)) throw errors.internal(`not a sha256: ${sha256}`);
    return path.join(this.blobDirectory, sha256);
  }

  localPathOf(sha256: string): string {
    return this.pathOf(sha256);
  }

  async read(sha256: string): Promise<Readable> {
    const file = this.pathOf(sha256);
    // Opened before it is handed out, so a missing blob is an error here rather than on the stream.
    const handle = await open(file, 'r').catch(() => {
      throw errors.blobNotInStore(sha256, this.describeLocation());
    });
    return handle.createReadStream();
  }

  /**
   * Streams `source` into the store, hashing as it goes, with memory flat whatever the size. Room is checked
   * before the first byte (for `expectedBytes`, the Content-Length, when known) and again every 16 MiB.
   * @throws GantryError(PAYLOAD_TOO_LARGE) past `maxBytes`; GantryError(INSUFFICIENT_STORAGE, 507) past the store
   *   budget, below the free-space floor or on a full disk (ENOSPC); nothing is left behind on any failure.
   */
  async put(source: Readable, maxBytes: number, options: PutOptions = {}): Promise<StoredBlob> {
    const temporaryPath = path.join(this.temporaryDirectory, `${randomUUID()}.partial`);
    const limited = (this.limits.maxStoreBytes ?? 0) > 0 || (this.limits.minFreeDiskBytes ?? 0) > 0;
    const meter = new UploadMeter<Room>(
      maxBytes,
      declaredBytes(options.expectedBytes),
      limited
        ? {
            measure: () => this.measureRoom(temporaryPath),
            check: (room, bytes, finalSizeKnown) => this.checkRoom(room, bytes, finalSizeKnown),
            remeasureEveryBytes: recheckEveryBytes,
          }
        : undefined,
    );
    let output: WriteStream | undefined;
    try {
      await meter.checkBeforeStart();
      output = createWriteStream(temporaryPath, { flags: 'wx' });
      await pipeline(source, meter, output);
      const handle = await open(temporaryPath, 'r');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
      const blob = meter.blob();
      await options.beforePublish?.(blob);
      // The same bytes uploaded twice have one name: the rename replaces the file with identical content.
      await rename(temporaryPath, this.pathOf(blob.sha256));
      return blob;
    } catch (error) {
      // The file stream opens its file asynchronously: a pipeline that failed at once (a first chunk over the
      // limit) can reject before the file exists. Removing it only after the stream closed leaves nothing behind.
      if (output !== undefined && !output.closed) await new Promise<void>((resolve) => output!.once('close', () => resolve()));
      await rm(temporaryPath, { force: true });
      const code = (error as NodeJS.ErrnoException).code;
      if (!(error instanceof GantryError) && (code === 'ENOSPC' || code === 'EDQUOT')) {
        this.limits.onLimitRejection?.('disk_free');
        throw errors.storeFull(`its disk is full (${code} while writing the upload)`);
      }
      throw error;
    }
  }

  async exists(sha256: string): Promise<boolean> {
    return fileExists(this.pathOf(sha256));
  }

  /**
   * Removes a blob and every file derived from it: the optimized graphs workers cached for it, on any kind of
   * host (`cache/optimized/<host>/<sha256>-<level>.onnx`, and such a file still being written). Only the garbage
   * collection (blob-collector.ts) calls it, once no version and no upload has referenced the blob for its grace
   * period: a delete that removed bytes itself would race an upload of the same bytes.
   */
  async remove(sha256: string): Promise<void> {
    await rm(this.pathOf(sha256), { force: true });
    for (const folder of await listFolders(this.optimizedCacheDirectory)) {
      for (const name of await listNames(folder)) if (name.startsWith(`${sha256}-`)) await rm(path.join(folder, name), { force: true });
    }
  }

  /** Re-hashes a stored blob; false when it is missing or its bytes no longer match its name. */
  async verify(sha256: string): Promise<boolean> {
    const hash = createHash('sha256');
    try {
      await pipeline(createReadStream(this.pathOf(sha256)), hash);
    } catch {
      return false;
    }
    return hash.digest('hex') === sha256;
  }
}

/** The names in a folder; none when it does not exist (yet). */
async function listNames(folder: string): Promise<string[]> {
  try {
    return await readdir(folder);
  } catch {
    return [];
  }
}

/** The sub-folders of a folder, as paths; none when it does not exist. */
async function listFolders(folder: string): Promise<string[]> {
  try {
    const entries = await readdir(folder, { withFileTypes: true });
    return entries.filter((entry) => entry.isDirectory()).map((entry) => path.join(folder, entry.name));
  } catch {
    return [];
  }
}
