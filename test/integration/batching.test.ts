/**
 * Dynamic batching on real onnxruntime: ModelInstances (worker threads with sessions) driven by ModelBatcher
 * directly, no Redis or HTTP. Every batched answer is compared with the same request run alone.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, GantryError, errors } from '../../src/errors.js';
import { ModelBatcher, type BatchedResult, type BatchingSettings } from '../../src/worker/model-batcher.js';
import { ModelInstances, type LoadedModel, type RunOutput } from '../../src/worker/model-instances.js';
import type { Tensor } from '../../src/protocol/tensor.js';
import { fixturePath } from '../helpers/gantry-process.js';
import { mulberry32 } from '../e2e/support.js';

const sessionSettings = { executionProviders: ['cpu'], graphOptimizationLevel: 'all' as const };
const batchingOn: BatchingSettings = { maxBatchSize: 64, preferredBatchSizes: [], maxQueueDelayMicroseconds: 0 };

interface Execution {
  /** The leading dimension and width of each input the execution ran with. */
  shapes: number[][];
  byteLengths: number[];
}

/** Loads a fixture and records every execution that reaches onnxruntime (shape and byte length of each input). */
async function loadRecorded(name: string, count = 1): Promise<{ instances: ModelInstances; loaded: LoadedModel; executions: Execution[] }> {
  const { instances, loaded } = await ModelInstances.load(fixturePath(name), count, sessionSettings);
  const executions: Execution[] = [];
  const original = instances.run.bind(instances);
  instances.run = (inputs: readonly Tensor[], outputNames: string[], options?: { inputsOwned?: boolean }): Promise<RunOutput> => {
    executions.push({ shapes: inputs.map((input) => [...input.shape]), byteLengths: inputs.map((input) => input.data.byteLength) });
    return original(inputs, outputNames, options);
  };
  return { instances, loaded, executions };
}

function fp32(name: string, shape: number[], values: ArrayLike<number>): Tensor {
  return { name, datatype: 'FP32', shape, data: new Uint8Array(Float32Array.from(values).buffer) };
}

function randomTensor(name: string, shape: number[], seed: number): Tensor {
  const next = mulberry32(seed);
  const count = shape.reduce((a, b) => a * b, 1);
  return fp32(
    name,
    shape,
    Array.from({ length: count }, () => next() * 2 - 1),
  );
}

function floatsOf(tensor: Tensor): Float32Array {
  return new Float32Array(tensor.data.slice().buffer);
}

