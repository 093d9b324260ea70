import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ErrorCode, GantryError, errors } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ModelStore } from '../registry/model-store.js';

const sha256Pattern = /^[0-9a-f]{64}$/;

export interface BlobCacheOptions {
  /** Where copies of blobs from a remote store go (`<data>/cache/blobs`), on this machine. */
  directory: string;
  /** GANTRY_MODEL_CACHE_BYTES: the copies this worker keeps; past it, copies no loaded session uses go, oldest use first. 0: no bound. */
  maxBytes: number;
  /** Whether a loaded session (or a load in progress) uses the blob: such a copy is never removed. */
  isInUse: (sha256: string) => boolean;
  /** Told of each verification (a blob hashed and compared with its name) and its outcome. */
  onVerification?: (outcome: 'ok' | 'mismatch' | 'missing') => void;
  /** Where files derived from a blob (`<sha256>-…`: optimized graphs) live; they go with its copy. */
  derivedDirectory?: string;
  /** Told of each copy fetched from the store and each copy removed for room. */
  onFetch?: (bytes: number) => void;
  onEviction?: (bytes: number) => void;
  logger: Logger;
}

interface CachedCopy {
  bytes: number;
  lastUsedAt: number;
}

/**
 * A worker's model files, by sha256, each verified once per worker process: the store's own file when the store is
 * local (a folder on this machine, `localPathOf`), otherwise a copy fetched from the store into `directory` and
 * hashed as it arrives. A verified blob is never hashed again (not on a reload, not on a settings change); a copy
 * that fails verification is removed and the version gets the reason. Copies are bounded by `maxBytes`: past it,
 * those no loaded session uses go, least recently used first (the optimized graphs derived from them too, which
 * live beside them in the worker's cache).
 */
export class BlobCache {
  private readonly verified = new Set<string>();
  private readonly copies = new Map<string, CachedCopy>();
  private readonly fetching = new Map<string, Promise<string>>();
  private scanned: Promise<void> | undefined;

  constructor(
    private readonly store: ModelStore,
    private readonly options: BlobCacheOptions,
  ) {}

  /**
   * A local file holding the blob's bytes, verified against its name.
   * @throws GantryError(INVALID_MODEL) when the blob is missing from the store or its bytes do not match the name.
   */
  async localFile(sha256: string): Promise<string> {
    if (!sha256Pattern.test(sha256)) throw errors.internal(`not a sha256: ${sha256.slice(0, 70)}`);
    const localPath = this.store.localPathOf?.(sha256);
    if (localPath !== undefined && this.verified.has(sha256)) return localPath;
    // Concurrent loads of one blob share one verification (and, for a remote store, one download).
    let fetching = this.fetching.get(sha256);
    if (fetching === undefined) {
      fetching = (localPath === undefined ? this.copyOf(sha256) : this.verifyInPlace(localPath, sha256)).finally(() => this.fetching.delete(sha256));
      this.fetching.set(sha256, fetching);
    }
    return fetching;
  }

  /**
   * The blob is hashed again before its next use: an operator unloaded its model (a reload is the way to have the
   * bytes checked again), or this worker saw it fail.
   */
  forgetVerification(sha256: string): void {
    this.verified.delete(sha256);
  }

  /** A blob whose version was deleted: its copy goes unless a session still uses it. */
  async discard(sha256: string): Promise<void> {
    this.verified.delete(sha256);
    if (this.copies.has(sha256) && !this.options.isInUse(sha256)) await this.removeCopy(sha256);
  }

  /** Bytes of the copies kept now. */
  get cachedBytes(): number {
    let total = 0;
    for (const copy of this.copies.values()) total += copy.bytes;
    return total;
  }

  private async verifyInPlace(localPath: string, sha256: string): Promise<string> {
    await this.verify(localPath, sha256);
    this.verified.add(sha256);
    return localPath;
  }

  private async copyOf(sha256: string): Promise<string> {
    await (this.scanned ??= this.scanExisting());
    const file = this.copyPath(sha256);
    const copy = this.copies.get(sha256);
    if (copy !== undefined) {
      // A copy from an earlier run of this worker is hashed once before its first use in this one.
      if (!this.verified.has(sha256)) {
        try {
          await this.verify(file, sha256);
          this.verified.add(sha256);
        } catch {
          await this.removeCopy(sha256);
          return this.fetch(sha256);
        }
      }
      copy.lastUsedAt = Date.now();
      await utimes(file, new Date(), new Date()).catch(() => undefined);
      return file;
    }
    return this.fetch(sha256);
  }

