/**
 * `node dist/bench/auth-overhead.js [rounds=20] [requests=3000]`
 *
 * What authentication adds to one request, measured in one process so that both sides see the same machine: two
 * API apps on the shared Redis (each its own prefix), one with GANTRY_AUTH=on driven with the admin key, one
 * with GANTRY_AUTH=off (every caller the admin, no key looked at), each answering GET /v2 (no Redis, no worker:
 * what is left is the HTTP stack plus the auth hook) through app.inject(). Rounds alternate between the two and
 * the medians are compared; the difference is the per-request cost of a cached key. bench/compare-builds.ts
 * gives the whole tiny-model request's cost to compare it with.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ApiRole } from '../src/api/api-role.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { adminAuthorization, deleteKeys, testAdminKey } from '../support/gantry-process.js';

const [roundsText = '20', requestsText = '3000'] = process.argv.slice(2);
const rounds = Number(roundsText);
const requests = Number(requestsText);
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

async function app(auth: 'on' | 'off') {
  const prefix = `bench-auth-${auth}-${randomBytes(3).toString('hex')}`;
  const dataDirectory = await mkdtemp(path.join(os.tmpdir(), 'gantry-bench-auth-'));
  const config = loadConfig({
    GANTRY_QUEUE_PREFIX: prefix,
    GANTRY_DATA_DIR: dataDirectory,
    LOG_LEVEL: 'silent',
    REDIS_URL: redisUrl,
    GANTRY_ADMIN_KEY: testAdminKey,
    GANTRY_AUTH: auth,
    GANTRY_MAX_EVENT_LOOP_DELAY_MS: '0',
  });
  const role = await ApiRole.create({ ...config, REDIS_URL: redisUrl }, createLogger(config, 'bench'));
  await role.app.ready();
  return {
    role,
    close: async () => {
      await role.close(1000);
      await deleteKeys(redisUrl, prefix);
      await rm(dataDirectory, { recursive: true, force: true });
    },
  };
}

/** Microseconds per request over `requests` sequential injects. */
async function round(role: ApiRole, authorization = adminAuthorization): Promise<number> {
  const started = process.hrtime.bigint();
  for (let index = 0; index < requests; index++) {
    const response = await role.app.inject({ method: 'GET', url: '/v2', headers: { authorization } });
    if (response.statusCode !== 200) throw new Error(`GET /v2 answered ${response.statusCode}: ${response.body}`);
  }
  return Number(process.hrtime.bigint() - started) / requests / 1000;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

const on = await app('on');
const off = await app('off');
try {
  const created = await on.role.app.inject({
    method: 'POST',
    url: '/v1/keys',
    headers: { authorization: adminAuthorization },
    payload: { name: 'bench', scopes: ['infer'] },
  });
  const tenantAuthorization = `Bearer ${(created.json() as { key: string }).key}`;
  const sides = [
    { label: 'auth on, admin key', run: () => round(on.role), values: [] as number[] },
    { label: 'auth on, tenant key', run: () => round(on.role, tenantAuthorization), values: [] as number[] },
    { label: 'auth off', run: () => round(off.role), values: [] as number[] },
  ];
  for (const side of sides) await side.run();
  for (let index = 0; index < rounds; index++) {
    // Rotate which goes first, so a drift within a round favours none.
    for (let offset = 0; offset < sides.length; offset++) {
      const side = sides[(index + offset) % sides.length]!;
      side.values.push(await side.run());
    }
  }
  const baseline = sides[2]!.values;
  let report = `GET /v2 via inject, ${rounds} rounds x ${requests} requests each\n`;
  for (const side of sides) {
    const differences = side.values.map((value, index) => value - baseline[index]!);
    report += `${side.label.padEnd(20)} median ${median(side.values).toFixed(2)} µs/request; paired difference to auth off: median ${median(differences).toFixed(2)} µs\n`;
  }
  process.stdout.write(report);
} finally {
  await on.close();
  await off.close();
}
