/**
 * Rate limits, quotas and usage metering (issue 12) over HTTP against real processes: two `gantry api` on one
 * Redis (a private redis-server with AOF) and one `gantry worker`. Limits hold across the two API processes with
 * the right headers; metered usage equals exactly what the test sent per tenant, key and model, survives a restart
 * of every process (Redis included), and the CSV report says what the JSON one says.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fixturePath, startGantry, type GantryProcess } from '../helpers/gantry-process.js';
import { call as sharedCall, type HttpReply } from './support.js';
import { Cleanup, mlpRequest, sleep, startPrivateRedis, type PrivateRedis } from '../helpers/reliability-harness.js';

const adminKey = 'gantry-limits-test-admin-key-0123456789abcdef';
// Flushes five times a second, so the cross-process staleness bound (flush + 1 s cache) stays short.
const flushIntervalMs = 200;
/** How long another API process may take to see usage flushed elsewhere: a flush interval plus 1 s of cache, with room. */
const crossProcessLagMs = flushIntervalMs + 1000 + 500;

type Reply = HttpReply;

/** A row of GET /v1/usage's JSON answer: the fields these tests read (src/api/routes/usage.ts answers them). */
interface UsageRow {
  tenant: string;
  /** groupBy=key only. */
  key?: string;
  /** groupBy=model only. */
  model?: string;
  requests: number;
  rows: number;
  computeSeconds: number;
  bytesIn: number;
  bytesOut: number;
  outcomes: { success: number; client_error: number };
}

