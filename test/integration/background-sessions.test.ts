/**
 * Background sessions (shadow copies, issue 14): the worker's SessionCache runs work nobody waits on on a session
 * of its own, one instance with one onnxruntime thread, in a thread at the lowest OS priority (nice 19 and SCHED_IDLE), beside the
 * version's foreground sessions and never replacing them. Real onnxruntime, real model files, real threads: the
 * nice values are read from /proc.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { createLogger } from '../../src/logger.js';
import { defaultExecutionSettings, type ExecutionSettings } from '../../src/queue/job-contracts.js';
import { FileModelStore } from '../../src/registry/file-model-store.js';
import { SessionCache } from '../../src/worker/session-cache.js';
import { fixturePath } from '../helpers/gantry-process.js';
import { localBlobs } from '../helpers/local-blobs.js';
import { schedIdle, threadNiceValues, threadScheduling } from '../helpers/thread-nice.js';

let directory: string;
let cache: SessionCache;
let tinyMlp: string;

const settings = (instances: number, intraOpThreads = 0): ExecutionSettings => ({
  ...defaultExecutionSettings,
  instances,
  intraOpThreads,
  optimizedModelCache: false,
});

const niceThreads = async () => (await threadNiceValues()).filter((nice) => nice === 19).length;

function tinyInput(value: number) {
  return [{ name: 'input', datatype: 'FP32' as const, shape: [1, 256], data: new Uint8Array(new Float32Array(256).fill(value).buffer) }];
}

before(async () => {
  directory = await mkdtemp(path.join(os.tmpdir(), 'gantry-background-sessions-'));
  const store = new FileModelStore(directory);
  await store.init();
  tinyMlp = (await store.put(Readable.from([await readFile(fixturePath('tiny-mlp.onnx'))]), 1024 ** 3)).sha256;
  cache = new SessionCache(
    localBlobs(store, directory),
    { maxLoadedModels: 32, executionProviders: ['cpu'], cacheDirectory: path.join(directory, 'cache') },
    createLogger({ LOG_LEVEL: 'silent' }, 'test'),
  );
});
after(async () => {
  await cache.close();
  await rm(directory, { recursive: true, force: true });
});

test('a background session is a session of its own, one instance, in a thread at nice 19; foreground threads keep nice 0', async () => {
  if (process.platform !== 'linux') return; // per-thread nice values are Linux's
  assert.equal(os.getPriority(), 0, 'the test process itself runs at nice 0');
  const foreground = await cache.get(tinyMlp, settings(2));
  assert.equal(await niceThreads(), 0, 'foreground instance threads are not niced');
  const background = await cache.get(tinyMlp, settings(2), 'background');
  assert.notEqual(background, foreground, 'background work gets its own sessions, never the foreground ones');
  assert.equal(background.instances.count, 1, 'one background instance, whatever the model configures');
  assert.equal(foreground.instances.count, 2);
  assert.ok((await niceThreads()) >= 1, 'the background instance thread runs at nice 19');
  // SCHED_IDLE (set with util-linux's chrt, which Debian always has) on top: preempted at once by any normal thread.
  assert.equal(background.backgroundScheduling, 'idle');
  const idleThreads = (await threadScheduling()).filter((thread) => thread.policy === schedIdle);
  assert.ok(idleThreads.length >= 1 && idleThreads.every((thread) => thread.nice === 19), 'the background thread is SCHED_IDLE');
  assert.equal(foreground.backgroundScheduling, undefined, 'foreground sessions are scheduled normally');
  assert.equal(os.getPriority(), 0, "the process's main thread keeps nice 0");

  const [fromForeground, fromBackground] = await Promise.all([
    foreground.batcher.submit(tinyInput(0.25), ['output']),
    background.batcher.submit(tinyInput(0.25), ['output']),
  ]);
  assert.deepEqual(fromBackground.outputs[0]!.data, fromForeground.outputs[0]!.data, 'both lanes run the same model');
  assert.equal(await cache.get(tinyMlp, settings(2), 'background'), background, 'later background work reuses the session');
});

test('new foreground settings replace the foreground sessions only; evicting the blob releases both lanes', async () => {
  const background = await cache.get(tinyMlp, settings(2), 'background');
  const oldForeground = await cache.get(tinyMlp, settings(2));
  const newForeground = await cache.get(tinyMlp, settings(1, 1));
  assert.notEqual(newForeground, oldForeground);
  assert.equal(oldForeground.instances.healthy, false, 'the foreground sessions under the old settings were replaced');
  assert.equal(background.instances.healthy, true, 'the background session was not replaced by a foreground change');
  assert.equal(await cache.get(tinyMlp, settings(1, 1), 'background'), background, 'background settings do not follow the instance count');

  cache.evict(tinyMlp);
  assert.equal(background.instances.healthy, false);
  assert.equal(newForeground.instances.healthy, false);
  assert.equal(cache.usesBlob(tinyMlp), false);
  // The niced thread ends with its session.
  for (let waited = 0; waited < 2000 && (await niceThreads()) > 0; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(await niceThreads(), 0, 'no niced thread is left once the background session is released');
});
