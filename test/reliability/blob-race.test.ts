/**
 * Issue 11, the blob race: a DELETE of model A racing an upload of the same bytes as model B used to remove the
 * shared file between B's publication and B's reference (18 of 320 valid uploads got 422 "the stored blob is
 * missing"). Now an upload holds a reference before its file is published and only the garbage collection
 * removes files. The race runs 1,000 times against a real API and worker, with the collection as eager as it can
 * be (no grace period, a pass every 20 ms), so it also races every removal it makes: no 422, every B answers.
 * A second test checks a deleted model's file stays for the whole grace period and goes after it.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fixturePath, startGantry, uploadModel } from '../helpers/gantry-process.js';
import { Cleanup, describeReply, mlpRequest, sleep, timedCall, waitUntil, type TimedReply } from '../helpers/reliability-harness.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

const iterations = 1000;

async function upload(baseUrl: string, name: string, bytes: Buffer, query = ''): Promise<TimedReply> {
  return timedCall(`${baseUrl}/v1/models/${name}/versions${query}`, {
    body: bytes,
    headers: { 'content-type': 'application/octet-stream' },
    timeoutMs: 30_000,
  });
}

async function blobFiles(dataDirectory: string): Promise<string[]> {
  return (await readdir(path.join(dataDirectory, 'blobs', 'sha256')).catch(() => [] as string[])).sort();
}

test(
  `DELETE of model A racing an upload of the same bytes as model B, ${iterations} times: never a 422, every B loads and answers`,
  { timeout: 600_000 },
  async () => {
    const gantry = await startGantry({ env: { GANTRY_BLOB_GC_GRACE_MS: '0', GANTRY_BLOB_GC_INTERVAL_MS: '20' } });
    cleanup.add(() => gantry.cleanup());
    const bytes = await readFile(fixturePath('tiny-mlp.onnx'));
    const request = JSON.stringify(mlpRequest(3));

    const baseline = await uploadModel(gantry.baseUrl, 'baseline', fixturePath('tiny-mlp.onnx'));
    assert.equal(baseline.status, 201, JSON.stringify(baseline.body));
    const expected = await timedCall(`${gantry.baseUrl}/v2/models/baseline/infer`, { body: request });
    assert.equal(expected.status, 200, describeReply(expected));
    const deletedBaseline = await timedCall(`${gantry.baseUrl}/v1/models/baseline`, { method: 'DELETE' });
    assert.equal(deletedBaseline.status, 204);

    const failures: string[] = [];
    const startedAt = Date.now();
    /** One race: A holds the bytes; B's upload of the same bytes starts, and A's DELETE follows after 0–3 ms. */
    const race = async (round: number, lane: number) => {
      // A is not waited for (202): its load may still run when it is deleted, one more thing racing.
      const nameA = `race-a-${lane}`;
      const a = await upload(gantry.baseUrl, nameA, bytes, '?wait=false');
      if (a.status !== 202) {
        failures.push(`round ${round}: upload of A ${describeReply(a)}`);
        return;
      }
      // Each B has a name of its own: the race is about bytes, and re-creating a just-deleted name is another matter.
      const nameB = `race-b-${round}`;
      const uploadB = upload(gantry.baseUrl, nameB, bytes);
      await sleep(round % 4);
      const [b, deleteA] = await Promise.all([uploadB, timedCall(`${gantry.baseUrl}/v1/models/${nameA}`, { method: 'DELETE' })]);
      if (deleteA.status !== 204) failures.push(`round ${round}: DELETE of A ${describeReply(deleteA)}`);
      if (b.status !== 201) {
        failures.push(`round ${round}: upload of B ${describeReply(b)}`);
        return;
      }
      const answer = await timedCall(`${gantry.baseUrl}/v2/models/${nameB}/versions/${b.body.version}/infer`, { body: request, timeoutMs: 10_000 });
      if (answer.status !== 200) failures.push(`round ${round}: inference on B v${b.body.version} ${describeReply(answer)}`);
      else if (JSON.stringify(answer.body.outputs) !== JSON.stringify(expected.body.outputs)) failures.push(`round ${round}: B answered other outputs`);
      const deleteB = await timedCall(`${gantry.baseUrl}/v1/models/${nameB}`, { method: 'DELETE' });
      if (deleteB.status !== 204) failures.push(`round ${round}: DELETE of B ${describeReply(deleteB)}`);
    };
    // Two lanes race at once over the same bytes, so one lane's deletes and collections also race the other's uploads.
    const lanes = 2;
    await Promise.all(
      Array.from({ length: lanes }, async (_, lane) => {
        for (let round = lane; round < iterations && failures.length < 5; round += lanes) await race(round, lane);
      }),
    );
    console.log(`# blob-race: ${iterations} rounds in ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
    assert.deepEqual(failures, []);

    // With every model deleted and no grace period, the collection empties the store.
    await waitUntil(async () => (await blobFiles(gantry.dataDirectory)).length === 0, 10_000, 'the garbage collection to remove the last blob');
    const metrics = await timedCall(`${gantry.baseUrl}/metrics`);
    const collected = Number(/^gantry_blob_gc_collected_blobs_total (\d+)/m.exec(String(metrics.body))?.[1] ?? 0);
    assert.ok(collected >= 1, `gantry_blob_gc_collected_blobs_total counts the removals (${collected})`);
  },
);

test("a deleted model's file stays for the whole grace period, then the garbage collection removes it", { timeout: 60_000 }, async () => {
  const graceMs = 3000;
  const gantry = await startGantry({ env: { GANTRY_BLOB_GC_GRACE_MS: String(graceMs), GANTRY_BLOB_GC_INTERVAL_MS: '200' } });
  cleanup.add(() => gantry.cleanup());
  const kept = await uploadModel(gantry.baseUrl, 'kept', fixturePath('identity-float.onnx'));
  const doomed = await uploadModel(gantry.baseUrl, 'doomed', fixturePath('tiny-mlp.onnx'));
  assert.equal(kept.status, 201, JSON.stringify(kept.body));
  assert.equal(doomed.status, 201, JSON.stringify(doomed.body));
  const sha256 = doomed.body.sha256 as string;

  const deletedAt = Date.now();
  const deleted = await timedCall(`${gantry.baseUrl}/v1/models/doomed`, { method: 'DELETE' });
  assert.equal(deleted.status, 204, describeReply(deleted));
  let goneAt: number | undefined;
  while (Date.now() - deletedAt < graceMs + 10_000) {
    const present = (await blobFiles(gantry.dataDirectory)).includes(sha256);
    if (!present) {
      goneAt = Date.now();
      break;
    }
    await sleep(50);
  }
  assert.ok(goneAt !== undefined, 'the file was removed within 10 s after the grace period');
  // The grace period is measured from the DELETE, which began at deletedAt: never removed before its end.
  assert.ok(goneAt - deletedAt >= graceMs, `removed ${goneAt - deletedAt} ms after the DELETE, before the ${graceMs} ms grace period ended`);
  assert.ok((await blobFiles(gantry.dataDirectory)).includes(kept.body.sha256 as string), 'the file a live version uses stays');
  const stillServed = await timedCall(`${gantry.baseUrl}/v2/models/kept/infer`, {
    body: JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] }),
  });
  assert.equal(stillServed.status, 200, describeReply(stillServed));
  assert.deepEqual(stillServed.body.outputs[0].data, [1, 2, 3, 4]);
});