describe('rate limits, quotas and usage metering (two gantry api, one worker, one Redis)', () => {
  const cleanup = new Cleanup();
  let redis: PrivateRedis;
  let dataDirectory: string;
  const prefix = `test-limits-${randomBytes(4).toString('hex')}`;
  let apis: GantryProcess[] = [];
  let worker: GantryProcess;

  const startAll = async () => {
    const common = { prefix, dataDirectory, redisUrl: redis.url, env: { GANTRY_ADMIN_KEY: adminKey, GANTRY_USAGE_FLUSH_INTERVAL_MS: String(flushIntervalMs) } };
    worker = await startGantry({ ...common, command: 'worker' });
    apis = [await startGantry({ ...common, command: 'api' }), await startGantry({ ...common, command: 'api' })];
  };
  const stopAll = async () => {
    for (const api of apis) assert.equal(await api.stop(), 0, `an API stops cleanly:\n${api.output()}`);
    await worker.stop();
  };

  const call = (api: number, key: string, method: string, urlPath: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> =>
    sharedCall(apis[api]!.baseUrl, method, urlPath, body, { authorization: `Bearer ${key}`, ...headers });
  const admin = (method: string, urlPath: string, body?: unknown) => call(0, adminKey, method, urlPath, body);

  async function newTenant(id: string): Promise<void> {
    const created = await admin('POST', '/v1/tenants', { id });
    assert.equal(created.status, 201, created.text);
  }
  async function newKey(tenant: string, scopes = ['infer', 'models:write', 'models:read', 'usage:read']): Promise<{ key: string; id: string }> {
    const created = await admin('POST', '/v1/keys', { tenant, name: `${tenant} test key`, scopes });
    assert.equal(created.status, 201, created.text);
    return { key: created.body.key, id: created.body.id };
  }
  async function upload(key: string, name: string): Promise<void> {
    const response = await fetch(`${apis[0]!.baseUrl}/v1/models/${name}/versions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/octet-stream' },
      body: await readFile(fixturePath('tiny-mlp.onnx')),
    });
    assert.equal(response.status, 201, await response.text());
  }
  const infer = (api: number, key: string, model: string, body: unknown = mlpRequest()) => call(api, key, 'POST', `/v2/models/${model}/infer`, body);

  /** Fixed one-minute windows: start a per-minute test early enough in a minute that the window cannot end during it. */
  async function awayFromMinuteEdge(): Promise<void> {
    const intoMinuteMs = Date.now() % 60_000;
    if (intoMinuteMs > 40_000) await sleep(60_000 - intoMinuteMs + 100);
  }

  /** A counter's value for one label value, summed over both API processes. */
  async function metricSum(name: string, labelValue: string): Promise<number> {
    let total = 0;
    for (const api of apis) {
      const text = await (await fetch(`${api.baseUrl}/metrics`, { headers: { authorization: `Bearer ${adminKey}` } })).text();
      const match = new RegExp(`^${name}\\{[a-z]+="${labelValue}"\\} ([0-9.e+-]+)`, 'm').exec(text);
      total += match === null ? 0 : Number(match[1]);
    }
    return total;
  }
  const rejections = (limit: string) => metricSum('gantry_limit_rejections_total', limit);

  before(async () => {
    redis = await startPrivateRedis();
    cleanup.add(() => redis.cleanup());
    dataDirectory = await mkdtemp(path.join(os.tmpdir(), 'gantry-limits-'));
    cleanup.add(() => rm(dataDirectory, { recursive: true, force: true }));
    cleanup.add(async () => {
      for (const api of apis) await api.stop('SIGKILL');
      await worker?.stop('SIGKILL');
    });
    await startAll();
  });
  after(() => cleanup.run());

  test("a key's per-minute rate holds across both API processes, with RateLimit-* and Retry-After", async () => {
    await newTenant('rate-key');
    const { key, id } = await newKey('rate-key');
    await upload(key, 'mlp');
    const set = await admin('PUT', `/v1/keys/${id}/limits`, { requestsPerMinute: 6 });
    assert.equal(set.status, 200, set.text);
    assert.deepEqual(set.body, { requestsPerMinute: 6 });
    // The upload counted against nothing: the limit came after it. Both processes read the new limit fresh
    // (neither cached this key's limits past the cache period by now).
    await sleep(1100);
    await awayFromMinuteEdge();
    const before = await rejections('rate_key');
    const replies: Reply[] = [];
    for (let index = 0; index < 9; index++) replies.push(await infer(index % 2, key, 'mlp'));
    assert.deepEqual(
      replies.map((reply) => reply.status),
      [200, 200, 200, 200, 200, 200, 429, 429, 429],
      replies.map((reply) => reply.text.slice(0, 200)).join('\n'),
    );
    assert.deepEqual(
      replies.slice(0, 6).map((reply) => reply.headers.get('ratelimit-remaining')),
      ['5', '4', '3', '2', '1', '0'],
    );
    for (const reply of replies) {
      assert.equal(reply.headers.get('ratelimit-limit'), '6');
      const reset = Number(reply.headers.get('ratelimit-reset'));
      assert.ok(reset >= 1 && reset <= 60, `RateLimit-Reset ${reset}`);
    }
    for (const refused of replies.slice(6)) {
      assert.equal(refused.body.code, 'RESOURCE_EXHAUSTED');
      assert.match(refused.body.error, new RegExp(`key '${id}' may send 6 requests per minute`));
      assert.equal(refused.headers.get('ratelimit-remaining'), '0');
      const retryAfter = Number(refused.headers.get('retry-after'));
      assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
      assert.equal(retryAfter, Number(refused.headers.get('ratelimit-reset')));
    }
    assert.equal((await rejections('rate_key')) - before, 3);
    // The admin is never limited (it can always fix a limit set too low), and a key without limits gets no headers.
    const adminCall = await admin('GET', `/v1/keys/${id}/limits`);
    assert.equal(adminCall.status, 200);
    assert.equal(adminCall.headers.get('ratelimit-limit'), null);
  });

  test("a tenant's per-minute rate holds over all its keys across both API processes", async () => {
    await newTenant('rate-tenant');
    const one = await newKey('rate-tenant');
    const two = await newKey('rate-tenant');
    await upload(one.key, 'mlp');
    assert.equal((await admin('PUT', '/v1/tenants/rate-tenant/limits', { requestsPerMinute: 5 })).status, 200);
    assert.deepEqual((await admin('GET', '/v1/tenants/rate-tenant/limits')).body, { requestsPerMinute: 5 });
    await sleep(1100);
    await awayFromMinuteEdge();
    const statuses: number[] = [];
    let refusal: Reply | undefined;
    for (let index = 0; index < 8; index++) {
      const reply = await infer(index % 2, index % 3 === 0 ? one.key : two.key, 'mlp');
      statuses.push(reply.status);
      if (reply.status === 429) refusal ??= reply;
    }
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
    assert.match(refusal!.body.error, /tenant 'rate-tenant' may send 5 requests per minute/);
    // Every route counts, not only inference.
    assert.equal((await call(1, two.key, 'GET', '/v1/models')).status, 429);
  });

  test("limits are validated, and only the admin sets a tenant's", async () => {
    await newTenant('limits-check');
    const { key, id } = await newKey('limits-check', ['keys:write', 'infer']);
    const bad = await admin('PUT', '/v1/tenants/limits-check/limits', { requestsPerSecond: -2, burst: 3 });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error, /requestsPerSecond/);
    assert.match(bad.body.error, /unknown limit 'burst'/);
    assert.equal((await admin('PUT', '/v1/tenants/nobody/limits', {})).status, 404);
    assert.equal((await call(0, key, 'PUT', '/v1/tenants/limits-check/limits', { requestsPerSecond: 100 })).status, 403);
    // A keys:write key sets its own tenant's keys' limits, and another tenant's key is not found.
    assert.equal((await call(1, key, 'PUT', `/v1/keys/${id}/limits`, { requestsPerSecond: 50 })).status, 200);
    assert.deepEqual((await call(0, key, 'GET', `/v1/keys/${id}/limits`)).body, { requestsPerSecond: 50 });
    await newTenant('limits-other');
    const other = await newKey('limits-other', ['keys:write']);
    assert.equal((await call(0, other.key, 'GET', `/v1/keys/${id}/limits`)).status, 404);
  });

  test('a day quota on requests holds across both API processes: 429 naming the quota and when it resets', async () => {
    await newTenant('quota');
    const { key } = await newKey('quota');
    await upload(key, 'mlp');
    assert.equal((await admin('PUT', '/v1/tenants/quota/limits', { requestsPerDay: 5 })).status, 200);
    await sleep(1100);
    const first = [];
    for (let index = 0; index < 3; index++) first.push((await infer(0, key, 'mlp')).status);
    assert.deepEqual(first, [200, 200, 200]);
    // The other process sees them once API 0 flushed and its own cache period passed (the documented bound).
    await sleep(crossProcessLagMs);
    const second: Reply[] = [];
    for (let index = 0; index < 3; index++) second.push(await infer(1, key, 'mlp'));
    assert.deepEqual(
      second.map((reply) => reply.status),
      [200, 200, 429],
    );
    const refused = second[2]!;
    assert.equal(refused.body.code, 'RESOURCE_EXHAUSTED');
    const midnight = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate() + 1));
    assert.match(
      refused.body.error,
      new RegExp(
        `Quota requestsPerDay of tenant 'quota' is used up \\(5 requests of 5 requests\\); it resets at ${midnight.toISOString().replace(/\./g, '\\.')}`,
      ),
    );
    const retryAfter = Number(refused.headers.get('retry-after'));
    assert.ok(Math.abs(retryAfter - (midnight.getTime() - Date.now()) / 1000) < 5, `Retry-After ${retryAfter}`);
    await sleep(crossProcessLagMs);
    assert.equal((await infer(0, key, 'mlp')).status, 429, "API 0 refuses too once it saw API 1's usage");
    // Other routes are not under the quota.
    assert.equal((await call(0, key, 'GET', '/v1/models')).status, 200);
    assert.ok((await rejections('quota_requests_day')) >= 2);
  });

  test('metered usage equals what was sent per tenant, key and model, survives a restart of every process, and the CSV matches', async () => {
    await newTenant('meter-a');
    await newTenant('meter-b');
    const a1 = await newKey('meter-a');
    const a2 = await newKey('meter-a');
    const b1 = await newKey('meter-b');
    await upload(a1.key, 'mlp');
    await upload(a1.key, 'mlp2');
    await upload(b1.key, 'mlp');

    interface Expected {
      requests: number;
      success: number;
      clientError: number;
      rows: number;
      bytesIn: number;
      bytesOut: number;
    }
    const expected = new Map<string, Expected>();
    const count = (group: string, reply: Reply, bytesIn: number) => {
      const entry = expected.get(group) ?? { requests: 0, success: 0, clientError: 0, rows: 0, bytesIn: 0, bytesOut: 0 };
      entry.requests += 1;
      if (reply.status === 200) {
        entry.success += 1;
        entry.rows += 1;
      } else entry.clientError += 1;
      entry.bytesIn += bytesIn;
      entry.bytesOut += Number(reply.headers.get('content-length'));
      expected.set(group, entry);
    };
    const send = async (api: number, caller: { key: string; id: string }, tenant: string, model: string, body: unknown, modelAsMetered = model) => {
      const text = JSON.stringify(body);
      const reply = await infer(api, caller.key, model, text);
      for (const group of [`tenant:${tenant}`, `key:${tenant}:${caller.id}`, `model:${tenant}:${modelAsMetered}`]) count(group, reply, Buffer.byteLength(text));
      return reply;
    };
    for (let index = 0; index < 5; index++) assert.equal((await send(index % 2, a1, 'meter-a', 'mlp', mlpRequest(index))).status, 200);
    for (let index = 0; index < 4; index++) assert.equal((await send(1, a2, 'meter-a', 'mlp2', mlpRequest(10 + index))).status, 200);
    // A model that does not exist is metered without a model; a bad input with the model it was for.
    assert.equal((await send(0, a2, 'meter-a', 'missing', mlpRequest(), '')).status, 404);
    assert.equal((await send(1, a1, 'meter-a', 'mlp', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] })).status, 400);
    for (let index = 0; index < 6; index++) assert.equal((await send(index % 2, b1, 'meter-b', 'mlp', mlpRequest(20 + index))).status, 200);

    const check = async (when: string) => {
      for (const groupBy of ['tenant', 'key', 'model'] as const) {
        const report = await admin('GET', `/v1/usage?groupBy=${groupBy}`);
        assert.equal(report.status, 200, report.text);
        const rows = (report.body.usage as UsageRow[]).filter((row) => row.tenant === 'meter-a' || row.tenant === 'meter-b');
        const wanted = [...expected].filter(([group]) => group.startsWith(`${groupBy}:`));
        assert.equal(rows.length, wanted.length, `${when}: groupBy=${groupBy}: ${JSON.stringify(rows)}`);
        for (const [group, numbers] of wanted) {
          const [, tenant, which] = group.split(':');
          // The admin sees other tenants' models by their qualified names.
          const row = rows.find(
            (candidate) =>
              candidate.tenant === tenant &&
              (groupBy === 'tenant' || (groupBy === 'key' ? candidate.key === which : candidate.model === (which === '' ? '' : `${tenant}~${which}`))),
          );
          assert.ok(row !== undefined, `${when}: no row for ${group} in ${JSON.stringify(rows)}`);
          assert.deepEqual(
            {
              requests: row.requests,
              success: row.outcomes.success,
              clientError: row.outcomes.client_error,
              rows: row.rows,
              bytesIn: row.bytesIn,
              bytesOut: row.bytesOut,
            },
            numbers,
            `${when}: ${group}`,
          );
          if (numbers.success > 0) assert.ok(row.computeSeconds > 0, `${when}: ${group} has compute seconds`);
          else assert.equal(row.computeSeconds, 0);
        }
      }
      // A tenant's key sees its own tenant only, models by their bare names; another tenant is not found.
      const own = await call(1, a1.key, 'GET', '/v1/usage?groupBy=model');
      assert.equal(own.status, 200, own.text);
      assert.deepEqual((own.body.usage as UsageRow[]).map((row) => [row.tenant, row.model, row.requests]).sort(), [
        ['meter-a', '', 1],
        ['meter-a', 'mlp', 6],
        ['meter-a', 'mlp2', 4],
      ]);
      assert.equal((await call(0, a1.key, 'GET', '/v1/usage?tenant=meter-b')).status, 404);
      // CSV says what JSON says.
      const json = await call(0, a1.key, 'GET', '/v1/usage?groupBy=key');
      const csv = await call(1, a1.key, 'GET', '/v1/usage?groupBy=key&format=csv');
      assert.equal(csv.status, 200);
      assert.match(csv.headers.get('content-type') ?? '', /^text\/csv/);
      const [header, ...lines] = csv.text.trimEnd().split('\r\n');
      const columns = header!.split(',');
      assert.deepEqual(columns.slice(0, 3), ['tenant', 'key', 'requests']);
      const fromCsv = lines.map((line) => Object.fromEntries(line.split(',').map((value, index) => [columns[index], value])));
      assert.equal(fromCsv.length, json.body.usage.length);
      for (const row of json.body.usage as UsageRow[]) {
        const line = fromCsv.find((candidate) => candidate.key === row.key)!;
        assert.ok(line !== undefined, `CSV has key ${row.key}`);
        assert.deepEqual(
          [
            line.tenant,
            Number(line.requests),
            Number(line.success),
            Number(line.client_error),
            Number(line.rows),
            Number(line.compute_seconds),
            Number(line.bytes_in),
            Number(line.bytes_out),
          ],
          [row.tenant, row.requests, row.outcomes.success, row.outcomes.client_error, row.rows, row.computeSeconds, row.bytesIn, row.bytesOut],
        );
      }
      const viaAccept = await call(0, a1.key, 'GET', '/v1/usage?groupBy=key', undefined, { accept: 'text/csv' });
      assert.equal(viaAccept.text, csv.text);
    };

    // Within a flush interval every process has written what it metered.
    await sleep(flushIntervalMs * 3);
    await check('before the restart');
    // Prometheus has the per-tenant totals too (tenant label only), summed over both API processes.
    assert.equal(await metricSum('gantry_tenant_requests_total', 'meter-b'), 6);
    assert.equal(await metricSum('gantry_tenant_requests_total', 'meter-a'), 11);
    assert.ok((await metricSum('gantry_tenant_compute_seconds_total', 'meter-a')) > 0);
    const totalsBefore = (await admin('GET', '/v1/usage?groupBy=tenant&tenant=meter-a')).body.totals;

    // Every process stops (the APIs flush on SIGTERM), Redis too (its AOF holds the counters), and all start again.
    await stopAll();
    await redis.shutdown();
    await redis.restart();
    await startAll();
    await check('after the restart');
    assert.deepEqual((await admin('GET', '/v1/usage?groupBy=tenant&tenant=meter-a')).body.totals, totalsBefore);
  });

  test('usage is reported by hour and only for whole hours asked for; bad spans are refused', async () => {
    const hourly = await admin('GET', '/v1/usage?groupBy=tenant&granularity=hour&tenant=meter-b');
    assert.equal(hourly.status, 200);
    for (const row of hourly.body.usage) assert.match(row.hour, /^\d{4}-\d{2}-\d{2}T\d{2}:00:00\.000Z$/);
    assert.equal(hourly.body.totals.requests, 6);
    const past = await admin('GET', '/v1/usage?from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z');
    assert.equal(past.status, 200);
    assert.deepEqual(past.body.usage, []);
    assert.equal((await admin('GET', '/v1/usage?from=2020-01-01T00:00:00Z&to=2021-01-01T00:00:00Z')).status, 400);
    assert.equal((await admin('GET', '/v1/usage?from=yesterday')).status, 400);
    assert.equal((await admin('GET', '/v1/usage?from=2020-01-02T00:00:00Z&to=2020-01-01T00:00:00Z')).status, 400);
  });
});
