/**
 * Warm-up samples (issue 14): an upload may carry an OIP inference request in the multipart field `warmup`, which
 * runs on every instance on every worker before that worker serves the version. Silero VAD (ISC, shipped in
 * devDependencies; see third-party-models.test.ts) fails the zero-filled warm-up while healthy, so it shows each case.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { repositoryRoot, startGantry, inferJson, withAdminKey, type GantryProcess } from '../helpers/gantry-process.js';
import { Cleanup, sharedDeployment } from '../helpers/reliability-harness.js';
import { sampleValue } from '../helpers/metrics-text.js';
import { randomFloats } from './support.js';

const sileroPath = path.join(repositoryRoot, 'node_modules/@ricky0123/vad-web/dist/silero_vad_legacy.onnx');
const maxWarmupBytes = 64 * 1024;

/** A VAD request: 512 samples of audio at 16 kHz and the recurrent state h/c (batch 1). */
function vadRequest() {
  return {
    inputs: [
      { name: 'input', datatype: 'FP32', shape: [1, 512], data: randomFloats(11, 512, -0.5, 0.5) },
      { name: 'sr', datatype: 'INT64', shape: [], data: [16000] },
      { name: 'h', datatype: 'FP32', shape: [2, 1, 64], data: randomFloats(12, 128, -0.2, 0.2) },
      { name: 'c', datatype: 'FP32', shape: [2, 1, 64], data: randomFloats(13, 128, -0.2, 0.2) },
    ],
  };
}