  /** Streams the blob from the store into a temporary file, hashing it on the way; renamed into place only when it matches. */
  private async fetch(sha256: string): Promise<string> {
    await mkdir(this.options.directory, { recursive: true });
    const temporary = path.join(this.options.directory, `.${sha256}.${randomUUID()}.partial`);
    const hash = createHash('sha256');
    let bytes = 0;
    try {
      let source;
      try {
        source = await this.store.read(sha256);
      } catch (error) {
        // Only a blob the store does not have is the version's fault; a store that is away (503) is retried later.
        if (!(error instanceof GantryError && error.code === ErrorCode.NotFound)) throw error;
        this.options.onVerification?.('missing');
        throw errors.invalidModel(`the model file is missing from the store: ${error.message}`);
      }
      source.on('data', (chunk: Buffer) => {
        bytes += chunk.byteLength;
        hash.update(chunk);
      });
      await pipeline(source, createWriteStream(temporary, { flags: 'wx' }));
      if (hash.digest('hex') !== sha256) {
        this.options.onVerification?.('mismatch');
        throw errors.invalidModel(`the stored blob does not match its sha256 ${sha256} (corrupted in the store); upload the model again`);
      }
      this.options.onVerification?.('ok');
      await rename(temporary, this.copyPath(sha256));
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    }
    this.verified.add(sha256);
    this.copies.set(sha256, { bytes, lastUsedAt: Date.now() });
    this.options.onFetch?.(bytes);
    await this.makeRoom(sha256);
    return this.copyPath(sha256);
  }

  /** Removes copies no session uses, least recently used first, until the copies fit (the one just fetched stays). */
  private async makeRoom(keep: string): Promise<void> {
    if (this.options.maxBytes <= 0) return;
    const candidates = [...this.copies.entries()].filter(([sha256]) => sha256 !== keep).sort((first, second) => first[1].lastUsedAt - second[1].lastUsedAt);
    for (const [sha256] of candidates) {
      if (this.cachedBytes <= this.options.maxBytes) return;
      if (this.options.isInUse(sha256) || this.fetching.has(sha256)) continue;
      await this.removeCopy(sha256);
    }
    if (this.cachedBytes > this.options.maxBytes) {
      this.options.logger.warn(
        { cachedBytes: this.cachedBytes, maxBytes: this.options.maxBytes },
        'the model cache is over GANTRY_MODEL_CACHE_BYTES: the models in use need more; raise it or serve fewer models per worker',
      );
    }
  }

  private async removeCopy(sha256: string): Promise<void> {
    const copy = this.copies.get(sha256);
    this.copies.delete(sha256);
    this.verified.delete(sha256);
    await rm(this.copyPath(sha256), { force: true });
    const derived = this.options.derivedDirectory;
    if (derived !== undefined) {
      for (const name of await readdir(derived).catch(() => [] as string[])) {
        if (name.startsWith(`${sha256}-`)) await rm(path.join(derived, name), { force: true });
      }
    }
    if (copy !== undefined) this.options.onEviction?.(copy.bytes);
  }

  /** Learns the copies an earlier run of this worker left (by their sizes and times); partial ones are removed. */
  private async scanExisting(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.options.directory);
    } catch {
      return;
    }
    for (const name of names) {
      const file = path.join(this.options.directory, name);
      if (name.endsWith('.partial')) {
        await rm(file, { force: true });
        continue;
      }
      if (!sha256Pattern.test(name)) continue;
      const info = await stat(file).catch(() => undefined);
      if (info !== undefined) this.copies.set(name, { bytes: info.size, lastUsedAt: info.mtimeMs });
    }
  }

  private async verify(file: string, sha256: string): Promise<void> {
    const hash = createHash('sha256');
    try {
      await pipeline(createReadStream(file), hash);
    } catch {
      this.options.onVerification?.('missing');
      throw errors.invalidModel(`the stored blob ${sha256} is missing from the model store; upload the model again`);
    }
    if (hash.digest('hex') !== sha256) {
      this.options.onVerification?.('mismatch');
      throw errors.invalidModel(`the stored blob does not match its sha256 ${sha256} (corrupted in the store); upload the model again`);
    }
    this.options.onVerification?.('ok');
  }

  private copyPath(sha256: string): string {
    return path.join(this.options.directory, sha256);
  }
}
