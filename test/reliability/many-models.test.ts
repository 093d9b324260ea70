/**
 * Redis connections and idle commands do not grow with models (issue 11): a worker consumes only the model
 * queues announced with work, at most GANTRY_MAX_ACTIVE_MODEL_QUEUES at once, and closes idle ones. On a private
 * redis-server (so every client and command counted is Gantry's): one API and two workers serving many models
 * of which every one answers, with clients and idle commands per second under fixed bounds.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fixturePath, inferJson, startGantry, uploadModel, type GantryProcess } from '../helpers/gantry-process.js';
import { eachLimited, measureRedisFootprint, trackPeakClients } from '../helpers/redis-footprint.js';
import { startPrivateRedis, sleep, type PrivateRedis } from '../helpers/reliability-harness.js';

const modelCount = 150;
const maxActivePerWorker = 8;
const idleMs = 3000;
/**
 * Connections a process holds whatever the models: the API's (commands, reply and registry subscribers, …) and a
 * worker's (BullMQ's shared connection, commands, registry subscriber, doorbell reader, load-queue consumer).
 */
const fixedClientsBound = 16;
/**
 * Commands per second the three processes send when nothing is asked of them (blocking reads, BullMQ's stalled-job
 * checks every GANTRY_JOB_LOCK_MS, here 1 s): whatever the number of models.
 */
const idleCommandsPerSecondBound = 40;
/** How much more idle traffic the models may cause (measurement noise: a timer firing inside or outside a window). */
const idleCommandsGrowthBound = 4;
/**
 * How long idle traffic is counted. A blocking consumer's cycle (BZPOPMIN, then BullMQ's moveToActive script) costs
 * Redis ~8 commands, scripts' own included, once per drainDelay (1 s here, longer for some consumers): in a 3 s window
 * whether one more cycle lands inside moved the rate by ~3 commands/s, nearly the growth bound (it failed once in a
 * fresh-clone CI run, passing alone right after). Ten seconds keeps that under 1/s.
 */
const idleWindowMs = 10_000;

describe('Redis footprint with many models', { timeout: 240_000 }, () => {
  let redis: PrivateRedis;
  let api: GantryProcess;
  const workers: GantryProcess[] = [];
  const names = Array.from({ length: modelCount }, (_, index) => `many-${index}`);

  before(async () => {
    redis = await startPrivateRedis();
    api = await startGantry({ command: 'api', redisUrl: redis.url });
    const workerEnv = { GANTRY_MODEL_QUEUE_IDLE_MS: String(idleMs), GANTRY_JOB_LOCK_MS: '1000', GANTRY_MAX_ACTIVE_MODEL_QUEUES: String(maxActivePerWorker) };
    for (let index = 0; index < 2; index++) {
      workers.push(await startGantry({ command: 'worker', redisUrl: redis.url, prefix: api.prefix, dataDirectory: api.dataDirectory, env: workerEnv }));
    }
  });

  after(async () => {
    for (const worker of workers) await worker.cleanup();
    await api?.cleanup();
    await redis?.cleanup();
  });

  test(`${modelCount} models on 2 workers: bounded clients and idle commands, and every model answers`, async () => {
    const idleWithoutModels = await measureRedisFootprint(redis.url, idleWindowMs);
    assert.ok(idleWithoutModels.clients <= fixedClientsBound, `clients without models: ${JSON.stringify(idleWithoutModels.clientsByName)}`);
    assert.ok(idleWithoutModels.commandsPerSecond <= idleCommandsPerSecondBound, `idle commands/s without models: ${JSON.stringify(idleWithoutModels)}`);
    await eachLimited(names, 8, async (name) => {
      const upload = await uploadModel(api.baseUrl, name, fixturePath('identity-float.onnx'));
      assert.equal(upload.status, 201, `${name}: ${JSON.stringify(upload.body)}`);
    });
    const idleAfterUploads = await measureRedisFootprint(redis.url, idleWindowMs);
    // Models that are only registered cost nothing: the same clients and commands as without them.
    assert.equal(idleAfterUploads.clients, idleWithoutModels.clients, `clients after ${modelCount} uploads: ${JSON.stringify(idleAfterUploads.clientsByName)}`);
    assert.ok(
      idleAfterUploads.commandsPerSecond <= idleWithoutModels.commandsPerSecond + idleCommandsGrowthBound,
      `idle commands/s: ${JSON.stringify(idleAfterUploads)}`,
    );

    // Every model asked at once, many more than the consumer slots: they take turns, all answer.
    const peak = trackPeakClients(redis.url);
    const failures: string[] = [];
    await eachLimited(names, 32, async (name) => {
      const reply = await inferJson(api.baseUrl, name, { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] });
      if (reply.status !== 200 || JSON.stringify(reply.body.outputs?.[0]?.data) !== '[1,2,3,4]')
        failures.push(`${name}: ${reply.status} ${JSON.stringify(reply.body)}`);
    });
    const peakClients = await peak.stop();
    assert.deepEqual(failures, []);
    assert.ok(peakClients <= fixedClientsBound + 2 * maxActivePerWorker, `peak clients while serving: ${peakClients}`);

    // Once idle, the consumers close again: back to the fixed connections and a trickle of commands.
    await sleep(idleMs + 2000);
    const idleAfterUse = await measureRedisFootprint(redis.url, idleWindowMs);
    assert.equal(idleAfterUse.clients, idleWithoutModels.clients, `clients once idle again: ${JSON.stringify(idleAfterUse.clientsByName)}`);
    assert.ok(
      idleAfterUse.commandsPerSecond <= idleWithoutModels.commandsPerSecond + idleCommandsGrowthBound,
      `idle commands/s once idle again: ${JSON.stringify(idleAfterUse)}`,
    );
    process.stdout.write(
      `# footprint: no models ${JSON.stringify(idleWithoutModels)}; ${modelCount} idle ${JSON.stringify(idleAfterUploads)}; peak clients ${peakClients}; idle again ${JSON.stringify(idleAfterUse)}\n`,
    );
  });
});
