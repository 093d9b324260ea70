/**
 * S3ModelStore against a real S3-compatible server (moto, support/s3-server.ts): round trips, a 200 MiB upload
 * streamed with flat memory, interrupted and refused uploads leaving no object and no multipart upload behind, the
 * store budget, the copy of objects too big for one CopyObject, missing and corrupted blobs, stale temporaries,
 * the start-up errors for wrong credentials, a missing bucket and an unreachable endpoint, and warm-up samples.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { ErrorCode, GantryError } from '../../src/errors.js';
import type { ModelStore } from '../../src/registry/model-store.js';
import { staleTemporaryFileMs, type StoreLimits } from '../../src/registry/file-model-store.js';
import { S3ModelStore, type S3StoreTuning } from '../../src/registry/s3-model-store.js';
import { freePort } from '../../src/runtime/free-port.js';
import { startS3Server, type S3Server } from '../../support/s3-server.js';

const bucketName = 'gantry-store-test';
const MiB = 1024 ** 2;

/** A stream of `total` random bytes in 64 KiB chunks, with no length known in advance. */
function randomStream(total: number): Readable {
  const chunks: Buffer[] = [];
  for (let sent = 0; sent < total; sent += 64 * 1024) chunks.push(randomBytes(Math.min(64 * 1024, total - sent)));
  return Readable.from(chunks);
}

