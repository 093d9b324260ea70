import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile, appendFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { FileModelStore } from '../../src/registry/file-model-store.js';
import { ErrorCode, GantryError } from '../../src/errors.js';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** A deterministic generated stream of `total` bytes in `chunkSize` chunks; hashes what it emits. */
function generatedStream(total: number, chunkSize = 64 * 1024, failAt?: number): { stream: Readable; hash: () => string } {
  const hash = createHash('sha256');
  let sent = 0;
  let counter = 0;
  const stream = new Readable({
    read() {
      if (failAt !== undefined && sent >= failAt) {
        this.destroy(new Error('source broke'));
        return;
      }
      if (sent >= total) {
        this.push(null);
        return;
      }
      const size = Math.min(chunkSize, total - sent);
      const chunk = Buffer.allocUnsafe(size);
      for (let offset = 0; offset + 4 <= size; offset += 4) chunk.writeUInt32LE((counter++ * 2654435761) >>> 0, offset);
      for (let offset = size - (size % 4); offset < size; offset++) chunk[offset] = offset & 0xff;
      hash.update(chunk);
      sent += size;
      this.push(chunk);
    },
  });
  return { stream, hash: () => hash.digest('hex') };
}

describe('FileModelStore', () => {
  let dataDirectory: string;
  let store: FileModelStore;

  beforeEach(async () => {
    dataDirectory = await mkdtemp(path.join(os.tmpdir(), 'gantry-store-test-'));
    store = new FileModelStore(dataDirectory);
    await store.init();
  });

  afterEach(async () => {
    await rm(dataDirectory, { recursive: true, force: true });
  });

  const blobs = () => readdir(path.join(dataDirectory, 'blobs', 'sha256'));
  const temporaries = () => readdir(path.join(dataDirectory, 'blobs', 'tmp'));

  test('put() of a small buffer stores it under its sha256', async () => {
    const bytes = Buffer.from('hello model');
    const stored = await store.put(Readable.from([bytes]), 1000);
    assert.equal(stored.sha256, createHash('sha256').update(bytes).digest('hex'));
    assert.equal(stored.size, bytes.byteLength);
    assert.deepEqual(await readFile(store.localPathOf(stored.sha256)), bytes);
    assert.deepEqual(await blobs(), [stored.sha256]);
    assert.deepEqual(await temporaries(), []);
    assert.equal(await store.exists(stored.sha256), true);
  });

  test('put() of an empty stream', async () => {
    const stored = await store.put(Readable.from([]), 1000);
    assert.equal(stored.size, 0);
    assert.equal(stored.sha256, createHash('sha256').digest('hex'));
  });

  test('put() exactly at maxBytes is accepted', async () => {
    const stored = await store.put(Readable.from([Buffer.alloc(100, 7)]), 100);
    assert.equal(stored.size, 100);
  });

  test('put() streams 50 MB with flat memory; sha256 and size correct', async () => {
    const total = 50 * 1024 * 1024;
    const source = generatedStream(total);
    // Collect garbage before each sample, so the numbers are live memory (what put() holds), not chunks
    // already written and waiting for the collector.
    gc();
    const before = process.memoryUsage();
    let peakRss = before.rss;
    let peakArrayBuffers = before.arrayBuffers;
    let samples = 0;
    const sampler = setInterval(() => {
      gc();
      const now = process.memoryUsage();
      peakRss = Math.max(peakRss, now.rss);
      peakArrayBuffers = Math.max(peakArrayBuffers, now.arrayBuffers);
      samples++;
    }, 20);
    let stored;
    try {
      stored = await store.put(source.stream, 100 * 1024 * 1024);
    } finally {
      clearInterval(sampler);
    }
    gc();
    const after = process.memoryUsage();
    assert.ok(samples > 0, 'memory was never sampled during the upload');
    peakRss = Math.max(peakRss, after.rss);
    peakArrayBuffers = Math.max(peakArrayBuffers, after.arrayBuffers);
    assert.equal(stored.size, total);
    assert.equal(stored.sha256, source.hash());
    assert.equal(await store.verify(stored.sha256), true);
    const megabyte = 1024 * 1024;
    assert.ok(
      peakArrayBuffers - before.arrayBuffers < 30 * megabyte,
      `arrayBuffers grew by ${((peakArrayBuffers - before.arrayBuffers) / megabyte).toFixed(1)} MB`,
    );
    assert.ok(peakRss - before.rss < 30 * megabyte, `rss grew by ${((peakRss - before.rss) / megabyte).toFixed(1)} MB`);
    assert.deepEqual(await temporaries(), []);
  });

  test('exceeding maxBytes rejects with PAYLOAD_TOO_LARGE and leaves nothing behind', async () => {
    const source = generatedStream(5 * 1024 * 1024);
    await assert.rejects(store.put(source.stream, 1024 * 1024 + 1), (error: unknown) => {
      assert.ok(error instanceof GantryError, String(error));
      assert.equal(error.code, ErrorCode.PayloadTooLarge);
      assert.equal(error.httpStatus, 413);
      return true;
    });
    assert.deepEqual(await blobs(), []);
    assert.deepEqual(await temporaries(), []);
  });

  test('one byte over maxBytes is refused', async () => {
    await assert.rejects(store.put(Readable.from([Buffer.alloc(101)]), 100), { code: ErrorCode.PayloadTooLarge });
    assert.deepEqual(await blobs(), []);
    assert.deepEqual(await temporaries(), []);
  });

  test('a source that errors mid-way leaves nothing behind', async () => {
    const source = generatedStream(10 * 1024 * 1024, 64 * 1024, 3 * 1024 * 1024);
    await assert.rejects(store.put(source.stream, 100 * 1024 * 1024), /source broke/);
    assert.deepEqual(await blobs(), []);
    assert.deepEqual(await temporaries(), []);
  });

  test('the same bytes twice give one blob', async () => {
    const first = await store.put(Readable.from([Buffer.from('same')]), 100);
    const second = await store.put(Readable.from([Buffer.from('sa'), Buffer.from('me')]), 100);
    assert.deepEqual(first, second);
    assert.deepEqual(await blobs(), [first.sha256]);
    assert.deepEqual(await temporaries(), []);
  });

  test('verify(): true for a good blob, false after corruption, false when missing', async () => {
    const stored = await store.put(Readable.from([Buffer.from('precious weights')]), 1000);
    assert.equal(await store.verify(stored.sha256), true);
    await writeFile(store.localPathOf(stored.sha256), 'precious weightz');
    assert.equal(await store.verify(stored.sha256), false);
    await writeFile(store.localPathOf(stored.sha256), 'precious weights');
    assert.equal(await store.verify(stored.sha256), true);
    await appendFile(store.localPathOf(stored.sha256), 'x');
    assert.equal(await store.verify(stored.sha256), false);
    assert.equal(await store.verify('c'.repeat(64)), false);
    assert.equal(await store.verify('not-a-sha'), false);
  });

  test('remove() deletes the blob and is idempotent', async () => {
    const stored = await store.put(Readable.from([Buffer.from('bye')]), 1000);
    await store.remove(stored.sha256);
    assert.equal(await store.exists(stored.sha256), false);
    assert.equal(await store.verify(stored.sha256), false);
    assert.deepEqual(await blobs(), []);
    await store.remove(stored.sha256);
  });

  test('beforePublish sees the hashed blob before it is published; a throw there publishes nothing', async () => {
    const bytes = Buffer.from('weights to publish');
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const seen: Array<{ sha256: string; size: number; publishedYet: boolean }> = [];
    const stored = await store.put(Readable.from([bytes]), 1000, {
      beforePublish: async (blob) => {
        seen.push({ ...blob, publishedYet: await store.exists(blob.sha256) });
      },
    });
    assert.deepEqual(seen, [{ sha256, size: bytes.byteLength, publishedYet: false }]);
    assert.deepEqual(stored, { sha256, size: bytes.byteLength });
    await store.remove(sha256);

    await assert.rejects(
      store.put(Readable.from([bytes]), 1000, {
        beforePublish: async () => {
          throw new Error('no reference could be taken');
        },
      }),
      /no reference could be taken/,
    );
    assert.deepEqual(await blobs(), []);
    assert.deepEqual(await temporaries(), []);
  });

  test('listBlobs() lists published blobs with their sizes, nothing else', async () => {
    const a = await store.put(Readable.from([Buffer.alloc(10, 1)]), 1000);
    const b = await store.put(Readable.from([Buffer.alloc(20, 2)]), 1000);
    await writeFile(path.join(dataDirectory, 'blobs', 'sha256', 'not-a-blob.txt'), 'x');
    const listed = (await store.listBlobs()).sort((left, right) => left.size - right.size);
    assert.deepEqual(listed, [a, b]);
  });

  test('pathOf() refuses anything but a sha256 (no path traversal)', () => {
    for (const bad of ['../../etc/passwd', 'A'.repeat(64), 'a'.repeat(63), `${'a'.repeat(64)}/x`, '']) {
      assert.throws(() => store.localPathOf(bad), { code: ErrorCode.Internal });
    }
    assert.equal(path.dirname(store.localPathOf('0'.repeat(64))), path.join(dataDirectory, 'blobs', 'sha256'));
  });
});
