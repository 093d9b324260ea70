/**
 * Worker pools (issue 15) with real processes: one `gantry api` and workers with different GANTRY_WORKER_MODELS
 * (`mlp*` and `other*`) on one Redis prefix and data directory, real onnxruntime. Each model is served only by its
 * pool (the workers' own request counters say which ran it); a model no running worker serves is refused at once
 * (503, Retry-After, the reason naming the pools), is not ready and says why, and an upload of one stays LOADING
 * (202 at once) with the reason in its version detail; starting a matching worker makes it serve, the API never
 * restarted.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fixturePath, startGantry, uploadModel, type GantryProcess } from '../helpers/gantry-process.js';
import { sampleValue } from '../helpers/metrics-text.js';
import { infer, mlpRequest, sleep, timedCall, waitUntil } from '../helpers/reliability-harness.js';

/** Far below GANTRY_INFER_TIMEOUT_MS (30 s) and GANTRY_LOAD_TIMEOUT_MS (120 s): a refusal must not wait for either. */
const fastMs = 3000;
/** The doorbell look-back of the worker started late (GANTRY_MODEL_QUEUE_IDLE_MS, at least 3 x GANTRY_JOB_LOCK_MS). */
const lookBackMs = 3000;
const identityRequest = { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 2], data: [1, 2] }] };

