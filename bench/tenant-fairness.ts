/**
 * `node dist/bench/tenant-fairness.js [seconds=8] [floodConnections=64]`
 *
 * Fairness between tenants (issue 12): two tenants on one `gantry start` (API + one worker), each with its own
 * copy of the tiny MLP. The quiet tenant sends one request every 50 ms (20 req/s, one at a time); the flooding
 * tenant drives its model with `floodConnections` connections as fast as it can, from a separate process. Prints
 * the quiet tenant's p50 (and p99) unloaded, under the flood, and under the flood with the flooding tenant held
 * to a rate limit (PUT /v1/tenants/flood/limits), and each loaded p50 over the unloaded one (target ≤ 2×).
 * What keeps the quiet tenant's latency is the per-tenant share of each API process (GANTRY_TENANT_MAX_INFLIGHT,
 * default 16): run with GANTRY_TENANT_MAX_INFLIGHT=0 to see the flood without it. The rate-limited phase shows
 * what a rate limit does against a client that ignores 429 and Retry-After: it keeps the flood off the workers
 * but not off the API, which answers every refused request.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { readFile } from 'node:fs/promises';
import type { JsonBody } from '../support/json-body.js';
import { startGantry, testAdminKey, type GantryProcess } from '../support/gantry-process.js';
import { benchInput, benchModels, benchRequest, percentile, repositoryRoot, type BenchModel } from './models.js';

const [secondsText = '8', connectionsText = '64'] = process.argv.slice(2);
const seconds = Number(secondsText);
const floodConnections = Number(connectionsText);
const tinyModel = benchModels[0] as BenchModel;
const quietIntervalMs = 50;
/** The flooding tenant's rate in the third phase: well above the quiet tenant's, well below what the box serves. */
const floodRateLimit = 200;

const request = benchRequest(tinyModel, benchInput(tinyModel.shape), 'json');
const body = typeof request.body === 'string' ? request.body : Buffer.from(request.body).toString();

async function call(gantry: GantryProcess, key: string, method: string, urlPath: string, payload?: unknown): Promise<JsonBody> {
  const response = await fetch(`${gantry.baseUrl}${urlPath}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(payload === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(payload === undefined ? {} : { body: JSON.stringify(payload) }),
  });
  const text = await response.text();
  if (response.status >= 300) throw new Error(`${method} ${urlPath} answered ${response.status}: ${text}`);
  return text === '' ? undefined : JSON.parse(text);
}

async function tenantWithModel(gantry: GantryProcess, tenant: string): Promise<string> {
  await call(gantry, testAdminKey, 'POST', '/v1/tenants', { id: tenant });
  const { key } = await call(gantry, testAdminKey, 'POST', '/v1/keys', { tenant, name: `${tenant} bench key`, scopes: ['infer', 'models:write'] });
  const upload = await fetch(`${gantry.baseUrl}/v1/models/mlp/versions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/octet-stream' },
    body: await readFile(tinyModel.path),
  });
  if (upload.status !== 201) throw new Error(`upload answered ${upload.status}: ${await upload.text()}`);
  return key as string;
}