/** Max |a - b| over two tensors of equal shape (asserted). */
function maxDiff(actual: Tensor, expected: Tensor): number {
  assert.deepEqual(actual.shape, expected.shape, `shape of ${actual.name}`);
  const a = floatsOf(actual);
  const e = floatsOf(expected);
  assert.equal(a.length, e.length);
  let worst = 0;
  for (let index = 0; index < a.length; index++) {
    const diff = Math.abs(a[index]! - e[index]!);
    worst = Number.isNaN(diff) ? Infinity : Math.max(worst, diff);
  }
  return worst;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe('dynamic batching on real onnxruntime', () => {
  const opened: ModelInstances[] = [];
  after(async () => {
    await Promise.all(opened.map((instances) => instances.close()));
  });

  describe('tiny-mlp', () => {
    let model: Awaited<ReturnType<typeof loadRecorded>>;
    before(async () => {
      model = await loadRecorded('tiny-mlp.onnx');
      opened.push(model.instances);
    });

    test('50 concurrent requests of 1–4 rows: each answer equals the request run alone (≤ 1e-6), and requests were merged', async (t) => {
      const batcher = new ModelBatcher(model.instances, model.loaded.signature, batchingOn);
      assert.equal(batcher.canBatch, true);
      const next = mulberry32(7);
      const requests = Array.from({ length: 50 }, (_, index) => randomTensor('input', [1 + Math.floor(next() * 4), 256], 1000 + index));
      const executionsBefore = model.executions.length;
      const results = await Promise.all(requests.map((input) => batcher.submit([input], ['output'])));
      const batchedExecutions = model.executions.length - executionsBefore;

      const executedRows = model.executions.slice(executionsBefore).reduce((sum, execution) => sum + execution.shapes[0]![0]!, 0);
      let exact = 0;
      for (const [index, result] of results.entries()) {
        const input = requests[index]!;
        assert.equal(result.rows, input.shape[0]);
        assert.equal(result.outputs.length, 1);
        const alone = await model.instances.run([input], ['output']);
        const diff = maxDiff(result.outputs[0]!, alone.outputs[0]!);
        assert.ok(diff <= 1e-6, `request ${index} (${input.shape[0]} rows): max |diff| ${diff} > 1e-6`);
        if (diff === 0) exact++;
      }
      const merged = results.filter((result) => result.batchSize > result.rows);
      assert.ok(merged.length > 0, 'no request shared an execution');
      assert.ok(batchedExecutions < requests.length, `${batchedExecutions} executions for ${requests.length} requests`);
      // Each execution is reported by exactly one of its requests.
      assert.equal(results.filter((result) => result.reportsExecution).length, batchedExecutions);
      const totalRows = requests.reduce((sum, input) => sum + input.shape[0]!, 0);
      assert.equal(executedRows, totalRows, 'every row ran exactly once');
      assert.ok(results.every((result) => result.batchSize <= 64));
      t.diagnostic(`${batchedExecutions} executions for 50 requests (${totalRows} rows); ${exact}/50 bit-identical to the lone run`);
    });

    test("a job's requests queued together (submitAll) run as one execution on an idle instance; one by one, the first runs alone", async () => {
      const batcher = new ModelBatcher(model.instances, model.loaded.signature, batchingOn);
      const inputs = Array.from({ length: 6 }, (_, index) => randomTensor('input', [1, 256], 3000 + index));
      let executionsBefore = model.executions.length;
      const together = await Promise.all(batcher.submitAll(inputs.map((input) => ({ inputs: [input], outputs: ['output'] }))));
      assert.deepEqual(
        model.executions.slice(executionsBefore).map((execution) => execution.shapes[0]![0]),
        [6],
        'one execution of all six rows',
      );
      assert.ok(together.every((result) => result.batchSize === 6 && result.rows === 1));
      for (const [index, result] of together.entries()) {
        const alone = await model.instances.run([inputs[index]!], ['output']);
        assert.ok(maxDiff(result.outputs[0]!, alone.outputs[0]!) <= 1e-6, `request ${index} got its own rows back`);
      }
      // What the worker did before submitAll: the first submit finds the instance idle and runs alone.
      executionsBefore = model.executions.length;
      await Promise.all(inputs.map((input) => batcher.submit([input], ['output'])));
      assert.deepEqual(
        model.executions.slice(executionsBefore).map((execution) => execution.shapes[0]![0]),
        [1, 5],
      );
    });

    test('maxBatchSize is respected: no execution exceeds it; a request larger than it still runs (alone)', async () => {
      const maxBatchSize = 8;
      const batcher = new ModelBatcher(model.instances, model.loaded.signature, { ...batchingOn, maxBatchSize });
      const next = mulberry32(9);
      const requests = Array.from({ length: 60 }, (_, index) => randomTensor('input', [1 + Math.floor(next() * 4), 256], 2000 + index));
      const big = randomTensor('input', [10, 256], 2999);
      const executionsBefore = model.executions.length;
      const results = await Promise.all([...requests, big].map((input) => batcher.submit([input], ['output'])));
      for (const [index, result] of results.slice(0, -1).entries()) {
        assert.ok(result.batchSize <= maxBatchSize, `request ${index}: batch of ${result.batchSize} rows > ${maxBatchSize}`);
      }
      const bigResult = results.at(-1)!;
      assert.equal(bigResult.batchSize, 10);
      assert.deepEqual(bigResult.outputs[0]!.shape, [10, 16]);
      const executions = model.executions.slice(executionsBefore);
      const oversized = executions.filter((execution) => execution.shapes[0]![0]! > maxBatchSize);
      assert.equal(oversized.length, 1, 'only the 10-row request ran above maxBatchSize');
      assert.ok(
        results.some((result) => result.batchSize > result.rows),
        'some requests were merged',
      );
      assert.ok(
        results.some((result) => result.batchSize > 4),
        'batches grew past one request',
      );
      for (const [index, input] of [...requests, big].entries()) {
        const alone = await model.instances.run([input], ['output']);
        assert.ok(maxDiff(results[index]!.outputs[0]!, alone.outputs[0]!) <= 1e-6, `request ${index}`);
      }
    });

    test('maxBatchSize 0 turns batching off: every request is its own execution', async () => {
      const batcher = new ModelBatcher(model.instances, model.loaded.signature, { ...batchingOn, maxBatchSize: 0 });
      assert.equal(batcher.canBatch, false);
      const requests = Array.from({ length: 20 }, (_, index) => randomTensor('input', [2, 256], 3000 + index));
      const executionsBefore = model.executions.length;
      const results = await Promise.all(requests.map((input) => batcher.submit([input], ['output'])));
      assert.equal(model.executions.length - executionsBefore, requests.length);
      assert.ok(results.every((result) => result.batchSize === result.rows && result.reportsExecution));
    });

    test('maxQueueDelayMicroseconds with preferredBatchSizes waits to gather: 8 requests 5 ms apart take fewer executions', async (t) => {
      const runStaggered = async (settings: BatchingSettings): Promise<{ executions: number; results: BatchedResult[] }> => {
        const batcher = new ModelBatcher(model.instances, model.loaded.signature, settings);
        const executionsBefore = model.executions.length;
        const pending: Array<Promise<BatchedResult>> = [];
        for (let index = 0; index < 8; index++) {
          pending.push(batcher.submit([randomTensor('input', [1, 256], 4000 + index)], ['output']));
          await sleep(5);
        }
        const results = await Promise.all(pending);
        return { executions: model.executions.length - executionsBefore, results };
      };
      const immediate = await runStaggered({ maxBatchSize: 64, preferredBatchSizes: [8], maxQueueDelayMicroseconds: 0 });
      const delayed = await runStaggered({ maxBatchSize: 64, preferredBatchSizes: [8], maxQueueDelayMicroseconds: 50_000 });
      t.diagnostic(`executions for 8 requests 5 ms apart: delay 0 → ${immediate.executions}, delay 50 ms → ${delayed.executions}`);
      assert.ok(delayed.executions < immediate.executions, `delay 50 ms: ${delayed.executions} executions, delay 0: ${immediate.executions}`);
      assert.ok(delayed.executions <= 2, `with a 50 ms window 8 requests spread over 40 ms should gather (got ${delayed.executions} executions)`);
      assert.ok(delayed.results.some((result) => result.batchSize >= 4));
    });

    test('a queued request waits at most maxQueueDelayMicroseconds for a preferred batch that never fills', async () => {
      const batcher = new ModelBatcher(model.instances, model.loaded.signature, {
        maxBatchSize: 64,
        preferredBatchSizes: [32],
        maxQueueDelayMicroseconds: 30_000,
      });
      const started = performance.now();
      const result = await batcher.submit([randomTensor('input', [1, 256], 4500)], ['output']);
      const waited = performance.now() - started;
      assert.equal(result.batchSize, 1);
      assert.ok(waited >= 25, `answered after ${waited.toFixed(1)} ms, before the 30 ms window`);
      assert.ok(waited < 1000, `answered after ${waited.toFixed(1)} ms`);
    });

    test('a request onnxruntime rejects (wrong trailing dimension) fails alone; the requests around it are answered', async () => {
      const batcher = new ModelBatcher(model.instances, model.loaded.signature, batchingOn);
      const good = Array.from({ length: 6 }, (_, index) => randomTensor('input', [1 + (index % 3), 256], 5000 + index));
      // Width 255 has its own compatibility key, so it runs in an execution of its own, which onnxruntime rejects.
      const wrongWidth = randomTensor('input', [2, 255], 5100);
      // A first request occupies the single instance so that the rest queue up and batch together.
      const blocker = batcher.submit([randomTensor('input', [1, 256], 5300)], ['output']);
      const settled = await Promise.allSettled([
        ...good.slice(0, 3).map((input) => batcher.submit([input], ['output'])),
        batcher.submit([wrongWidth], ['output']),
        batcher.submit([randomTensor('input', [1, 255], 5101)], ['output']),
        ...good.slice(3).map((input) => batcher.submit([input], ['output'])),
      ]);
      await blocker;
      assert.deepEqual(
        settled.map((entry) => entry.status),
        ['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled'],
      );
      for (const entry of settled) {
        if (entry.status === 'rejected') {
          assert.ok(entry.reason instanceof GantryError, String(entry.reason));
          assert.equal(entry.reason.code, ErrorCode.InvalidArgument);
          assert.match(entry.reason.message, /onnxruntime rejected the inputs/);
        }
      }
      const goodResults = settled.filter((entry): entry is PromiseFulfilledResult<BatchedResult> => entry.status === 'fulfilled').map((entry) => entry.value);
      assert.ok(
        goodResults.some((result) => result.batchSize > result.rows),
        'the good requests were merged',
      );
      for (const [index, input] of good.entries()) {
        const alone = await model.instances.run([input], ['output']);
        assert.ok(maxDiff(goodResults[index]!.outputs[0]!, alone.outputs[0]!) <= 1e-6, `good request ${index}`);
      }
      assert.equal(model.instances.healthy, true);
    });

    test('an execution that fails as a whole is retried request by request: only the culprit fails', async () => {
      // onnxruntime rejects by shape, and shapes are part of the batch key, so a real model cannot be made to fail
      // one stacked execution here. A value-dependent failure (think Gather with an out-of-range index) is stood
      // in for: this wrapper refuses any execution holding a row whose first value is the poison marker.
      const poison = 12345;
      const guarded = Object.create(model.instances) as ModelInstances;
      let refused = 0;
      guarded.run = async (inputs, outputNames) => {
        const values = floatsOf(inputs[0]!);
        for (let row = 0; row < inputs[0]!.shape[0]!; row++) {
          if (values[row * 256] === poison) {
            refused++;
            throw errors.invalidArgument('onnxruntime rejected the inputs: index out of range (simulated)');
          }
        }
        return model.instances.run(inputs, outputNames);
      };
      const batcher = new ModelBatcher(guarded, model.loaded.signature, batchingOn);
      const good = Array.from({ length: 6 }, (_, index) => randomTensor('input', [1 + (index % 3), 256], 5400 + index));
      const bad = randomTensor('input', [2, 256], 5500);
      new Float32Array(bad.data.buffer, bad.data.byteOffset, 512)[256] = poison;
      const blocker = batcher.submit([randomTensor('input', [1, 256], 5600)], ['output']);
      const settled = await Promise.allSettled([...good.slice(0, 3), bad, ...good.slice(3)].map((input) => batcher.submit([input], ['output'])));
      await blocker;
      assert.deepEqual(
        settled.map((entry) => entry.status),
        ['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled'],
      );
      assert.equal(refused, 2, 'the stacked execution was refused once, then the culprit alone');
      const rejected = settled[3] as PromiseRejectedResult;
      assert.ok(rejected.reason instanceof GantryError);
      assert.match(rejected.reason.message, /simulated/);
      const goodResults = settled.filter((entry): entry is PromiseFulfilledResult<BatchedResult> => entry.status === 'fulfilled').map((entry) => entry.value);
      for (const [index, input] of good.entries()) {
        const alone = await model.instances.run([input], ['output']);
        assert.ok(maxDiff(goodResults[index]!.outputs[0]!, alone.outputs[0]!) <= 1e-6, `good request ${index}`);
      }
    });

    test('a tensor whose bytes do not fit its shape is refused without killing the instance thread', async () => {
      const { instances, loaded } = await ModelInstances.load(fixturePath('tiny-mlp.onnx'), 1, sessionSettings);
      opened.push(instances);
      const batcher = new ModelBatcher(instances, loaded.signature, batchingOn);
      const short = randomTensor('input', [1, 256], 5700);
      short.data = short.data.subarray(0, 255 * 4);
      const blocker = batcher.submit([randomTensor('input', [1, 256], 5701)], ['output']);
      const settled = await Promise.allSettled([
        batcher.submit([randomTensor('input', [1, 256], 5702)], ['output']),
        batcher.submit([short], ['output']),
        batcher.submit([randomTensor('input', [1, 256], 5703)], ['output']),
      ]);
      await blocker;
      assert.deepEqual(
        settled.map((entry) => entry.status),
        ['fulfilled', 'rejected', 'fulfilled'],
      );
      assert.equal(instances.healthy, true);
    });
  });

  describe('two-batch-axes (state batched on axis 1): never merged', () => {
    let model: Awaited<ReturnType<typeof loadRecorded>>;
    before(async () => {
      model = await loadRecorded('two-batch-axes.onnx');
      opened.push(model.instances);
    });

    test('concurrent requests are all correct and each runs in its own execution', async () => {
      const batcher = new ModelBatcher(model.instances, model.loaded.signature, batchingOn);
      assert.equal(batcher.canBatch, false, 'the batcher must refuse this signature');
      const requests = Array.from({ length: 24 }, (_, index) => {
        const rows = 1 + (index % 3);
        return [randomTensor('x', [rows, 8], 6000 + index), randomTensor('state', [2, rows, 8], 6100 + index)];
      });
      const executionsBefore = model.executions.length;
      const results = await Promise.all(requests.map((inputs) => batcher.submit(inputs, ['y', 'stateN'])));
      assert.equal(model.executions.length - executionsBefore, requests.length, 'one execution per request');
      for (const [index, inputs] of requests.entries()) {
        const result = results[index]!;
        assert.equal(result.batchSize, result.rows, `request ${index} was merged`);
        assert.equal(result.reportsExecution, true);
        // Reference computed here: y = x + state[0] + state[1]; stateN = 2 * state.
        const rows = inputs[0]!.shape[0]!;
        const x = floatsOf(inputs[0]!);
        const state = floatsOf(inputs[1]!);
        const y = Float32Array.from(x, (value, element) => value + state[element]! + state[rows * 8 + element]!);
        const stateN = Float32Array.from(state, (value) => value * 2);
        const [yOut, stateOut] = result.outputs;
        assert.deepEqual(yOut!.shape, [rows, 8]);
        assert.deepEqual(stateOut!.shape, [2, rows, 8]);
        assert.ok(maxDiff(yOut!, fp32('y', [rows, 8], y)) <= 1e-6, `request ${index}: y`);
        assert.ok(maxDiff(stateOut!, fp32('stateN', [2, rows, 8], stateN)) <= 1e-6, `request ${index}: stateN`);
      }
      for (const execution of model.executions.slice(executionsBefore)) {
        assert.equal(execution.shapes[0]![0], execution.shapes[1]![1], 'x and state of one execution have the same batch');
      }
    });
  });

  describe('identity-float with mixed widths', () => {
    let model: Awaited<ReturnType<typeof loadRecorded>>;
    before(async () => {
      model = await loadRecorded('identity-float.onnx');
      opened.push(model.instances);
    });

    test('widths 3 and 5 concurrently: every answer is its own input and no execution mixes widths', async () => {
      const batcher = new ModelBatcher(model.instances, model.loaded.signature, batchingOn);
      const requests = Array.from({ length: 40 }, (_, index) => {
        const width = index % 2 === 0 ? 3 : 5;
        return randomTensor('input', [1 + (index % 4), width], 7000 + index);
      });
      const executionsBefore = model.executions.length;
      const results = await Promise.all(requests.map((input) => batcher.submit([input], ['output'])));
      for (const [index, input] of requests.entries()) {
        const output = results[index]!.outputs[0]!;
        assert.deepEqual(output.shape, input.shape, `request ${index}: shape`);
        assert.deepEqual(Buffer.from(output.data), Buffer.from(input.data), `request ${index}: bytes`);
      }
      const executions = model.executions.slice(executionsBefore);
      for (const execution of executions) {
        const [rows, width] = execution.shapes[0]!;
        assert.equal(execution.byteLengths[0], rows! * width! * 4, `an execution of shape [${rows},${width}] holds bytes of other widths`);
      }
      assert.ok(executions.length < requests.length, 'requests of the same width were merged');
      assert.ok(executions.some((execution) => execution.shapes[0]![1] === 3 && execution.shapes[0]![0]! > 4));
      assert.ok(executions.some((execution) => execution.shapes[0]![1] === 5 && execution.shapes[0]![0]! > 4));
    });
  });

  describe('deadlines in the batcher queue', () => {
    let model: Awaited<ReturnType<typeof loadRecorded>>;
    before(async () => {
      model = await loadRecorded('slow.onnx');
      opened.push(model.instances);
    });

    /** slow.onnx: `iterations` rounds of a 256×256 MatMul + Tanh (a few µs each). */
    function slowInputs(iterations: number): Tensor[] {
      return [
        { name: 'iterations', datatype: 'INT64', shape: [], data: new Uint8Array(BigInt64Array.of(BigInt(iterations)).buffer) },
        randomTensor('x', [1, 256], 9000 + iterations),
      ];
    }

    test('a request still queued here past its deadline is dropped with DEADLINE_EXCEEDED and never runs', async () => {
      const batcher = new ModelBatcher(model.instances, model.loaded.signature, batchingOn);
      const executionsBefore = model.executions.length;
      const blocker = batcher.submit(slowInputs(100_000), ['y']);
      const late = batcher.submit(slowInputs(1), ['y'], { deadline: Date.now() + 20, timeoutMs: 20 });
      const patient = batcher.submit(slowInputs(2), ['y']);
      const [blocked, dropped, served] = await Promise.allSettled([blocker, late, patient]);
      assert.equal(blocked.status, 'fulfilled');
      assert.equal(served.status, 'fulfilled', 'a request without a deadline behind it still runs');
      assert.equal(dropped.status, 'rejected');
      assert.ok(dropped.reason instanceof GantryError && dropped.reason.code === ErrorCode.DeadlineExceeded, String(dropped.reason));
      assert.match(dropped.reason.message, /20 ms/);
      const ran = model.executions.slice(executionsBefore).map((execution) => execution.byteLengths[0]);
      assert.equal(ran.length, 2, `executions: ${JSON.stringify(ran)} (the blocker and the patient request only)`);
    });
  });

  describe('handing input bytes to the instance thread', () => {
    let instances: ModelInstances;
    before(async () => {
      instances = (await ModelInstances.load(fixturePath('identity-float.onnx'), 1, sessionSettings)).instances;
      opened.push(instances);
    });

    test('an owned buffer of its own is transferred without a copy; the caller sees it detached', async () => {
      const input = randomTensor('input', [1, 1000], 8100);
      const expected = Buffer.from(input.data);
      const run = await instances.run([input], ['output'], { inputsOwned: true });
      assert.deepEqual(Buffer.from(run.outputs[0]!.data), expected);
      assert.equal(input.data.buffer.byteLength, 0, 'the buffer went to the thread (detached here)');
    });

    test('without ownership the source buffer stays usable', async () => {
      const input = randomTensor('input', [1, 1000], 8101);
      const run = await instances.run([input], ['output']);
      assert.deepEqual(Buffer.from(run.outputs[0]!.data), Buffer.from(input.data));
      assert.equal(input.data.byteLength, 4000);
    });

    test('an owned buffer whose input starts off 8-byte alignment is copied, not transferred', async () => {
      const backing = new Uint8Array(4 + 4000);
      const source = randomTensor('input', [1, 1000], 8102);
      backing.set(source.data, 4);
      const input: Tensor = { ...source, data: backing.subarray(4) };
      const run = await instances.run([input], ['output'], { inputsOwned: true });
      assert.deepEqual(Buffer.from(run.outputs[0]!.data), Buffer.from(source.data));
      assert.equal(backing.byteLength, 4004, 'the misaligned source was copied and is still here');
    });
  });
});
