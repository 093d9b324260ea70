/**
 * Automatic intra-op threads (intraOpThreads 0) through the worker's SessionCache, with real onnxruntime: each
 * instance loads with its share of the cores (given here as 2, so the test means the same on any host), a light
 * model measured under the threshold is loaded again with one thread, a heavy one keeps the share, and an explicit
 * count is used as it is. Checked through what the load reports and through the threads the process really runs
 * (/proc/self/task), which is what the thread budget is about.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { createLogger } from '../../src/logger.js';
import { defaultExecutionSettings, type ExecutionSettings } from '../../src/queue/job-contracts.js';
import { FileModelStore } from '../../src/registry/file-model-store.js';
import { SessionCache, type CachedModel } from '../../src/worker/session-cache.js';
import { lightRunThresholdMs } from '../../src/worker/thread-choice.js';
import { DataType, encodeModel, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo, uniformFloats } from '../../support/onnx-builder.js';
import { mulberry32 } from '../../support/prng.js';
import { localBlobs } from '../helpers/local-blobs.js';
import { fixturePath } from '../helpers/gantry-process.js';

let directory: string;
let store: FileModelStore;
let cache: SessionCache;
let tinyMlp: string;
let heavyFixed: string;

/**
 * A model whose every run is heavy even with zero-filled inputs: a fixed batch of 256 rows through three
 * 1024-wide layers (about 600 M multiply-adds, several ms a run), so no dynamic dimension shrinks it to one row.
 */
function heavyFixedBatch(): Uint8Array {
  const random = mulberry32(11);
  const widths = [256, 1024, 1024, 1024, 16];
  const initializers = [];
  const nodes = [];
  let previous = 'input';
  for (let layer = 0; layer < widths.length - 1; layer++) {
    initializers.push(
      makeTensor(`W${layer}`, DataType.FLOAT, [widths[layer]!, widths[layer + 1]!], uniformFloats(random, widths[layer]! * widths[layer + 1]!, 0.05)),
    );
    const output = layer === widths.length - 2 ? 'output' : `hidden${layer}`;
    nodes.push(makeNode('MatMul', [previous, `W${layer}`], [output]));
    previous = output;
  }
  const graph = makeGraph({
    name: 'heavy_fixed_batch',
    inputs: [makeValueInfo('input', DataType.FLOAT, [256, 256])],
    outputs: [makeValueInfo('output', DataType.FLOAT, [256, 16])],
    initializers,
    nodes,
  });
  return encodeModel(makeModel(graph, 'Gantry test model: a heavy fixed-batch MLP.'));
}

const settings = (instances: number, intraOpThreads: number): ExecutionSettings => ({
  ...defaultExecutionSettings,
  instances,
  intraOpThreads,
  interOpThreads: 0,
  optimizedModelCache: false,
});

async function processThreads(): Promise<number> {
  return (await readdir('/proc/self/task')).length;
}

/** Waits until the process runs `expected` threads (released sessions' threads end shortly after the terminate). */
async function settleAt(expected: number): Promise<void> {
  for (let attempt = 0; attempt < 200 && (await processThreads()) !== expected; attempt++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(await processThreads(), expected, 'the released sessions ended their threads');
}

/** Loads, returns the model and how many threads the process gained, then unloads it again. */
async function loadAndCount(sha256: string, executionSettings: ExecutionSettings): Promise<{ model: CachedModel; addedThreads: number }> {
  const before = await processThreads();
  const model = await cache.get(sha256, executionSettings);
  const addedThreads = (await processThreads()) - before;
  cache.evict(sha256);
  // Awaits the threads' end (the eviction's own release already asked them to end).
  await model.instances.close();
  await settleAt(before);
  return { model, addedThreads };
}

before(async () => {
  directory = await mkdtemp(path.join(os.tmpdir(), 'gantry-auto-threads-'));
  store = new FileModelStore(directory);
  await store.init();
  tinyMlp = (await store.put(Readable.from([await readFile(fixturePath('tiny-mlp.onnx'))]), 1024 ** 3)).sha256;
  heavyFixed = (await store.put(Readable.from([heavyFixedBatch()]), 1024 ** 3)).sha256;
  cache = new SessionCache(
    localBlobs(store, directory),
    { maxLoadedModels: 8, executionProviders: ['cpu'], cacheDirectory: path.join(directory, 'cache'), availableParallelism: 2 },
    createLogger({ LOG_LEVEL: 'silent' }, 'test'),
  );
  // The first instance thread leaves a process-wide thread behind (Node's or onnxruntime's), which is no model's.
  const first = await cache.get(tinyMlp, settings(1, 1));
  cache.evict(tinyMlp);
  await first.instances.close();
});
after(async () => {
  await cache.close();
  await rm(directory, { recursive: true, force: true });
});

test('a light model with automatic threads ends up with one intra-op thread: reported, budgeted and really running', async () => {
  const explicitOne = await loadAndCount(tinyMlp, settings(1, 1));
  const automatic = await loadAndCount(tinyMlp, settings(1, 0));
  assert.equal(automatic.model.intraOpThreads, 1);
  assert.ok(automatic.model.measuredRunMs !== undefined && automatic.model.measuredRunMs < lightRunThresholdMs, `measured ${automatic.model.measuredRunMs} ms`);
  assert.equal(automatic.model.threads, 1, 'the thread budget counts what it holds now');
  assert.equal(automatic.addedThreads, explicitOne.addedThreads, 'no intra-op pool thread beyond the instance thread');
});

test('an explicit intraOpThreads 2 is used as it is, with no measurement: one pool thread more than one thread', async () => {
  const explicitOne = await loadAndCount(tinyMlp, settings(1, 1));
  const explicitTwo = await loadAndCount(tinyMlp, settings(1, 2));
  assert.equal(explicitTwo.model.intraOpThreads, 2);
  assert.equal(explicitTwo.model.measuredRunMs, undefined);
  assert.equal(explicitTwo.model.threads, 2);
  assert.equal(explicitTwo.addedThreads, explicitOne.addedThreads + 1);
});

test('a heavy model keeps the share: 2 threads with one instance of 2 cores, 1 each with two instances', async () => {
  const explicitOne = await loadAndCount(heavyFixed, settings(1, 1));
  const alone = await loadAndCount(heavyFixed, settings(1, 0));
  assert.equal(alone.model.intraOpThreads, 2);
  assert.ok(alone.model.measuredRunMs !== undefined && alone.model.measuredRunMs >= lightRunThresholdMs, `measured ${alone.model.measuredRunMs} ms`);
  assert.equal(alone.model.threads, 2);
  assert.equal(alone.addedThreads, explicitOne.addedThreads + 1);

  const twoInstances = await loadAndCount(heavyFixed, settings(2, 0));
  assert.equal(twoInstances.model.intraOpThreads, 1);
  assert.equal(twoInstances.model.measuredRunMs, undefined, 'a share of one leaves nothing to choose');
  assert.equal(twoInstances.model.threads, 2);
  assert.equal(twoInstances.addedThreads, 2 * explicitOne.addedThreads);
});
