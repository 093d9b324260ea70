import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { errors } from '../errors.js';

const sha256Pattern = /^[0-9a-f]{64}$/;

/** True when something exists at `file` (any stat error counts as absent). */
export async function fileExists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

export interface StoredBlob {
  sha256: string;
  size: number;
}

/**
 * Content-addressed model store on the local (or a shared) filesystem. A blob's path is derived only from its
 * sha256, never from a model name. Writes go to a temporary file, are fsynced and renamed into place, so a
 * crash at any point leaves either the whole blob or none of it.
 */
export class FileModelStore {
  private readonly blobDirectory: string;
  private readonly temporaryDirectory: string;

  constructor(dataDirectory: string) {
    this.blobDirectory = path.join(dataDirectory, 'blobs', 'sha256');
    this.temporaryDirectory = path.join(dataDirectory, 'blobs', 'tmp');
  }

  async init(): Promise<void> {
    await mkdir(this.blobDirectory, { recursive: true });
    await mkdir(this.temporaryDirectory, { recursive: true });
  }

  pathOf(sha256: string): string {
    if (!sha256Pattern.test(sha256)) throw errors.internal(`not a sha256: ${sha256}`);
    return path.join(this.blobDirectory, sha256);
  }

  /**
   * Streams `source` into the store, hashing as it goes, with memory flat whatever the size.
   * @throws GantryError(PAYLOAD_TOO_LARGE) past `maxBytes`; nothing is left behind on any failure.
   */
  async put(source: Readable, maxBytes: number): Promise<StoredBlob> {
    const temporaryPath = path.join(this.temporaryDirectory, `${randomUUID()}.partial`);
    const hash = createHash('sha256');
    let size = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        size += chunk.byteLength;
        if (size > maxBytes) {
          callback(errors.uploadTooLarge(maxBytes));
          return;
        }
        hash.update(chunk);
        callback(null, chunk);
      },
    });
    try {
      await pipeline(source, meter, createWriteStream(temporaryPath, { flags: 'wx' }));
      const handle = await open(temporaryPath, 'r');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
      const sha256 = hash.digest('hex');
      await rename(temporaryPath, this.pathOf(sha256));
      return { sha256, size };
    } catch (error) {
      await rm(temporaryPath, { force: true });
      throw error;
    }
  }

  async exists(sha256: string): Promise<boolean> {
    return fileExists(this.pathOf(sha256));
  }

  async remove(sha256: string): Promise<void> {
    await rm(this.pathOf(sha256), { force: true });
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