/** Uploads Silero VAD as multipart: the `warmup` field (when given) first, then the file, or the other way round. */
async function uploadVad(
  baseUrl: string,
  name: string,
  warmup?: string,
  query = '',
  order: 'sample-first' | 'file-first' = 'sample-first',
): Promise<{ status: number; body: Record<string, unknown> }> {
  const form = new FormData();
  if (warmup !== undefined && order === 'sample-first') form.append('warmup', warmup);
  form.append('file', new Blob([await readFile(sileroPath)]), 'silero_vad_legacy.onnx');
  if (warmup !== undefined && order === 'file-first') form.append('warmup', warmup);
  const response = await fetch(`${baseUrl}/v1/models/${name}/versions${query}`, { method: 'POST', headers: withAdminKey(), body: form });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function getVersion(baseUrl: string, name: string, version: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${baseUrl}/v1/models/${name}/versions/${version}`, { headers: withAdminKey() });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** The warm-up log lines (pino JSON) a process printed. */
function warmupLines(gantry: GantryProcess): Array<{ warmupSample: string; instances: number; warmup: { status: string } }> {
  return gantry
    .output()
    .split('\n')
    .filter((line) => line.includes('"warm-up ran on every instance"'))
    .map((line) => JSON.parse(line) as { warmupSample: string; instances: number; warmup: { status: string } });
}

describe('warm-up samples', () => {
  let gantry: GantryProcess;

  before(async () => {
    gantry = await startGantry({ env: { GANTRY_MAX_WARMUP_BYTES: String(maxWarmupBytes) } });
  });
  after(async () => {
    await gantry?.cleanup();
  });

  test('Silero VAD with a valid sample: READY, warm-up ok, and it serves', async () => {
    const upload = await uploadVad(gantry.baseUrl, 'vad-sample', JSON.stringify(vadRequest()));
    assert.equal(upload.status, 201, JSON.stringify(upload.body));
    assert.equal(upload.body.state, 'READY');
    assert.deepEqual(upload.body.warmup, { status: 'ok' });
    const reply = await inferJson(gantry.baseUrl, 'vad-sample', vadRequest());
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
  });

  test('Silero VAD without a sample: the zero-filled warm-up fails, so READY with warm-up skipped and the reason', async () => {
    const upload = await uploadVad(gantry.baseUrl, 'vad-zeros');
    assert.equal(upload.status, 201, JSON.stringify(upload.body));
    assert.equal(upload.body.state, 'READY');
    const warmup = upload.body.warmup as { status: string; reason?: string };
    assert.equal(warmup.status, 'skipped');
    assert.match(warmup.reason ?? '', /zero-filled warm-up inputs failed/);
    assert.equal((await inferJson(gantry.baseUrl, 'vad-zeros', vadRequest())).status, 200);
  });

  test('a sample that does not fit the signature: 422 naming the input, and no version is kept', async () => {
    const sample = vadRequest();
    sample.inputs[0]!.name = 'audio';
    const upload = await uploadVad(gantry.baseUrl, 'vad-misfit', JSON.stringify(sample));
    assert.equal(upload.status, 422, JSON.stringify(upload.body));
    const error = String(upload.body.error);
    assert.match(error, /warm-up sample failed/);
    assert.match(error, /Unknown input 'audio'/);
    assert.equal((await getVersion(gantry.baseUrl, 'vad-misfit', '1')).status, 404);
  });

  test('with ?wait=false a failing sample leaves the version UNAVAILABLE with the reason', async () => {
    const sample = vadRequest();
    sample.inputs[1]!.datatype = 'INT32';
    const upload = await uploadVad(gantry.baseUrl, 'vad-misfit-nowait', JSON.stringify(sample), '?wait=false');
    assert.equal(upload.status, 202, JSON.stringify(upload.body));
    let version = await getVersion(gantry.baseUrl, 'vad-misfit-nowait', String(upload.body.version));
    while (version.body.state === 'LOADING') {
      await new Promise((resolve) => setTimeout(resolve, 100));
      version = await getVersion(gantry.baseUrl, 'vad-misfit-nowait', String(upload.body.version));
    }
    assert.equal(version.body.state, 'UNAVAILABLE', JSON.stringify(version.body));
    assert.match(String(version.body.reason), /warm-up sample failed: .*'sr': expected datatype INT64 but got INT32/);
  });

  test('a sample that is not an inference request: 400 before the file is stored', async () => {
    const notJson = await uploadVad(gantry.baseUrl, 'vad-bad-json', '{"inputs": [');
    assert.equal(notJson.status, 400, JSON.stringify(notJson.body));
    assert.match(String(notJson.body.error), /warm-up sample is not valid JSON/);
    const noInputs = await uploadVad(gantry.baseUrl, 'vad-bad-json', '{"outputs": []}');
    assert.equal(noInputs.status, 400, JSON.stringify(noInputs.body));
    assert.match(String(noInputs.body.error), /warm-up sample is not an inference request.*inputs/);
    assert.equal((await getVersion(gantry.baseUrl, 'vad-bad-json', '1')).status, 404);
  });

  test('a sample after the file counts the same; a bad one there is 400 and keeps nothing; two samples or no file: 400', async () => {
    const after = await uploadVad(gantry.baseUrl, 'vad-sample-after', JSON.stringify(vadRequest()), '', 'file-first');
    assert.equal(after.status, 201, JSON.stringify(after.body));
    assert.deepEqual(after.body.warmup, { status: 'ok' });
    const badAfter = await uploadVad(gantry.baseUrl, 'vad-bad-after', '{"inputs": [', '', 'file-first');
    assert.equal(badAfter.status, 400, JSON.stringify(badAfter.body));
    assert.match(String(badAfter.body.error), /warm-up sample is not valid JSON/);
    assert.equal((await getVersion(gantry.baseUrl, 'vad-bad-after', '1')).status, 404);
    // An empty field (a form sends every field it shows) is no sample: the zero-filled warm-up runs.
    const empty = await uploadVad(gantry.baseUrl, 'vad-empty-sample', '');
    assert.equal(empty.status, 201, JSON.stringify(empty.body));
    assert.equal((empty.body.warmup as { status: string }).status, 'skipped');

    const twice = new FormData();
    twice.append('warmup', JSON.stringify(vadRequest()));
    twice.append('warmup', JSON.stringify(vadRequest()));
    twice.append('file', new Blob([await readFile(sileroPath)]), 'silero_vad_legacy.onnx');
    const twoSamples = await fetch(`${gantry.baseUrl}/v1/models/vad-two-samples/versions`, { method: 'POST', headers: withAdminKey(), body: twice });
    assert.equal(twoSamples.status, 400);
    assert.match(((await twoSamples.json()) as { error: string }).error, /one warm-up sample/);

    const noFile = new FormData();
    noFile.append('warmup', JSON.stringify(vadRequest()));
    noFile.append('model', new Blob([await readFile(sileroPath)]), 'silero_vad_legacy.onnx');
    const wrongField = await fetch(`${gantry.baseUrl}/v1/models/vad-no-file/versions`, { method: 'POST', headers: withAdminKey(), body: noFile });
    assert.equal(wrongField.status, 400);
    assert.match(((await wrongField.json()) as { error: string }).error, /field 'file', not 'model'/);
    assert.equal((await getVersion(gantry.baseUrl, 'vad-two-samples', '1')).status, 404);
  });

  test('a sample over GANTRY_MAX_WARMUP_BYTES: 413 naming the limit, counted in gantry_limit_rejections_total', async () => {
    const sample = vadRequest();
    sample.inputs[0]!.data = randomFloats(14, 20_000, -0.5, 0.5);
    sample.inputs[0]!.shape = [1, 20_000];
    const text = JSON.stringify(sample);
    assert.ok(text.length > maxWarmupBytes);
    const upload = await uploadVad(gantry.baseUrl, 'vad-large-sample', text);
    assert.equal(upload.status, 413, JSON.stringify(upload.body));
    assert.match(String(upload.body.error), /GANTRY_MAX_WARMUP_BYTES \(65536 bytes\)/);
    const metrics = await (await fetch(`${gantry.baseUrl}/metrics`, { headers: withAdminKey() })).text();
    const line = metrics.split('\n').find((row) => row.startsWith('gantry_limit_rejections_total{limit="warmup_bytes"}'));
    assert.ok(line !== undefined && Number(line.slice(line.lastIndexOf(' ') + 1)) >= 1, 'the rejection is counted');
  });

  test('POST …/warmup on an existing version: the sample is stored and runs on a reload; a failing one makes it UNAVAILABLE', async () => {
    const upload = await uploadVad(gantry.baseUrl, 'vad-later');
    assert.equal(upload.status, 201, JSON.stringify(upload.body));
    assert.equal((upload.body.warmup as { status: string }).status, 'skipped');
    const post = (body: unknown) =>
      fetch(`${gantry.baseUrl}/v1/models/vad-later/versions/1/warmup`, {
        method: 'POST',
        headers: withAdminKey({ 'content-type': 'application/json' }),
        body: JSON.stringify(body),
      }).then(async (response) => ({ status: response.status, body: (await response.json()) as Record<string, unknown> }));

    const good = await post(vadRequest());
    assert.equal(good.status, 200, JSON.stringify(good.body));
    assert.equal(good.body.state, 'READY');
    assert.deepEqual(good.body.warmup, { status: 'ok' });

    const misfit = vadRequest();
    misfit.inputs.pop();
    const bad = await post(misfit);
    assert.equal(bad.status, 422, JSON.stringify(bad.body));
    assert.match(String(bad.body.error), /warm-up sample failed: .*Missing input 'c'/);
    const unavailable = await getVersion(gantry.baseUrl, 'vad-later', '1');
    assert.equal(unavailable.body.state, 'UNAVAILABLE');
    assert.equal((await inferJson(gantry.baseUrl, 'vad-later', vadRequest(), '1')).status, 503);

    const again = await post(vadRequest());
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal(again.body.state, 'READY');
    assert.equal((await inferJson(gantry.baseUrl, 'vad-later', vadRequest(), '1')).status, 200);

    const large = vadRequest();
    large.inputs[0]!.data = randomFloats(15, 20_000, -0.5, 0.5);
    const tooLarge = await post(large);
    assert.equal(tooLarge.status, 413, JSON.stringify(tooLarge.body));
    assert.match(String(tooLarge.body.error), /GANTRY_MAX_WARMUP_BYTES/);
    assert.equal((await post({ inputs: [] })).status, 400);
    const missing = await fetch(`${gantry.baseUrl}/v1/models/vad-later/versions/9/warmup`, {
      method: 'POST',
      headers: withAdminKey({ 'content-type': 'application/json' }),
      body: JSON.stringify(vadRequest()),
    });
    assert.equal(missing.status, 404);
  });
});

test('two workers: the sample runs on every instance of each worker before that worker serves the version', { timeout: 120_000 }, async () => {
  const cleanup = new Cleanup();
  try {
    const shared = await sharedDeployment(cleanup, 'warmup');
    const env = { LOG_LEVEL: 'info' };
    const api = await startGantry({ ...shared, command: 'api', env });
    cleanup.add(() => api.stop('SIGKILL'));
    const first = await startGantry({ ...shared, command: 'worker', env });
    cleanup.add(() => first.stop('SIGKILL'));
    const upload = await uploadVad(api.baseUrl, 'vad-two', JSON.stringify(vadRequest()));
    assert.equal(upload.status, 201, JSON.stringify(upload.body));
    assert.deepEqual(upload.body.warmup, { status: 'ok' });
    const [loadedOnFirst] = warmupLines(first);
    assert.ok(loadedOnFirst !== undefined, 'the first worker logged its warm-up');
    assert.equal(loadedOnFirst.instances, 1);
    assert.equal(loadedOnFirst.warmup.status, 'ok');
    assert.match(loadedOnFirst.warmupSample, /^[0-9a-f]{64}$/);

    // Two instances from now on, so "every instance" is more than the first. The second worker never saw the load
    // job: with the first one gone, it loads the version for an inference job, and must run the sample on both its
    // instances before answering.
    const config = await fetch(`${api.baseUrl}/v1/models/vad-two/config`, {
      method: 'PUT',
      headers: withAdminKey({ 'content-type': 'application/json' }),
      body: JSON.stringify({ instances: 2 }),
    });
    assert.ok(config.status < 300, await config.text());
    const second = await startGantry({ ...shared, command: 'worker', env });
    cleanup.add(() => second.stop('SIGKILL'));
    assert.deepEqual(warmupLines(second), []);
    await first.stop();
    const reply = await inferJson(api.baseUrl, 'vad-two', vadRequest());
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    const [loadedOnSecond] = warmupLines(second);
    assert.ok(loadedOnSecond !== undefined, `the second worker logged its warm-up:\n${second.output().slice(-2000)}`);
    assert.deepEqual(loadedOnSecond, { ...loadedOnSecond, warmupSample: loadedOnFirst.warmupSample, instances: 2, warmup: { status: 'ok' } });
    // Each worker counts its warm-ups by input and status.
    const exposition = await (await fetch(`${second.workerUrl}/metrics`)).text();
    assert.equal(sampleValue(exposition, 'gantry_worker_warmups_total', { input: 'sample', status: 'ok' }), 1);
    assert.equal(sampleValue(exposition, 'gantry_worker_warmup_duration_seconds_count', { input: 'sample' }), 1);
  } finally {
    await cleanup.run();
  }
});
