/**
 * Dynamic batching through a real gantry process (API + worker over BullMQ/Redis): concurrent requests are
 * merged into shared executions without changing anyone's answer, the statistics show it, and
 * PUT /v1/models/{m}/config {"maxBatchSize": 0} turns it off.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fixturePath, inferJson, startGantry, uploadModel, type GantryProcess } from '../helpers/gantry-process.js';
import { call, maxAbsDiff, ort, randomFloats, waitUntil } from './support.js';

interface Counts {
  inference: number;
  execution: number;
}

describe('dynamic batching through gantry', () => {
  let gantry: GantryProcess;
  let mlpSession: ort.InferenceSession;
  let stateSession: ort.InferenceSession;

  before(async () => {
    gantry = await startGantry();
    for (const [name, file] of [
      ['mlp', 'tiny-mlp.onnx'],
      ['state', 'two-batch-axes.onnx'],
    ] as const) {
      const upload = await uploadModel(gantry.baseUrl, name, fixturePath(file));
      assert.equal(upload.status, 201, JSON.stringify(upload.body));
    }
    mlpSession = await ort.InferenceSession.create(fixturePath('tiny-mlp.onnx'));
    stateSession = await ort.InferenceSession.create(fixturePath('two-batch-axes.onnx'));
  });
  after(async () => {
    await mlpSession?.release();
    await stateSession?.release();
    await gantry?.cleanup();
  });

  const counts = async (model: string): Promise<Counts> => {
    const reply = await call(gantry.baseUrl, 'GET', `/v2/models/${model}/stats`);
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    const stats = reply.body.model_stats as Array<{ inference_count: number; execution_count: number }>;
    return {
      inference: stats.reduce((sum, entry) => sum + entry.inference_count, 0),
      execution: stats.reduce((sum, entry) => sum + entry.execution_count, 0),
    };
  };

  /** Statistics are flushed to Redis shortly after the answers: wait until all `inference` rows are counted. */
  const countsReaching = async (model: string, inference: number): Promise<Counts> => {
    let latest: Counts = { inference: 0, execution: 0 };
    await waitUntil(
      async () => {
        latest = await counts(model);
        return latest.inference >= inference;
      },
      10_000,
      `${model} statistics to count ${inference} inferences`,
    );
    return latest;
  };

  /** 64 concurrent one-row requests with distinct inputs; each answer checked against in-process onnxruntime. */
  const burstOfMlpRequests = async (seedBase: number): Promise<void> => {
    const inputs = Array.from({ length: 64 }, (_, index) => randomFloats(seedBase + index, 256));
    const replies = await Promise.all(
      inputs.map((data) => inferJson(gantry.baseUrl, 'mlp', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 256], data }] })),
    );
    for (const [index, reply] of replies.entries()) {
      assert.equal(reply.status, 200, `request ${index}: ${JSON.stringify(reply.body)}`);
      const output = reply.body.outputs.find((candidate: { name: string }) => candidate.name === 'output');
      assert.deepEqual(output.shape, [1, 16]);
      const reference = await mlpSession.run({ input: new ort.Tensor('float32', Float32Array.from(inputs[index]!), [1, 256]) });
      const diff = maxAbsDiff(output.data, reference.output!.data as Float32Array);
      assert.ok(diff <= 1e-5, `request ${index}: max |diff| ${diff} > 1e-5`);
    }
  };

  test("64 concurrent tiny-mlp requests: every answer is its own input's; statistics show batching (executions < inferences)", async (t) => {
    await burstOfMlpRequests(100);
    const after = await countsReaching('mlp', 64);
    assert.equal(after.inference, 64);
    assert.ok(after.execution < after.inference, `batching on: ${after.execution} executions for ${after.inference} inferences`);
    t.diagnostic(`batching on: ${after.inference} inferences in ${after.execution} executions`);
  });

  test('PUT config maxBatchSize 0: 64 more concurrent requests take 64 new executions', async () => {
    const before = await countsReaching('mlp', 64);
    const updated = await call(gantry.baseUrl, 'PUT', '/v1/models/mlp/config', { maxBatchSize: 0 });
    assert.equal(updated.status, 200, JSON.stringify(updated.body));
    assert.equal(updated.body.maxBatchSize, 0);

    await burstOfMlpRequests(500);
    const after = await countsReaching('mlp', before.inference + 64);
    assert.equal(after.inference - before.inference, 64);
    assert.equal(after.execution - before.execution, 64, `batching off: ${after.execution - before.execution} new executions for 64 requests`);

    // And back on: the setting is live in both directions.
    const restored = await call(gantry.baseUrl, 'PUT', '/v1/models/mlp/config', { maxBatchSize: 64 });
    assert.equal(restored.status, 200, JSON.stringify(restored.body));
    await burstOfMlpRequests(900);
    const again = await countsReaching('mlp', after.inference + 64);
    assert.ok(again.execution - after.execution < 64, `batching back on: ${again.execution - after.execution} new executions for 64 requests`);
  });

  test('two-batch-axes under concurrency: every answer correct, one execution per request', async () => {
    const requests = Array.from({ length: 32 }, (_, index) => {
      const rows = 1 + (index % 3);
      return { rows, x: randomFloats(2000 + index, rows * 8), state: randomFloats(3000 + index, 2 * rows * 8) };
    });
    const replies = await Promise.all(
      requests.map(({ rows, x, state }) =>
        inferJson(gantry.baseUrl, 'state', {
          inputs: [
            { name: 'x', datatype: 'FP32', shape: [rows, 8], data: x },
            { name: 'state', datatype: 'FP32', shape: [2, rows, 8], data: state },
          ],
        }),
      ),
    );
    for (const [index, reply] of replies.entries()) {
      const { rows, x, state } = requests[index]!;
      assert.equal(reply.status, 200, `request ${index}: ${JSON.stringify(reply.body)}`);
      const reference = await stateSession.run({
        x: new ort.Tensor('float32', Float32Array.from(x), [rows, 8]),
        state: new ort.Tensor('float32', Float32Array.from(state), [2, rows, 8]),
      });
      const y = reply.body.outputs.find((output: { name: string }) => output.name === 'y');
      const stateN = reply.body.outputs.find((output: { name: string }) => output.name === 'stateN');
      assert.deepEqual(y.shape, [rows, 8], `request ${index}: y shape`);
      assert.deepEqual(stateN.shape, [2, rows, 8], `request ${index}: stateN shape`);
      assert.ok(maxAbsDiff(y.data, reference.y!.data as Float32Array) <= 1e-5, `request ${index}: y`);
      assert.ok(maxAbsDiff(stateN.data, reference.stateN!.data as Float32Array) <= 1e-5, `request ${index}: stateN`);
    }
    const stats = await waitForExecutions('state', 32);
    assert.equal(stats.execution, 32, `two-batch-axes: ${stats.execution} executions for 32 requests`);
  });

  const waitForExecutions = async (model: string, executions: number): Promise<Counts> => {
    let latest: Counts = { inference: 0, execution: 0 };
    await waitUntil(
      async () => {
        latest = await counts(model);
        return latest.execution >= executions;
      },
      10_000,
      `${model} statistics to count ${executions} executions`,
    );
    // Give a late flush the chance to show an over-count.
    await new Promise((resolve) => setTimeout(resolve, 100));
    return counts(model);
  };
});
