/**
 * `node dist/bench/many-models.js [models=2000] [workers=2] [idleWaitSeconds=40]`
 *
 * What many models cost Redis (issue 11): on a private redis-server (so every client and command counted is
 * Gantry's), one `gantry api` and N `gantry worker` processes with default settings. Uploads the identity model
 * under `models` names, then measures clients and commands/s idle, the peak clients while every model is asked
 * once (32 requests in flight), and again once the workers' consumers went idle (GANTRY_MODEL_QUEUE_IDLE_MS, 30 s).
 * Prints one line per phase and the bounds: clients ≤ fixed + workers × GANTRY_MAX_ACTIVE_MODEL_QUEUES, idle
 * commands/s the same with 0 and with `models` models.
 */
import { GantryClient } from '../src/client/index.js';
import { fixturePath, startGantry, testAdminKey, type GantryProcess } from '../support/gantry-process.js';
import { eachLimited, measureRedisFootprint, trackPeakClients, type RedisFootprint } from '../support/redis-footprint.js';
import { startPrivateRedis, sleep } from '../support/private-redis.js';

const [modelsText = '2000', workersText = '2', idleWaitText = '40'] = process.argv.slice(2);
const modelCount = Number(modelsText);
const workerCount = Number(workersText);
const idleWaitSeconds = Number(idleWaitText);
const maxActivePerWorker = 32; // GANTRY_MAX_ACTIVE_MODEL_QUEUES's default

function line(phase: string, footprint: RedisFootprint): string {
  const busiest = Object.entries(footprint.commandsPerSecondByName)
    .slice(0, 6)
    .map(([name, rate]) => `${name} ${rate}`)
    .join(', ');
  return `${phase.padEnd(34)} clients ${String(footprint.clients).padStart(4)}   idle commands/s ${footprint.commandsPerSecond.toFixed(1).padStart(6)}   (${busiest})`;
}

const redis = await startPrivateRedis();
const processes: GantryProcess[] = [];
try {
  const api = await startGantry({ command: 'api', redisUrl: redis.url });
  processes.push(api);
  for (let index = 0; index < workerCount; index++) {
    processes.push(await startGantry({ command: 'worker', redisUrl: redis.url, prefix: api.prefix, dataDirectory: api.dataDirectory }));
  }
  // No retries: a refusal is counted as one, not hidden by a second attempt.
  const client = new GantryClient({ url: api.baseUrl, key: testAdminKey, retries: 0 });
  const empty = await measureRedisFootprint(redis.url, 5000);
  process.stdout.write(`${line('no models, idle', empty)}\n`);

  const names = Array.from({ length: modelCount }, (_, index) => `model-${index}`);
  const uploadStarted = Date.now();
  await eachLimited(names, 8, async (name) => {
    const pushed = await client.models.push(fixturePath('identity-float.onnx'), { name });
    if (pushed.status !== 201) throw new Error(`upload of ${name}: ${pushed.status} (${pushed.state})`);
  });
  process.stdout.write(`uploaded ${modelCount} models in ${((Date.now() - uploadStarted) / 1000).toFixed(1)} s\n`);
  const registered = await measureRedisFootprint(redis.url, 5000);
  process.stdout.write(`${line(`${modelCount} models, idle`, registered)}\n`);

  const peak = trackPeakClients(redis.url, 250);
  let failures = 0;
  const inferStarted = Date.now();
  await eachLimited(names, 32, async (name) => {
    await client.infer(name, { input: { data: new Float32Array([1, 2, 3, 4]), shape: [1, 4] } }).catch(() => failures++);
  });
  const peakClients = await peak.stop();
  process.stdout.write(
    `every model asked once: ${modelCount - failures}/${modelCount} answered 200 in ${((Date.now() - inferStarted) / 1000).toFixed(1)} s; peak clients ${peakClients}\n`,
  );

  await sleep(idleWaitSeconds * 1000);
  const idleAgain = await measureRedisFootprint(redis.url, 5000);
  process.stdout.write(`${line(`${modelCount} models, idle again`, idleAgain)}\n`);

  const clientBound = empty.clients + workerCount * maxActivePerWorker;
  process.stdout.write(
    [
      '',
      `bound: clients ≤ ${empty.clients} fixed + ${workerCount} workers × ${maxActivePerWorker} active model queues = ${clientBound}: peak ${peakClients} ${peakClients <= clientBound ? 'ok' : 'EXCEEDED'}`,
      `bound: idle clients with ${modelCount} models = without models (${empty.clients}): ${registered.clients}, ${idleAgain.clients} ${registered.clients === empty.clients && idleAgain.clients === empty.clients ? 'ok' : 'EXCEEDED'}`,
      `ratio: idle commands/s with ${modelCount} models / without: ${(registered.commandsPerSecond / empty.commandsPerSecond).toFixed(2)} (idle again ${(idleAgain.commandsPerSecond / empty.commandsPerSecond).toFixed(2)})`,
      '',
    ].join('\n'),
  );
  if (failures > 0) process.exitCode = 1;
} finally {
  for (const child of processes.reverse()) await child.cleanup();
  await redis.cleanup();
}
