/**
 * FileModelStore's room limits on a real filesystem: the store budget (before and while an upload streams), the
 * free-space floor (statfs), a really full disk (ENOSPC on a 1 MiB tmpfs, where the test may mount one), derived
 * optimized-model files removed with their blob, and stale temporary files removed at init.
 */
import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, statfs, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ErrorCode, GantryError } from '../../src/errors.js';
import { FileModelStore, staleTemporaryFileMs } from '../../src/registry/file-model-store.js';

/** A stream of `total` random bytes in 64 KiB chunks, with no length known in advance. */
function randomStream(total: number): Readable {
  const chunks: Buffer[] = [];
  for (let sent = 0; sent < total; sent += 64 * 1024) chunks.push(randomBytes(Math.min(64 * 1024, total - sent)));
  return Readable.from(chunks);
}

async function refusal(promise: Promise<unknown>): Promise<GantryError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof GantryError, `a GantryError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected a refusal');
}

describe('FileModelStore limits', () => {
  let dataDirectory: string;
  const rejections: string[] = [];
  const temporaries = () => readdir(path.join(dataDirectory, 'blobs', 'tmp'));
  const blobs = () => readdir(path.join(dataDirectory, 'blobs', 'sha256'));

  beforeEach(async () => {
    dataDirectory = await mkdtemp(path.join(os.tmpdir(), 'gantry-store-limits-'));
    rejections.length = 0;
  });
  afterEach(() => rm(dataDirectory, { recursive: true, force: true }));

  test('store budget: refused before writing (known size) and while streaming (unknown size), with the numbers', async () => {
    const store = new FileModelStore(dataDirectory, { maxStoreBytes: 300_000, onLimitRejection: (limit) => rejections.push(limit) });
    await store.init();
    const first = await store.put(Readable.from([randomBytes(200_000)]), 10 * 1024 ** 2, { expectedBytes: 200_000 });
    assert.equal(await store.usedBytes(), 200_000);

    const known = await refusal(store.put(randomStream(150_000), 10 * 1024 ** 2, { expectedBytes: 150_000 }));
    assert.equal(known.code, ErrorCode.InsufficientStorage);
    assert.equal(known.httpStatus, 507);
    assert.match(known.message, /holds 200000 bytes and this upload of 150000 bytes would bring it to 350000, more than GANTRY_MAX_STORE_BYTES \(300000\)/);

    const streamed = await refusal(store.put(randomStream(1024 ** 2), 10 * 1024 ** 2));
    assert.equal(streamed.code, ErrorCode.InsufficientStorage);
    assert.match(streamed.message, /bytes so far/);
    assert.deepEqual(rejections, ['store_bytes', 'store_bytes']);
    assert.deepEqual(await blobs(), [first.sha256], 'nothing of the refused uploads stored');
    assert.deepEqual(await temporaries(), []);

    // What fits still goes in.
    await store.put(randomStream(90_000), 10 * 1024 ** 2);
    assert.equal((await blobs()).length, 2);
  });

  test('free-space floor: refused when the upload would leave less than GANTRY_MIN_FREE_DISK_BYTES free', async () => {
    const disk = await statfs(os.tmpdir());
    const free = disk.bavail * disk.bsize;
    const store = new FileModelStore(dataDirectory, { minFreeDiskBytes: free + 1024 ** 3, onLimitRejection: (limit) => rejections.push(limit) });
    await store.init();
    const error = await refusal(store.put(randomStream(1000), 1024 ** 2));
    assert.equal(error.code, ErrorCode.InsufficientStorage);
    assert.match(error.message, /bytes free on its disk, less than GANTRY_MIN_FREE_DISK_BYTES/);
    assert.deepEqual(rejections, ['disk_free']);
    assert.deepEqual(await temporaries(), []);
    // A floor the disk has room for lets it through.
    const roomy = new FileModelStore(dataDirectory, { minFreeDiskBytes: 1024 });
    await roomy.put(randomStream(1000), 1024 ** 2, { expectedBytes: 1000 });
  });

  test('a full disk (ENOSPC) answers 507, not 500, and leaves no temporary file', async (t) => {
    const mountPoint = path.join(dataDirectory, 'small-disk');
    await mkdir(mountPoint);
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mountPoint], { encoding: 'utf8' });
    if (mounted.status !== 0) {
      t.skip(`cannot mount a small tmpfs here (${mounted.stderr.trim()})`);
      return;
    }
    try {
      const store = new FileModelStore(mountPoint, { onLimitRejection: (limit) => rejections.push(limit) });
      await store.init();
      const error = await refusal(store.put(randomStream(4 * 1024 ** 2), 100 * 1024 ** 2));
      assert.equal(error.code, ErrorCode.InsufficientStorage, error.message);
      assert.match(error.message, /ENOSPC/);
      assert.deepEqual(rejections, ['disk_free']);
      assert.deepEqual(await readdir(path.join(mountPoint, 'blobs', 'tmp')), []);
    } finally {
      spawnSync('umount', [mountPoint]);
    }
  });

  test('remove() takes the optimized-model cache files of that blob (every host folder) and only those', async () => {
    const store = new FileModelStore(dataDirectory);
    await store.init();
    const blob = await store.put(randomStream(1000), 1024 ** 2);
    const other = 'f'.repeat(64);
    const cacheRoot = path.join(dataDirectory, 'cache', 'optimized');
    for (const host of ['host-a', 'host-b']) {
      await mkdir(path.join(cacheRoot, host), { recursive: true });
      await writeFile(path.join(cacheRoot, host, `${blob.sha256}-all.onnx`), 'x');
      await writeFile(path.join(cacheRoot, host, `${blob.sha256}-basic.onnx.123.partial`), 'x');
      await writeFile(path.join(cacheRoot, host, `${other}-all.onnx`), 'x');
    }
    await store.remove(blob.sha256);
    assert.deepEqual(await blobs(), []);
    for (const host of ['host-a', 'host-b']) assert.deepEqual(await readdir(path.join(cacheRoot, host)), [`${other}-all.onnx`]);
  });

  test('init() removes temporary files of dead uploads and optimizations, not recent ones', async () => {
    const temporaryDirectory = path.join(dataDirectory, 'blobs', 'tmp');
    const cacheFolder = path.join(dataDirectory, 'cache', 'optimized', 'host-a');
    await mkdir(temporaryDirectory, { recursive: true });
    await mkdir(cacheFolder, { recursive: true });
    const old = new Date(Date.now() - staleTemporaryFileMs - 60_000);
    for (const [folder, name] of [
      [temporaryDirectory, 'dead.partial'],
      [cacheFolder, `${'a'.repeat(64)}-all.onnx.99.partial`],
    ] as const) {
      await writeFile(path.join(folder, name), 'x');
      await utimes(path.join(folder, name), old, old);
    }
    await writeFile(path.join(temporaryDirectory, 'live.partial'), 'x');
    await writeFile(path.join(cacheFolder, `${'a'.repeat(64)}-all.onnx`), 'x');
    await new FileModelStore(dataDirectory).init();
    assert.deepEqual(await readdir(temporaryDirectory), ['live.partial']);
    assert.deepEqual(await readdir(cacheFolder), [`${'a'.repeat(64)}-all.onnx`]);
  });
});