/** V8's full garbage collection, which node exposes only with --expose-gc: turned on here for this test process. */
function exposedGarbageCollector(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** `bytes` as a stream of 64 KiB chunks. */
function randomStreamOf(bytes: Buffer): Readable {
  const chunks: Buffer[] = [];
  for (let start = 0; start < bytes.length; start += 64 * 1024) chunks.push(bytes.subarray(start, start + 64 * 1024));
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

describe('S3ModelStore (moto)', () => {
  let server: S3Server;
  before(async () => {
    server = await startS3Server();
    await server.createBucket(bucketName);
  });
  after(() => server.stop());

  /** A store under a prefix of its own, so tests never see each other's objects. */
  function newStore(limits: StoreLimits = {}, tuning: S3StoreTuning = {}, prefix = `test-${randomUUID()}`): S3ModelStore {
    const location = { bucket: bucketName, prefix, endpoint: server.endpoint, region: server.region, forcePathStyle: true, credentials: server.credentials };
    return new S3ModelStore(location, limits, tuning);
  }

  /** Every key of the store (relative) and every multipart upload under its prefix: what an upload may leave. */
  async function leftovers(store: S3ModelStore): Promise<{ keys: string[]; multipartUploads: string[] }> {
    const keys = (await store.bucket.list('')).map((object) => store.bucket.relative(object.key)).sort();
    const listed = await store.bucket.client.send(new ListMultipartUploadsCommand({ Bucket: bucketName }));
    const multipartUploads = (listed.Uploads ?? []).map((upload) => upload.Key!).filter((key) => key.startsWith(store.bucket.key('')));
    return { keys, multipartUploads };
  }

  test('round trip: put, exists, read, list, remove; the temporary is gone and the location names the bucket', async () => {
    const store = newStore();
    await store.init();
    const bytes = randomBytes(3 * MiB + 17);
    const blob = await store.put(Readable.from([bytes]), 100 * MiB);
    assert.deepEqual(blob, { sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length });
    assert.equal(await store.exists(blob.sha256), true);
    assert.ok((await buffer(await store.read(blob.sha256))).equals(bytes));
    assert.deepEqual(await store.listBlobs(), [blob]);
    assert.deepEqual(await leftovers(store), { keys: [`blobs/sha256/${blob.sha256}`], multipartUploads: [] });
    // The same bytes again: one blob.
    assert.deepEqual(await store.put(Readable.from([bytes]), 100 * MiB), blob);
    assert.equal((await store.listBlobs()).length, 1);
    await store.remove(blob.sha256);
    assert.equal(await store.exists(blob.sha256), false);
    assert.equal((store as ModelStore).localPathOf, undefined, 'an object store has no local path');
    assert.match(store.describeLocation(), new RegExp(`^s3://${bucketName}/test-[0-9a-f-]+/ \\(${server.endpoint}\\)$`));
    assert.doesNotMatch(store.describeLocation(), new RegExp(server.credentials.secretAccessKey));
  });

  test('a 200 MiB upload streams through with flat memory (bounded parts), and hashes right', async (context) => {
    const store = newStore();
    await store.init();
    const total = 200 * MiB;
    const expected = createHash('sha256');
    // Made as it is read, so the test itself holds one 1 MiB chunk at a time.
    const source = Readable.from(
      (function* () {
        for (let sent = 0; sent < total; sent += MiB) {
          const chunk = randomBytes(MiB);
          expected.update(chunk);
          yield chunk;
        }
      })(),
    );
    // Memory held, not garbage the collector has not reached yet: each sample follows a full collection.
    const collectGarbage = exposedGarbageCollector();
    collectGarbage();
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sampler = setInterval(() => {
      collectGarbage();
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 200);
    let blob;
    try {
      blob = await store.put(source, 1024 * MiB);
    } finally {
      clearInterval(sampler);
    }
    assert.deepEqual(blob, { sha256: expected.digest('hex'), size: total });
    const growth = peak - baseline;
    context.diagnostic(`RSS grew by ${Math.round(growth / MiB)} MiB (peak) while 200 MiB streamed`);
    // 8 MiB parts, two in flight, one being filled, plus what the SDK and GC keep around: far below 200 MiB.
    assert.ok(growth < 100 * MiB, `RSS grew by ${Math.round(growth / MiB)} MiB while 200 MiB streamed through`);
    assert.deepEqual(await leftovers(store), { keys: [`blobs/sha256/${blob.sha256}`], multipartUploads: [] });
    await store.remove(blob.sha256);
  });

  test('an interrupted upload (the source fails or is closed midway) leaves no object and no multipart upload behind', async () => {
    const store = newStore({}, { partSizeBytes: 5 * MiB });
    await store.init();
    const broken = new Error('the client went away');
    const source = Readable.from(
      (async function* () {
        for (let index = 0; index < 20; index++) yield randomBytes(MiB);
        // Let the first parts reach S3, so there is a multipart upload to abort.
        await new Promise((resolve) => setTimeout(resolve, 300));
        throw broken;
      })(),
    );
    await assert.rejects(store.put(source, 100 * MiB), (error) => error === broken);
    assert.deepEqual(await leftovers(store), { keys: [], multipartUploads: [] });

    // A client that closes its connection: the request stream is destroyed without an error of its own. That is
    // the client's doing, not a failure of S3 (no 503 blaming the store).
    let produced = 0;
    const cut = new Readable({
      read() {
        produced += MiB;
        if (produced > 12 * MiB) setTimeout(() => this.destroy(), 300);
        else this.push(randomBytes(MiB));
      },
    });
    await assert.rejects(
      store.put(cut, 100 * MiB),
      (error: NodeJS.ErrnoException) => !(error instanceof GantryError) && error.code === 'ERR_STREAM_PREMATURE_CLOSE',
    );
    assert.deepEqual(await leftovers(store), { keys: [], multipartUploads: [] });
  });

  test('past maxBytes: 413, and nothing left behind', async () => {
    const store = newStore({}, { partSizeBytes: 5 * MiB });
    await store.init();
    const refused = await refusal(store.put(randomStream(20 * MiB), 12 * MiB));
    assert.equal(refused.code, ErrorCode.PayloadTooLarge);
    assert.equal(refused.httpStatus, 413);
    assert.deepEqual(await leftovers(store), { keys: [], multipartUploads: [] });
  });

  test('beforePublish runs once the bytes are stored and hashed, before the blob has its name; a throw leaves nothing', async () => {
    const store = newStore();
    await store.init();
    const bytes = randomBytes(MiB);
    let seen: { sha256: string; size: number } | undefined;
    let publishedThen: boolean | undefined;
    let uploadsThen: string[] = [];
    const failure = new Error('reference refused');
    await assert.rejects(
      store.put(Readable.from([bytes]), 10 * MiB, {
        beforePublish: async (blob) => {
          seen = blob;
          publishedThen = await store.exists(blob.sha256);
          uploadsThen = (await leftovers(store)).keys;
          throw failure;
        },
      }),
      (error) => error === failure,
    );
    assert.deepEqual(seen, { sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length });
    assert.equal(publishedThen, false, 'not yet published under its sha256');
    assert.equal(uploadsThen.length, 1);
    assert.match(uploadsThen[0]!, /^uploads\/[0-9]{13}-[0-9a-f-]{36}$/, 'the bytes were waiting under a temporary key');
    assert.deepEqual(await leftovers(store), { keys: [], multipartUploads: [] });
  });

  test('store budget: 507 before the first byte (known size) and while streaming, counting blobs and uploads in progress', async () => {
    const rejections: string[] = [];
    const store = newStore({ maxStoreBytes: 15 * MiB, onLimitRejection: (limit) => rejections.push(limit) }, { partSizeBytes: 5 * MiB });
    await store.init();
    await store.put(randomStream(6 * MiB), 100 * MiB, { expectedBytes: 6 * MiB });
    assert.equal(await store.usedBytes(), 6 * MiB);

    const known = await refusal(store.put(randomStream(10 * MiB), 100 * MiB, { expectedBytes: 10 * MiB }));
    assert.equal(known.code, ErrorCode.InsufficientStorage);
    assert.equal(known.httpStatus, 507);
    assert.match(
      known.message,
      new RegExp(`holds ${6 * MiB} bytes and this upload of ${10 * MiB} bytes would bring it to ${16 * MiB}, more than GANTRY_MAX_STORE_BYTES`),
    );

    const streamed = await refusal(store.put(randomStream(10 * MiB), 100 * MiB));
    assert.match(streamed.message, /bytes so far/);

    // Parts of another upload in progress count: a 5 MiB part of someone else's multipart upload.
    const client = store.bucket.client;
    const otherKey = store.bucket.key(`uploads/${Date.now()}-${randomUUID()}`);
    const created = await client.send(new CreateMultipartUploadCommand({ Bucket: bucketName, Key: otherKey }));
    await client.send(new UploadPartCommand({ Bucket: bucketName, Key: otherKey, UploadId: created.UploadId, PartNumber: 1, Body: randomBytes(5 * MiB) }));
    assert.equal(await store.usedBytes(), 11 * MiB);
    const crowded = await refusal(store.put(randomStream(5 * MiB), 100 * MiB, { expectedBytes: 5 * MiB }));
    assert.match(crowded.message, new RegExp(`holds ${11 * MiB} bytes`));
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucketName, Key: otherKey, UploadId: created.UploadId }));
    assert.deepEqual(rejections, ['store_bytes', 'store_bytes', 'store_bytes']);
    assert.deepEqual((await leftovers(store)).multipartUploads, []);
  });

  test('a blob copied from a multipart upload (three parts, one CopyObject) reads back whole (no SDK checksum refusal)', async () => {
    const store = newStore({}, { partSizeBytes: 5 * MiB });
    await store.init();
    const bytes = randomBytes(11 * MiB);
    const blob = await store.put(randomStreamOf(bytes), 100 * MiB);
    assert.ok((await buffer(await store.read(blob.sha256))).equals(bytes));
  });

  test('an object over the single-copy limit is copied part by part (UploadPartCopy) and reads back whole', async () => {
    const store = newStore({}, { partSizeBytes: 5 * MiB, maxSingleCopyBytes: 5 * MiB, copyPartBytes: 5 * MiB });
    await store.init();
    const bytes = randomBytes(12 * MiB + 3);
    const blob = await store.put(Readable.from([bytes]), 100 * MiB);
    assert.ok((await buffer(await store.read(blob.sha256))).equals(bytes));
    assert.deepEqual(await leftovers(store), { keys: [`blobs/sha256/${blob.sha256}`], multipartUploads: [] });
  });

  test('a missing blob is blobNotInStore naming it and the bucket; a corrupted one is read as stored (the reader verifies)', async () => {
    const store = newStore();
    await store.init();
    const missing = 'd'.repeat(64);
    const error = await refusal(store.read(missing));
    assert.equal(error.code, ErrorCode.NotFound);
    assert.match(error.message, new RegExp(`${missing} is not in the model store \\(s3://${bucketName}/`));
    assert.equal(await store.exists(missing), false);

    const bytes = randomBytes(64 * 1024);
    const blob = await store.put(Readable.from([bytes]), MiB);
    const other = Buffer.from('not the model any more');
    await store.bucket.client.send(new PutObjectCommand({ Bucket: bucketName, Key: store.bucket.key(`blobs/sha256/${blob.sha256}`), Body: other }));
    const read = await buffer(await store.read(blob.sha256));
    assert.ok(read.equals(other));
    assert.notEqual(createHash('sha256').update(read).digest('hex'), blob.sha256);
  });

  test('init removes temporaries and multipart uploads of uploads that died, and keeps young ones', async () => {
    const store = newStore();
    await store.init();
    const client = store.bucket.client;
    const old = Date.now() - staleTemporaryFileMs - 60_000;
    const staleObject = store.bucket.key(`uploads/${old}-${randomUUID()}`);
    const youngObject = store.bucket.key(`uploads/${Date.now()}-${randomUUID()}`);
    const staleUpload = store.bucket.key(`uploads/${old}-${randomUUID()}`);
    const youngUpload = store.bucket.key(`uploads/${Date.now()}-${randomUUID()}`);
    for (const key of [staleObject, youngObject]) await client.send(new PutObjectCommand({ Bucket: bucketName, Key: key, Body: 'x' }));
    for (const key of [staleUpload, youngUpload]) await client.send(new CreateMultipartUploadCommand({ Bucket: bucketName, Key: key }));
    // moto reports a LastModified of now for the objects: only the multipart uploads (dated 2010 by moto) can go.
    await store.init();
    const after = await leftovers(store);
    assert.deepEqual(after.multipartUploads, [youngUpload], 'the stale multipart upload was aborted, the young one kept');
    assert.ok(after.keys.includes(store.bucket.relative(youngObject)));
    assert.ok(after.keys.includes(store.bucket.relative(staleObject)), 'an object the server says was written just now is not stale');
    const listed = await client.send(new ListMultipartUploadsCommand({ Bucket: bucketName, Prefix: youngUpload }));
    for (const upload of listed.Uploads ?? [])
      await client.send(new AbortMultipartUploadCommand({ Bucket: bucketName, Key: upload.Key, UploadId: upload.UploadId }));
  });

  test('warm-up samples: put, get, list with the time stored, a second put makes it young again, remove', async () => {
    const store = newStore();
    const samples = store.warmupSamples;
    const sha256 = 'e'.repeat(64);
    assert.equal(await samples.get(sha256), undefined);
    await samples.put(sha256, '{"inputs":[]}');
    assert.equal(await samples.get(sha256), '{"inputs":[]}');
    const [first, ...rest] = await samples.list();
    assert.deepEqual(rest, []);
    assert.equal(first!.sha256, sha256);
    assert.ok(Math.abs(first!.storedAt - Date.now()) < 60_000, `storedAt ${first!.storedAt} is about now`);
    // S3's LastModified has whole seconds.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await samples.put(sha256, '{"inputs":[]}');
    const [again] = await samples.list();
    assert.ok(again!.storedAt > first!.storedAt, 'storing it again refreshed its time');
    assert.deepEqual((await leftovers(store)).keys, [`warmup-samples/${sha256}.json`]);
    await samples.remove(sha256);
    assert.deepEqual(await samples.list(), []);
    assert.equal(await samples.get(sha256), undefined);
  });

  test('blobsNamedByRecords and warmupSamplesNamedByRecords cover every deployment (queue prefix) in the store, not tombstones', async () => {
    const store = newStore();
    const first = store.registryRecords('first');
    const second = store.registryRecords('second');
    await first.writeVersion({ name: 'm', version: '1', sha256: 'a'.repeat(64), size: 1, createdAt: '' });
    await first.writeWarmupSample('m', '1', '1'.repeat(64));
    await first.writeVersion({ name: 'm', version: '2', sha256: 'b'.repeat(64), size: 1, createdAt: '' });
    await first.writeWarmupSample('m', '2', '2'.repeat(64));
    await first.markDeleted('m', '2');
    await second.writeVersion({ name: 'Other', version: '1', sha256: 'c'.repeat(64), size: 1, createdAt: '' });
    assert.deepEqual([...(await store.blobsNamedByRecords())].sort(), ['a'.repeat(64), 'c'.repeat(64)]);
    assert.deepEqual([...(await store.warmupSamplesNamedByRecords())], ['1'.repeat(64)]);
  });
});

