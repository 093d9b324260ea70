/**
 * Hostile model files are refused with 422 and a clear message, leave nothing in the blob store and do not hurt
 * the worker; an upload cut off mid-stream leaves no partial file and no version behind.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import path from 'node:path';
import { DataType, encodeModel, makeGraph, makeModel, makeNode, makeValueInfo, onnx } from '../../support/onnx-builder.js';
import { fixturePath, startGantry, uploadModel, withAdminKey, type GantryProcess } from '../helpers/gantry-process.js';
import { Cleanup, childPids, describeReply, infer, isAlive, mlpRequest, sleep, timedCall, waitUntil, workerChildOf } from '../helpers/reliability-harness.js';

const cleanup = new Cleanup();
let gantry: GantryProcess;
let workerPid: number;
after(() => cleanup.run());

const list = async (directory: string) => (await readdir(directory).catch(() => [] as string[])).sort();
const blobs = () => list(path.join(gantry.dataDirectory, 'blobs', 'sha256'));
const partials = () => list(path.join(gantry.dataDirectory, 'blobs', 'tmp'));

before(async () => {
  gantry = await startGantry({ env: { GANTRY_SHUTDOWN_TIMEOUT_MS: '3000' } });
  cleanup.add(() => gantry.cleanup());
  workerPid = workerChildOf(gantry, cleanup);
  const upload = await uploadModel(gantry.baseUrl, 'mlp', fixturePath('tiny-mlp.onnx'));
  assert.equal(upload.status, 201, JSON.stringify(upload.body));
});

const hostile: Array<[string, RegExp]> = [
  ['random-bytes.onnx', /protobuf|parse|not a loadable/i],
  ['truncated.onnx', /protobuf|parse|not a loadable/i],
  ['empty.onnx', /empty/i],
  ['absurd-dims.onnx', /dim|shape|2147483647|large/i],
  ['external-data-escape.onnx', /external|path|not a loadable/i],
];

for (const [file, message] of hostile) {
  test(`${file} → 422 with a clear message; nothing stored; the worker unharmed`, { timeout: 30_000 }, async () => {
    const blobsBefore = await blobs();
    const name = `evil-${file.replace('.onnx', '')}`;
    const reply = await uploadModel(gantry.baseUrl, name, fixturePath(file));
    assert.equal(reply.status, 422, `${file}: ${JSON.stringify(reply.body)}`);
    assert.equal(typeof reply.body?.error, 'string');
    assert.match(reply.body.error, message, reply.body.error);
    // A refused upload's file goes at the garbage collection's next pass (no grace period: nobody used it).
    await waitUntil(async () => JSON.stringify(await blobs()) === JSON.stringify(blobsBefore), 5000, 'no blob left in blobs/sha256');
    assert.deepEqual(await partials(), [], 'blobs/tmp is empty');
    const version = await timedCall(`${gantry.baseUrl}/v1/models/${name}`);
    assert.equal(version.status, 404, `no version registered: ${describeReply(version)}`);
    assert.ok(isAlive(workerPid) && (await timedCall(`${gantry.workerUrl}/ready`)).status === 200, 'the worker is alive and ready');
    assert.deepEqual(childPids(gantry.child.pid!), [workerPid], 'the worker was never restarted');
    const good = await infer(gantry.baseUrl, 'mlp', mlpRequest());
    assert.equal(good.status, 200, describeReply(good));
  });
}

test('a 2 GB upload cut off after ~50 MB: no partial file, no version, API alive', { timeout: 60_000 }, async () => {
  const blobsBefore = await blobs();
  const url = new URL(`${gantry.baseUrl}/v1/models/cutoff/versions`);
  const chunk = Buffer.alloc(1024 * 1024, 0x42);
  const sent = await new Promise<number>((resolve) => {
    const upload = request({
      host: url.hostname,
      port: url.port,
      path: url.pathname,
      method: 'POST',
      headers: withAdminKey({ 'content-type': 'application/octet-stream', 'content-length': String(2 * 1024 ** 3 - 1) }),
    });
    upload.on('error', () => undefined);
    upload.on('response', (response) => response.resume());
    let bytes = 0;
    const pump = () => {
      while (bytes < 50 * 1024 * 1024) {
        bytes += chunk.byteLength;
        if (!upload.write(chunk)) {
          upload.once('drain', pump);
          return;
        }
      }
      // Let the server see the bytes, then vanish mid-body.
      setTimeout(() => {
        upload.destroy();
        resolve(bytes);
      }, 200);
    };
    pump();
  });
  assert.ok(sent >= 50 * 1024 * 1024);
  // While the body streamed, the partial file existed; within 2 s of the cut it must be gone.
  const goneAfter = await waitUntil(async () => (await partials()).length === 0, 2000, 'blobs/tmp to be emptied after the cut-off upload', 50);
  console.log(`# malicious: partial upload removed ${goneAfter} ms after the socket was destroyed`);
  await sleep(200);
  assert.deepEqual(await partials(), []);
  assert.deepEqual(await blobs(), blobsBefore, 'no blob from the cut-off upload');
  const model = await timedCall(`${gantry.baseUrl}/v1/models/cutoff`);
  assert.equal(model.status, 404, `no version created: ${describeReply(model)}`);
  assert.equal((await timedCall(`${gantry.baseUrl}/v2/health/live`)).status, 200, 'the API is alive');
  const good = await infer(gantry.baseUrl, 'mlp', mlpRequest());
  assert.equal(good.status, 200, describeReply(good));
});

test(
  "a model whose external data names another model's blob (its sha256, which GET /v1/models lists) → 422; the other model's bytes never come back",
  { timeout: 30_000 },
  async () => {
    const listing = await timedCall(`${gantry.baseUrl}/v1/models/mlp`);
    const victimSha256 = listing.body.versions[0].sha256 as string;
    // The victim's first 64 bytes, as 16 floats, would be the output of this model on a zero input.
    const thief = makeGraph({
      name: 'external_data_thief',
      inputs: [makeValueInfo('input', DataType.FLOAT, ['batch', 16])],
      outputs: [makeValueInfo('output', DataType.FLOAT, ['batch', 16])],
      initializers: [
        {
          name: 'B',
          dataType: DataType.FLOAT,
          dims: [16],
          dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
          externalData: [
            { key: 'location', value: victimSha256 },
            { key: 'offset', value: '0' },
            { key: 'length', value: '64' },
          ],
        },
      ],
      nodes: [makeNode('Add', ['input', 'B'], ['output'])],
    });
    const file = path.join(gantry.dataDirectory, 'thief.onnx');
    await writeFile(file, encodeModel(makeModel(thief, "Initializer B is external data at another model's sha256.")));
    const blobsBefore = await blobs();
    const reply = await uploadModel(gantry.baseUrl, 'thief', file);
    assert.equal(reply.status, 422, `the thief must not load: ${JSON.stringify(reply.body)}`);
    assert.match(reply.body.error, /external data/i);
    assert.doesNotMatch(reply.body.error, new RegExp(gantry.dataDirectory), 'no server path in the message');
    await waitUntil(async () => JSON.stringify(await blobs()) === JSON.stringify(blobsBefore), 5000, 'nothing of the thief stored');
    assert.deepEqual(await list(path.join(gantry.dataDirectory, 'blobs', 'loading')), [], 'no load folder left behind');
    const good = await infer(gantry.baseUrl, 'mlp', mlpRequest());
    assert.equal(good.status, 200, describeReply(good));
  },
);
