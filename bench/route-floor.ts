/**
 * `node dist/bench/route-floor.js [seconds=5] [connections=64]`
 *
 * What Gantry's API process spends per request on routes that do less and less than an inference: GET
 * /v2/health/live (HTTP and Fastify's hooks only), GET /v2/models/{m} (plus authentication and a catalog lookup) and
 * POST /v2/models/{m}/infer on the tiny MLP in JSON (plus the body, the queue and the reply). One `gantry start` on
 * the shared Redis, each route driven by autocannon after a 1 s warm-up; prints req/s and the API process's CPU per
 * answered request (utime + stime from /proc). The first row is the floor under any inference route: bench/targets.ts
 * compares the API's room under each throughput target with it.
 */
import autocannon from 'autocannon';
import { startGantry, uploadModel } from '../support/gantry-process.js';
import { benchInput, benchModels, benchRequest, type BenchModel } from './models.js';
import { cpuMicroseconds } from './process-cpu.js';

const [secondsText = '5', connectionsText = '64'] = process.argv.slice(2);
const seconds = Number(secondsText);
const connections = Number(connectionsText);
const tinyModel = benchModels[0] as BenchModel;

const gantry = await startGantry({ command: 'start', env: { GANTRY_GRPC_PORT: '0' } });
try {
  const upload = await uploadModel(gantry.baseUrl, tinyModel.name, tinyModel.path);
  if (upload.status !== 201) throw new Error(`upload answered ${upload.status}`);
  const inference = benchRequest(tinyModel, benchInput(tinyModel.shape), 'json');
  const routes = [
    { route: 'GET /v2/health/live', options: { url: `${gantry.baseUrl}/v2/health/live`, method: 'GET' as const } },
    { route: 'GET /v2/models/{m}', options: { url: `${gantry.baseUrl}/v2/models/${tinyModel.name}`, method: 'GET' as const, headers: inference.headers } },
    {
      route: 'POST /v2/models/{m}/infer (tiny MLP, JSON)',
      options: { url: `${gantry.baseUrl}/v2/models/${tinyModel.name}/infer`, method: 'POST' as const, headers: inference.headers, body: inference.body },
    },
  ];
  console.log(`| route | req/s | API CPU µs per request |\n| --- | ---: | ---: |`);
  for (const { route, options } of routes) {
    await autocannon({ ...options, connections, duration: 1 });
    const before = cpuMicroseconds(gantry.child.pid!) ?? Number.NaN;
    const result = await autocannon({ ...options, connections, duration: seconds });
    const after = cpuMicroseconds(gantry.child.pid!) ?? Number.NaN;
    if (result.non2xx > 0 || result.errors > 0) throw new Error(`${route}: ${result.non2xx} non-2xx answers, ${result.errors} errors`);
    const answered = Math.max(1, result['2xx']);
    console.log(`| ${route} | ${(answered / result.duration).toFixed(0)} | ${((after - before) / answered).toFixed(0)} |`);
  }
  console.log(`${connections} connections, ${seconds} s per route after 1 s of warm-up`);
} finally {
  await gantry.cleanup();
}
