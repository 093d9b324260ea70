/**
 * Triton's HTTP extensions (shared/reference/triton-protocol/extension_*.md): model repository, statistics,
 * model configuration and classification, checked against a real gantry.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { JsonBody } from '../../support/json-body.js';
import { startGantry, uploadModel, fixturePath, type GantryProcess } from '../helpers/gantry-process.js';
import { assertErrorBody, http, inferJson, modelStats, pollFor } from './support.js';

let gantry: GantryProcess;
let base: string;

before(async () => {
  gantry = await startGantry();
  base = gantry.baseUrl;
  const uploads: Array<[string, string]> = [
    ['repo-mlp', 'tiny-mlp.onnx'],
    ['stats-mlp', 'tiny-mlp.onnx'],
    ['cfg-mlp', 'tiny-mlp.onnx'],
    ['cfg-string', 'identity-string.onnx'],
    ['classifier', 'labelled-classifier.onnx'],
    ['classifier-plain', 'labelled-classifier.onnx'],
  ];
  for (const [name, file] of uploads) {
    const reply = await uploadModel(base, name, fixturePath(file));
    assert.equal(reply.status, 201, `upload ${name}: ${JSON.stringify(reply.body)}`);
  }
});

after(async () => {
  await gantry?.cleanup();
});

const mlpRequest = (batch = 1) => ({ inputs: [{ name: 'input', shape: [batch, 256], datatype: 'FP32', data: new Array(256 * batch).fill(0.25) }] });

describe('model repository extension (extension_model_repository.md)', () => {
  const index = async (body?: unknown) => {
    const reply = await http(base, 'POST', '/v2/repository/index', body);
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    assert.ok(Array.isArray(reply.body), '"$repository_index_response" is an array');
    return reply.body as Array<{ name: string; version?: string; state: string; reason: string }>;
  };

  test('index lists every model with name, version, state and reason ("Index")', async () => {
    // Without a body, and with {"ready": false} (the default), every model is listed.
    for (const body of [undefined, {}, { ready: false }]) {
      const entries = await index(body);
      const entry = entries.find((candidate) => candidate.name === 'repo-mlp');
      assert.deepEqual(entry, { name: 'repo-mlp', version: '1', state: 'READY', reason: '' });
      for (const candidate of entries) {
        assert.equal(typeof candidate.state, 'string');
        assert.equal(typeof candidate.reason, 'string');
      }
    }
    const ready = await index({ ready: true });
    assert.ok(ready.some((entry) => entry.name === 'repo-mlp'));
    assert.ok(ready.every((entry) => entry.state === 'READY'));
  });

  test('unload → UNAVAILABLE with a reason, infer 503; load → READY and infers again ("Load", "Unload")', async () => {
    const unloaded = await http(base, 'POST', '/v2/repository/models/repo-mlp/unload');
    assert.equal(unloaded.status, 200, JSON.stringify(unloaded.body));

    const entry = (await index()).find((candidate) => candidate.name === 'repo-mlp');
    assert.equal(entry?.state, 'UNAVAILABLE');
    assert.ok((entry?.reason ?? '').length > 0, 'an unloaded model says why');
    assert.ok(!(await index({ ready: true })).some((candidate) => candidate.name === 'repo-mlp'), 'ready:true leaves it out');

    assertErrorBody(await inferJson(base, 'repo-mlp', mlpRequest()), 503, 'UNAVAILABLE');
    const notReady = await http(base, 'GET', '/v2/models/repo-mlp/ready');
    assert.equal(notReady.status, 503);
    assert.deepEqual(notReady.body, { name: 'repo-mlp', ready: false });

    // The body may be empty or {"parameters": {...}}.
    const loaded = await http(base, 'POST', '/v2/repository/models/repo-mlp/load', {});
    assert.equal(loaded.status, 200, JSON.stringify(loaded.body));
    assert.equal((await index()).find((candidate) => candidate.name === 'repo-mlp')?.state, 'READY');
    const inferred = await inferJson(base, 'repo-mlp', mlpRequest());
    assert.equal(inferred.status, 200, JSON.stringify(inferred.body));
    assert.equal((await http(base, 'GET', '/v2/models/repo-mlp/ready')).status, 200);
  });

  test('unknown model: load and unload fail with an HTTP error and {"error": string}', async () => {
    assertErrorBody(await http(base, 'POST', '/v2/repository/models/no-such-model/load'), 404, 'NOT_FOUND');
    assertErrorBody(await http(base, 'POST', '/v2/repository/models/no-such-model/unload'), 404, 'NOT_FOUND');
  });

  test('the "Examples" load request with "config" and "file:1/model.onnx" parameters is refused, not ignored', async () => {
    // Gantry's files come from uploads; the override parameters of the spec's example are not supported.
    const reply = await http(base, 'POST', '/v2/repository/models/repo-mlp/load', {
      parameters: { config: JSON.stringify({ name: 'repo-mlp', backend: 'onnxruntime' }), 'file:1/model.onnx': 'AAAA' },
    });
    assert.ok(reply.status >= 400, String(reply.status));
    assert.equal(typeof reply.body.error, 'string');
    assert.equal((await inferJson(base, 'repo-mlp', mlpRequest())).status, 200, 'the model is untouched');
  });
});

describe('statistics extension (extension_statistics.md)', () => {
  test('7 successful and 2 failed requests; then a batch of 3', async () => {
    for (let index = 0; index < 7; index++) {
      const reply = await inferJson(base, 'stats-mlp', mlpRequest());
      assert.equal(reply.status, 200, JSON.stringify(reply.body));
    }
    // Two bad requests: wrong shape, wrong datatype. They are not successful inferences.
    assert.equal(
      (await inferJson(base, 'stats-mlp', { inputs: [{ name: 'input', shape: [1, 255], datatype: 'FP32', data: new Array(255).fill(0) }] })).status,
      400,
    );
    assert.equal(
      (await inferJson(base, 'stats-mlp', { inputs: [{ name: 'input', shape: [1, 256], datatype: 'FP64', data: new Array(256).fill(0) }] })).status,
      400,
    );

    // Workers flush their counters every ~20 ms.
    const stats = await pollFor(
      () => modelStats(base, 'stats-mlp'),
      (value) => value.inference_stats.success.count >= 7,
    );
    // "$model_stat"
    assert.equal(stats.name, 'stats-mlp');
    assert.equal(stats.version, '1');
    // "success": count of successful inference requests.
    assert.equal(stats.inference_stats.success.count, 7);
    assert.ok(stats.inference_stats.success.ns > 0);
    // "inference_count": each inference in a batched request counts; 7 batch-1 requests → 7.
    assert.equal(stats.inference_count, 7);
    // "execution_count": one per model execution; dynamic batching may merge requests.
    assert.ok(stats.execution_count >= 1 && stats.execution_count <= 7, `execution_count ${stats.execution_count}`);
    // "queue", "compute_input", "compute_infer", "compute_output": one count per request.
    for (const name of ['queue', 'compute_input', 'compute_infer', 'compute_output']) {
      assert.equal(stats.inference_stats[name].count, 7, name);
      assert.equal(typeof stats.inference_stats[name].ns, 'number', name);
    }
    // "last_inference": milliseconds since the epoch.
    assert.ok(stats.last_inference > Date.now() - 60_000 && stats.last_inference <= Date.now() + 1_000, `last_inference ${stats.last_inference}`);
    // "batch_stats": executions per batch size; they add up to execution_count.
    assert.ok(Array.isArray(stats.batch_stats));
    const executions = stats.batch_stats.reduce((sum: number, entry: { compute_infer: { count: number } }) => sum + entry.compute_infer.count, 0);
    assert.equal(executions, stats.execution_count);

    // A [3,256] request is 3 inferences.
    assert.equal((await inferJson(base, 'stats-mlp', mlpRequest(3))).status, 200);
    const afterBatch = await pollFor(
      () => modelStats(base, 'stats-mlp'),
      (value) => value.inference_stats.success.count >= 8,
    );
    assert.equal(afterBatch.inference_stats.success.count, 8);
    assert.equal(afterBatch.inference_count, 10);
    assert.ok(
      afterBatch.batch_stats.some((entry: { batch_size: number }) => entry.batch_size >= 3),
      JSON.stringify(afterBatch.batch_stats),
    );
  });

  test('GET /v2/models/stats, /v2/models/{m}/stats and /v2/models/{m}/versions/{v}/stats agree', async () => {
    const versioned = await modelStats(base, 'stats-mlp');
    const all = await http(base, 'GET', '/v2/models/stats');
    assert.equal(all.status, 200);
    assert.ok(Array.isArray(all.body.model_stats));
    const fromAll = all.body.model_stats.find((entry: { name: string; version: string }) => entry.name === 'stats-mlp' && entry.version === '1');
    assert.ok(
      all.body.model_stats.some((entry: { name: string }) => entry.name === 'cfg-mlp'),
      'every model is listed',
    );
    const perModel = await http(base, 'GET', '/v2/models/stats-mlp/stats');
    assert.equal(perModel.status, 200);
    assert.equal(perModel.body.model_stats.length, 1);
    for (const entry of [fromAll, perModel.body.model_stats[0]]) {
      assert.equal(entry.inference_count, versioned.inference_count);
      assert.equal(entry.execution_count, versioned.execution_count);
      assert.equal(entry.inference_stats.success.count, versioned.inference_stats.success.count);
    }
  });

  test('statistics of an unknown model or version: HTTP error and {"error": string}', async () => {
    // "Statistics Response JSON Error Object"
    assertErrorBody(await http(base, 'GET', '/v2/models/no-such-model/stats'), 404, 'NOT_FOUND');
    assertErrorBody(await http(base, 'GET', '/v2/models/stats-mlp/versions/5/stats'), 404, 'NOT_FOUND');
  });
});

describe('model configuration extension (extension_model_configuration.md)', () => {
  test('GET …/config and …/versions/{v}/config: the ModelConfig JSON', async () => {
    for (const path of ['/v2/models/cfg-mlp/config', '/v2/models/cfg-mlp/versions/1/config']) {
      const reply = await http(base, 'GET', path);
      assert.equal(reply.status, 200, JSON.stringify(reply.body));
      const config = reply.body;
      assert.equal(config.name, 'cfg-mlp');
      assert.equal(typeof config.max_batch_size, 'number');
      assert.ok(config.max_batch_size > 0, 'tiny-mlp has a dynamic batch axis and batches by default');
      // model_config.proto: with max_batch_size > 0 the batch dimension is left out of dims.
      assert.deepEqual(config.input, [{ name: 'input', data_type: 'TYPE_FP32', dims: [256] }]);
      assert.deepEqual(config.output, [{ name: 'output', data_type: 'TYPE_FP32', dims: [16] }]);
      assert.ok(Array.isArray(config.instance_group) && config.instance_group.length >= 1);
      assert.equal(config.instance_group[0].count, 1);
      assert.match(config.instance_group[0].kind, /^KIND_/);
      assert.equal(typeof config.dynamic_batching, 'object');
    }
    const strings = await http(base, 'GET', '/v2/models/cfg-string/config');
    assert.equal(strings.body.input[0].data_type, 'TYPE_STRING');
  });

  test('PUT /v1/models/{m}/config changes maxBatchSize and GET reflects it', async () => {
    const put = await http(base, 'PUT', '/v1/models/cfg-mlp/config', { maxBatchSize: 8 });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.equal(put.body.maxBatchSize, 8);
    assert.equal((await http(base, 'GET', '/v2/models/cfg-mlp/config')).body.max_batch_size, 8);

    const off = await http(base, 'PUT', '/v1/models/cfg-mlp/config', { maxBatchSize: 0 });
    assert.equal(off.status, 200, JSON.stringify(off.body));
    const config = (await http(base, 'GET', '/v2/models/cfg-mlp/config')).body;
    assert.equal(config.max_batch_size, 0);
    // max_batch_size 0: dims are the full shape.
    assert.deepEqual(config.input[0].dims, [-1, 256]);
    assert.equal((await inferJson(base, 'cfg-mlp', mlpRequest(2))).status, 200, 'still infers with batching off');
  });

  test('an invalid field answers 400 naming it', async () => {
    const negative = await http(base, 'PUT', '/v1/models/cfg-mlp/config', { maxBatchSize: -1 });
    assertErrorBody(negative, 400, 'INVALID_ARGUMENT');
    assert.match(negative.body.error, /maxBatchSize/);
    const unknown = await http(base, 'PUT', '/v1/models/cfg-mlp/config', { notAField: 1 });
    assertErrorBody(unknown, 400, 'INVALID_ARGUMENT');
    assert.match(unknown.body.error, /notAField/);
    assertErrorBody(await http(base, 'GET', '/v2/models/no-such-model/config'), 404, 'NOT_FOUND');
  });
});

describe('classification extension (extension_classification.md)', () => {
  const labels = ['cat', 'dog', 'bird', 'fish', 'horse'];
  const input = [0.1, -0.5, 0.9, 0.3, -1, 0.25, 0.75, -0.125];

  const rawScores = async (model: string): Promise<number[][]> => {
    const reply = await inferJson(base, model, { inputs: [{ name: 'input', shape: [2, 4], datatype: 'FP32', data: input }] });
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    const flat = reply.body.outputs[0].data as number[];
    return [flat.slice(0, 5), flat.slice(5, 10)];
  };

  /** "<value>:<index>[:<label>]", top-n by value, highest first ("Classification Extension"). */
  const checkClassified = (output: JsonBody, scores: number[][], withLabels: boolean) => {
    assert.equal(output.name, 'scores');
    assert.equal(output.datatype, 'BYTES');
    assert.deepEqual(output.shape, [2, 2], 'shape [batch-size, count]');
    assert.equal(output.data.length, 4);
    for (let row = 0; row < 2; row++) {
      const expectedOrder = scores[row]!.map((value, index) => ({ value, index })).sort((x, y) => y.value - x.value);
      for (let rank = 0; rank < 2; rank++) {
        const parts = (output.data[row * 2 + rank] as string).split(':');
        assert.equal(parts.length, withLabels ? 3 : 2, output.data[row * 2 + rank]);
        const index = Number(parts[1]);
        assert.equal(index, expectedOrder[rank]!.index, `row ${row} rank ${rank}`);
        assert.equal(Math.fround(Number(parts[0])), Math.fround(scores[row]![index]!), 'the value is the output element');
        if (withLabels) assert.equal(parts[2], labels[index]);
      }
    }
  };

  test('with labels: "value:index:label", sorted descending', async () => {
    const put = await http(base, 'PUT', '/v1/models/classifier/config', { labels });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    const scores = await rawScores('classifier');
    const reply = await inferJson(base, 'classifier', {
      id: '42',
      inputs: [{ name: 'input', shape: [2, 4], datatype: 'FP32', data: input }],
      outputs: [{ name: 'scores', parameters: { classification: 2 } }],
    });
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    assert.equal(reply.body.id, '42');
    checkClassified(reply.body.outputs[0], scores, true);
  });

  test('without labels: "value:index"', async () => {
    const scores = await rawScores('classifier-plain');
    const reply = await inferJson(base, 'classifier-plain', {
      inputs: [{ name: 'input', shape: [2, 4], datatype: 'FP32', data: input }],
      outputs: [{ name: 'scores', parameters: { classification: 2 } }],
    });
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    checkClassified(reply.body.outputs[0], scores, false);
  });

  test("the spec's example ordering: [1, 5, 10, 4] top-2 → indices 2, 1", async () => {
    // The "Classification Extension" worked example, fed through an identity model standing in for a scorer.
    const upload = await uploadModel(base, 'scorer', fixturePath('identity-float.onnx'));
    assert.equal(upload.status, 201);
    const classified = await inferJson(base, 'scorer', {
      inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 5, 10, 4] }],
      outputs: [{ name: 'output', parameters: { classification: 2 } }],
    });
    assert.equal(classified.status, 200, JSON.stringify(classified.body));
    assert.deepEqual(classified.body.outputs[0].data, ['10:2', '5:1']);
  });
});
