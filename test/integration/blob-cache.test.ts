/**
 * Issue 15, the worker's local blob cache (src/worker/blob-cache.ts) over a store that must be read through
 * `read()` (a real file store with its local paths hidden, standing in for an object store): each blob is fetched
 * and verified once per worker, a corrupted or missing one is refused with the reason, copies stay within the
 * budget by removing the least recently used ones no session uses, and a restarted worker re-verifies what an
 * earlier run left before using it.
 */
import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { createLogger } from '../../src/logger.js';
import { FileModelStore } from '../../src/registry/file-model-store.js';
import type { ModelStore } from '../../src/registry/model-store.js';
import { BlobCache, type BlobCacheOptions } from '../../src/worker/blob-cache.js';
import { GantryError } from '../../src/errors.js';

/** The file store as a remote one: no local paths, so the cache must copy every blob through read(). */
function remoteView(store: FileModelStore): ModelStore & { reads: number } {
  const view = Object.create(store) as ModelStore & { reads: number };
  view.reads = 0;
  Object.defineProperty(view, 'localPathOf', { value: undefined });
  view.read = async (sha256: string) => {
    view.reads++;
    return store.read(sha256);
  };
  return view;
}

describe('BlobCache', () => {
  let directory: string;
  let store: FileModelStore;
  let remote: ModelStore & { reads: number };
  let verifications: string[];
  let evictedBytes: number[];
  let inUse: Set<string>;
  const cacheDirectory = () => path.join(directory, 'worker', 'cache', 'blobs');

  const cache = (options: Partial<BlobCacheOptions> = {}) =>
    new BlobCache(remote, {
      directory: cacheDirectory(),
      maxBytes: 0,
      isInUse: (sha256) => inUse.has(sha256),
      onVerification: (outcome) => verifications.push(outcome),
      onEviction: (bytes) => evictedBytes.push(bytes),
      logger: createLogger({ LOG_LEVEL: 'silent' }, 'test'),
      ...options,
    });
  const put = async (bytes: Buffer) => (await store.put(Readable.from([bytes]), 1024 ** 3)).sha256;

  beforeEach(async () => {
    directory = await mkdtemp(path.join(os.tmpdir(), 'gantry-blob-cache-'));
    store = new FileModelStore(path.join(directory, 'store'));
    await store.init();
    remote = remoteView(store);
    verifications = [];
    evictedBytes = [];
    inUse = new Set();
  });
  afterEach(() => rm(directory, { recursive: true, force: true }));

  test('a blob is fetched and verified once, then served from the copy', async () => {
    const bytes = randomBytes(50_000);
    const sha256 = await put(bytes);
    const blobs = cache();
    const [first, second] = await Promise.all([blobs.localFile(sha256), blobs.localFile(sha256)]);
    assert.equal(first, second);
    assert.equal(await blobs.localFile(sha256), first);
    assert.equal(remote.reads, 1, 'concurrent and later asks share one fetch');
    assert.deepEqual(verifications, ['ok']);
    assert.equal(first, path.join(cacheDirectory(), sha256));
    assert.equal(blobs.cachedBytes, bytes.length);
    // After an unload the bytes are hashed again (from the copy, not fetched again).
    blobs.forgetVerification(sha256);
    await blobs.localFile(sha256);
    assert.equal(remote.reads, 1);
    assert.deepEqual(verifications, ['ok', 'ok']);
  });

  test('a corrupted object is refused with the reason and leaves no copy; a missing one names the store', async () => {
    const sha256 = await put(randomBytes(10_000));
    await writeFile(path.join(directory, 'store', 'blobs', 'sha256', sha256), randomBytes(10_000));
    const blobs = cache();
    await assert.rejects(blobs.localFile(sha256), (error: unknown) => {
      assert.ok(error instanceof GantryError);
      assert.match(error.message, /does not match its sha256 .*corrupted in the store/);
      return true;
    });
    assert.deepEqual(await readdir(cacheDirectory()), [], 'neither a copy nor a partial file is left');
    const missing = 'e'.repeat(64);
    await assert.rejects(blobs.localFile(missing), /missing from the store/);
    assert.deepEqual(verifications, ['mismatch', 'missing']);
  });

  test('past the budget the least recently used copies no session uses go; one in use stays', async () => {
    const [a, b, c] = [await put(randomBytes(40_000)), await put(randomBytes(40_000)), await put(randomBytes(40_000))];
    const blobs = cache({ maxBytes: 100_000 });
    await blobs.localFile(a);
    await new Promise((resolve) => setTimeout(resolve, 5));
    await blobs.localFile(b);
    inUse.add(a);
    await blobs.localFile(c);
    // a is older than b but in use: b goes.
    assert.deepEqual((await readdir(cacheDirectory())).sort(), [a, c].sort());
    assert.deepEqual(evictedBytes, [40_000]);
    assert.ok(blobs.cachedBytes <= 100_000);
    await blobs.localFile(b);
    assert.equal(remote.reads, 4, 'an evicted copy is fetched again when needed');
  });

  test('a restarted worker finds the copies of its earlier run, re-verifies each before use, and replaces a damaged one', async () => {
    const [good, damaged] = [await put(randomBytes(20_000)), await put(randomBytes(20_000))];
    const earlier = cache();
    await earlier.localFile(good);
    await earlier.localFile(damaged);
    await writeFile(path.join(cacheDirectory(), damaged), randomBytes(20_000));
    await writeFile(path.join(cacheDirectory(), `.${good}.leftover.partial`), 'half');
    remote.reads = 0;
    verifications = [];

    const restarted = cache();
    await restarted.localFile(good);
    assert.equal(remote.reads, 0, 'the good copy is used without fetching');
    await restarted.localFile(damaged);
    assert.equal(remote.reads, 1, 'the damaged copy is fetched again');
    assert.deepEqual(verifications, ['ok', 'mismatch', 'ok']);
    assert.deepEqual((await readdir(cacheDirectory())).sort(), [damaged, good].sort(), 'the partial file of the dead run is gone');
  });

  test('over a local store the blob is used in place, verified once', async () => {
    const sha256 = await put(randomBytes(10_000));
    const blobs = new BlobCache(store, {
      directory: cacheDirectory(),
      maxBytes: 1,
      isInUse: () => false,
      onVerification: (outcome) => verifications.push(outcome),
      logger: createLogger({ LOG_LEVEL: 'silent' }, 'test'),
    });
    const [first] = await Promise.all([blobs.localFile(sha256), blobs.localFile(sha256)]);
    assert.equal(first, store.localPathOf(sha256));
    await blobs.localFile(sha256);
    assert.deepEqual(verifications, ['ok']);
    assert.equal(blobs.cachedBytes, 0, 'nothing is copied');
  });
});