describe('worker pools', { timeout: 180_000 }, () => {
  let api: GantryProcess;
  const workers = new Map<string, GantryProcess>();

  async function startWorker(name: string, models: string, env: Record<string, string> = {}): Promise<GantryProcess> {
    const worker = await startGantry({
      command: 'worker',
      redisUrl: api.redisUrl,
      prefix: api.prefix,
      dataDirectory: api.dataDirectory,
      env: { GANTRY_WORKER_MODELS: models, ...env },
    });
    workers.set(name, worker);
    return worker;
  }

  /** Requests of `model` a worker finished with success, from its own /metrics. */
  async function servedOn(worker: GantryProcess, model: string): Promise<number> {
    const exposition = await (await fetch(`${worker.workerUrl}/metrics`)).text();
    return sampleValue(exposition, 'gantry_worker_requests_total', { model, version: '1', outcome: 'success' });
  }

  const ready = (model: string) => timedCall(`${api.baseUrl}/v2/models/${model}/ready`);
  const versionDetail = (model: string, version: string) => timedCall(`${api.baseUrl}/v1/models/${model}/versions/${version}`);

  before(async () => {
    api = await startGantry({ command: 'api' });
    await startWorker('mlp', 'mlp*');
    await startWorker('other', 'other*');
  });

  after(async () => {
    for (const worker of workers.values()) await worker.stop();
    await api?.cleanup();
  });

  test('each model is loaded and served by its own pool only', async () => {
    const mlpUpload = await uploadModel(api.baseUrl, 'mlp-small', fixturePath('tiny-mlp.onnx'));
    assert.equal(mlpUpload.status, 201, JSON.stringify(mlpUpload.body));
    const otherUpload = await uploadModel(api.baseUrl, 'other-identity', fixturePath('identity-float.onnx'));
    assert.equal(otherUpload.status, 201, JSON.stringify(otherUpload.body));
    for (let round = 0; round < 3; round++) {
      const mlp = await infer(api.baseUrl, 'mlp-small', mlpRequest(round));
      assert.equal(mlp.status, 200, JSON.stringify(mlp.body));
      const other = await infer(api.baseUrl, 'other-identity', identityRequest);
      assert.equal(other.status, 200, JSON.stringify(other.body));
    }
    const mlpPool = workers.get('mlp')!;
    const otherPool = workers.get('other')!;
    assert.equal(await servedOn(mlpPool, 'mlp-small'), 3);
    assert.equal(await servedOn(otherPool, 'mlp-small'), 0);
    assert.equal(await servedOn(otherPool, 'other-identity'), 3);
    assert.equal(await servedOn(mlpPool, 'other-identity'), 0);
    const metadata = await timedCall(`${api.baseUrl}/v2/models/mlp-small`);
    assert.equal(metadata.status, 200);
    assert.equal(metadata.body.servedBy, undefined, 'a served model answers the protocol metadata unchanged');
    assert.equal(metadata.body.unservedReason, undefined);
  });

  test('an upload no pool serves answers 202 at once, stays LOADING with the reason, and loads once a matching worker starts', async () => {
    const started = Date.now();
    const upload = await uploadModel(api.baseUrl, 'lonely', fixturePath('identity-float.onnx'));
    assert.equal(upload.status, 202, JSON.stringify(upload.body));
    assert.ok(Date.now() - started < fastMs, `the upload took ${Date.now() - started} ms`);
    const detail = await versionDetail('lonely', upload.body.version);
    assert.equal(detail.body.state, 'LOADING');
    assert.equal(detail.body.servedBy, 0);
    assert.match(detail.body.unservedReason, /no running worker serves model 'lonely'/);
    assert.match(detail.body.unservedReason, /\[mlp\*, other\*\]/);
    assert.match(detail.body.unservedReason, /GANTRY_WORKER_MODELS/);

    // The load waited in the model's own queue. The new worker's doorbell look-back (3 x its 1 s job lock) is past
    // the upload's ring by the time it starts: only its look for queued jobs at start-up can find the load.
    await sleep(lookBackMs + 500);
    const lonelyPool = await startWorker('lonely', 'lonely,spare-?', { GANTRY_JOB_LOCK_MS: '1000', GANTRY_MODEL_QUEUE_IDLE_MS: String(lookBackMs) });
    await waitUntil(async () => (await versionDetail('lonely', upload.body.version)).body.state === 'READY', 30_000, 'the queued load to run');
    await waitUntil(async () => (await ready('lonely')).status === 200, 5000, 'lonely to be ready');
    const reply = await infer(api.baseUrl, 'lonely', identityRequest);
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    assert.equal(await servedOn(lonelyPool, 'lonely'), 1);
    assert.equal((await versionDetail('lonely', '1')).body.unservedReason, undefined);
  });

  test('stopping a pool makes only its models unserved: 503 at once with the reason, not ready; a new worker of the pool serves again', async () => {
    await workers.get('other')!.stop();
    workers.delete('other');
    // A worker that stops withdraws its announcement; the API's view is at most about a second old.
    await waitUntil(async () => (await ready('other-identity')).status === 503, 5000, 'other-identity to be unready');
    const readiness = await ready('other-identity');
    assert.equal(readiness.body.ready, false);
    assert.match(readiness.body.unservedReason, /no running worker serves model 'other-identity': the 2 running workers serve \[lonely, mlp\*, spare-\?\]/);
    const metadata = await timedCall(`${api.baseUrl}/v2/models/other-identity`);
    assert.equal(metadata.status, 200);
    assert.equal(metadata.body.servedBy, 0);
    assert.equal(metadata.body.unservedReason, readiness.body.unservedReason);

    const refused = await infer(api.baseUrl, 'other-identity', identityRequest);
    assert.equal(refused.status, 503, JSON.stringify(refused.body));
    assert.equal(refused.body.code, 'UNAVAILABLE');
    assert.match(refused.body.error, /No running worker serves model 'other-identity'.*start a worker with GANTRY_WORKER_MODELS matching it/);
    assert.ok(refused.ms < fastMs, `the refusal took ${refused.ms} ms`);
    assert.ok(Number(refused.headers.get('retry-after')) > 0, 'Retry-After is set');
    const apiMetrics = await (await fetch(`${api.baseUrl}/metrics`)).text();
    assert.ok(sampleValue(apiMetrics, 'gantry_unserved_model_requests_total', { model: 'other-identity' }) >= 1, 'the refusal is counted');

    // The other pool's model is untouched.
    assert.equal((await ready('mlp-small')).status, 200);
    assert.equal((await infer(api.baseUrl, 'mlp-small', mlpRequest(9))).status, 200);

    const replacement = await startWorker('other-again', 'other*');
    await waitUntil(async () => (await ready('other-identity')).status === 200, 5000, 'other-identity to be ready again');
    const served = await infer(api.baseUrl, 'other-identity', identityRequest);
    assert.equal(served.status, 200, JSON.stringify(served.body));
    assert.equal(await servedOn(replacement, 'other-identity'), 1);
  });
});