describe('S3ModelStore start-up checks (moto checking signatures)', () => {
  let server: S3Server;
  before(async () => {
    server = await startS3Server({ checkCredentials: true });
    await server.createBucket(bucketName);
  });
  after(() => server.stop());

  const storeWith = (overrides: { bucket?: string; endpoint?: string; secretAccessKey?: string; accessKeyId?: string }) =>
    new S3ModelStore({
      bucket: overrides.bucket ?? bucketName,
      prefix: 'gantry',
      endpoint: overrides.endpoint ?? server.endpoint,
      region: server.region,
      forcePathStyle: true,
      credentials: {
        accessKeyId: overrides.accessKeyId ?? server.credentials.accessKeyId,
        secretAccessKey: overrides.secretAccessKey ?? server.credentials.secretAccessKey,
      },
    });

  test('the right credentials and bucket pass the check init makes first', async () => {
    // init() itself goes on to list uploads under the prefix, a query holding '/', which moto cannot verify when it
    // checks signatures (support/s3-server.ts); the suite above runs init() whole against a moto that does not check.
    await storeWith({}).bucket.checkAccess();
  });

  test('a wrong secret or an unknown key: init names the bucket, the endpoint and the variables to fix, never the secret', async () => {
    const wrongSecret = 'definitely-not-the-secret-0123456789';
    for (const overrides of [{ secretAccessKey: wrongSecret }, { accessKeyId: 'AKIAUNKNOWNKEY000000', secretAccessKey: wrongSecret }]) {
      const error = await storeWith(overrides)
        .init()
        .then(
          () => assert.fail('init should refuse'),
          (thrown: unknown) => thrown as Error,
        );
      assert.match(error.message, new RegExp(`S3 bucket "${bucketName}" at ${server.endpoint} refused the credentials`));
      assert.match(error.message, /AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
      assert.ok(!error.message.includes(wrongSecret), error.message);
    }
  });

  test('a bucket that does not exist: init says so and names GANTRY_S3_BUCKET', async () => {
    await assert.rejects(
      storeWith({ bucket: 'no-such-bucket-here' }).init(),
      /S3 bucket "no-such-bucket-here" at .* does not exist: create it, or set GANTRY_S3_BUCKET/,
    );
  });

  test('an endpoint nobody answers on: init says it could not reach it and names GANTRY_S3_ENDPOINT', async () => {
    const endpoint = `http://127.0.0.1:${await freePort()}`;
    await assert.rejects(
      storeWith({ endpoint }).init(),
      new RegExp(`Could not reach the S3 bucket "${bucketName}" at ${endpoint} \\(.+\\): check GANTRY_S3_ENDPOINT`),
    );
  });
});

describe('S3ModelStore when the server goes away mid-upload', () => {
  test('the upload fails (no hang) with 503 naming the store and the cause, and its source is released; a read is 503 too', async (context) => {
    const server = await startS3Server();
    try {
      await server.createBucket(bucketName);
      const store = new S3ModelStore(
        { bucket: bucketName, prefix: 'gone', endpoint: server.endpoint, region: server.region, forcePathStyle: true, credentials: server.credentials },
        {},
        { partSizeBytes: 5 * MiB },
      );
      await store.init();
      let sent = 0;
      const source = new Readable({
        read() {
          sent += MiB;
          if (sent === 12 * MiB) void server.stop();
          this.push(sent > 200 * MiB ? null : randomBytes(MiB));
        },
      });
      const started = Date.now();
      const error = await refusal(store.put(source, 1024 * MiB));
      context.diagnostic(error.message);
      assert.equal(error.httpStatus, 503, 'S3 failing is a 503 to retry, not a 500');
      assert.equal(error.retryAfterSeconds, 5);
      assert.match(
        error.message,
        /The model store \(s3:\/\/gantry-store-test\/gone\/ .*\) failed during the upload \(.*(ECONNREFUSED|ECONNRESET|socket|connect).*\); retry shortly/i,
      );
      assert.ok(Date.now() - started < 30_000, `failed after ${Date.now() - started} ms`);
      assert.ok(source.destroyed, 'the source (the client request) is released');
      assert.ok(sent < 200 * MiB, `the source was not read to its end (${sent / MiB} MiB read)`);
      const unread = await refusal(store.read('f'.repeat(64)));
      assert.equal(unread.httpStatus, 503, 'an unreachable store is not "the blob is missing"');
      assert.match(unread.message, /failed reading blobs\/sha256\/f{64} \(/);
      const unlisted = await refusal(store.registryRecords('p').readAll());
      assert.equal(unlisted.httpStatus, 503, 'registry records too');
      assert.match(unlisted.message, /failed listing registry\/p\/models\/ \(/);
    } finally {
      await server.stop();
    }
  });
});