/** The quiet tenant: one request every quietIntervalMs for `durationMs`, one at a time; latencies of 200s in ms. */
async function quietLoad(gantry: GantryProcess, key: string, durationMs: number): Promise<{ latencies: number[]; failures: number }> {
  const latencies: number[] = [];
  let failures = 0;
  const end = Date.now() + durationMs;
  let next = Date.now();
  while (Date.now() < end) {
    const started = performance.now();
    const response = await fetch(`${gantry.baseUrl}/v2/models/mlp/infer`, {
      method: 'POST',
      headers: { ...request.headers, authorization: `Bearer ${key}` },
      body,
    });
    await response.arrayBuffer();
    if (response.status === 200) latencies.push(performance.now() - started);
    else failures++;
    next += quietIntervalMs;
    const wait = next - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
  return { latencies: latencies.sort((a, b) => a - b), failures };
}

/** Runs the flood in its own process for `floodSeconds`; resolves with what it reported. */
function flood(gantry: GantryProcess, key: string, floodSeconds: number): Promise<{ okPerSecond: number; non2xxPerSecond: number; errors: number }> {
  const options = {
    url: `${gantry.baseUrl}/v2/models/mlp/infer`,
    headers: { ...request.headers, authorization: `Bearer ${key}` },
    body,
    connections: floodConnections,
    seconds: floodSeconds,
  };
  const child = spawn(process.execPath, [path.join(repositoryRoot, 'dist/bench/flood-client.js')], {
    env: { ...process.env, FLOOD_OPTIONS: JSON.stringify(options) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(output.trim().split('\n').pop()!)) : reject(new Error(`flood client exited with ${code}`))));
  });
}

const format = (ms: number) => ms.toFixed(2);

// GANTRY_TENANT_MAX_INFLIGHT from the environment (e.g. 0 to see the flood without the tenant share) goes to gantry.
const gantry = await startGantry({
  command: 'start',
  env: process.env.GANTRY_TENANT_MAX_INFLIGHT === undefined ? {} : { GANTRY_TENANT_MAX_INFLIGHT: process.env.GANTRY_TENANT_MAX_INFLIGHT },
});
try {
  const quietKey = await tenantWithModel(gantry, 'quiet');
  const floodKey = await tenantWithModel(gantry, 'flood');
  // Warm-up: both models loaded and JIT-warm on every path.
  await quietLoad(gantry, quietKey, 1000);
  await flood(gantry, floodKey, 2);

  const unloaded = await quietLoad(gantry, quietKey, seconds * 1000);
  // The flood starts first and runs a little longer than the quiet window, so every quiet request meets it.
  const floodRun = flood(gantry, floodKey, seconds + 2);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const loaded = await quietLoad(gantry, quietKey, seconds * 1000);
  const floodResult = await floodRun;

  await call(gantry, testAdminKey, 'PUT', '/v1/tenants/flood/limits', { requestsPerSecond: floodRateLimit });
  const limitedRun = flood(gantry, floodKey, seconds + 2);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const limited = await quietLoad(gantry, quietKey, seconds * 1000);
  const limitedResult = await limitedRun;

  const p50 = (run: { latencies: number[] }) => percentile(run.latencies, 50);
  const rows = [
    ['unloaded', unloaded, undefined],
    [`flood, ${floodConnections} connections`, loaded, floodResult],
    [`flood held to ${floodRateLimit} req/s (tenant rate limit)`, limited, limitedResult],
  ] as const;
  process.stdout.write(
    '| quiet tenant while | quiet p50 ms | quiet p99 ms | quiet answered | quiet failed | p50 / unloaded | flood 2xx/s | flood 429 or other/s |\n|---|---|---|---|---|---|---|---|\n',
  );
  for (const [label, run, floodNumbers] of rows) {
    process.stdout.write(
      `| ${label} | ${format(p50(run))} | ${format(percentile(run.latencies, 99))} | ${run.latencies.length} | ${run.failures} | ${(p50(run) / p50(unloaded)).toFixed(2)}× | ${floodNumbers === undefined ? '' : floodNumbers.okPerSecond.toFixed(0)} | ${floodNumbers === undefined ? '' : floodNumbers.non2xxPerSecond.toFixed(0)} |\n`,
    );
  }
  const ratio = p50(loaded) / p50(unloaded);
  process.stdout.write(
    `\nquiet p50 under the flood / unloaded: ${ratio.toFixed(2)}× (target ≤ 2×: ${ratio <= 2 ? 'met' : 'NOT met'}); with the flooding tenant rate-limited: ${(p50(limited) / p50(unloaded)).toFixed(2)}×\n`,
  );
} finally {
  await gantry.cleanup();
}
