/**
 * The console's routes on a real API role (real Redis): off with GANTRY_CONSOLE=off; with GANTRY_AUTH=off the
 * live-stats stream needs no key (the console asks for none then); an open stream is ended when the API closes.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ApiRole } from '../../../src/api/api-role.js';
import { loadConfig, type ConfigInput } from '../../../src/config.js';
import { createLogger } from '../../../src/logger.js';
import { deleteKeys, testAdminKey } from '../../helpers/gantry-process.js';

const redisUrl = 'redis://127.0.0.1:6379';

async function withApi(environment: ConfigInput, use: (role: ApiRole) => Promise<void>): Promise<void> {
  const prefix = `console-${randomBytes(4).toString('hex')}`;
  const dataDirectory = await mkdtemp(path.join(os.tmpdir(), 'gantry-console-test-'));
  const config = loadConfig({
    GANTRY_QUEUE_PREFIX: prefix,
    GANTRY_DATA_DIR: dataDirectory,
    LOG_LEVEL: 'silent',
    REDIS_URL: redisUrl,
    GANTRY_ADMIN_KEY: testAdminKey,
    GANTRY_GRPC_PORT: '0',
    ...environment,
  });
  const role = await ApiRole.create({ ...config, REDIS_URL: redisUrl }, createLogger(config, 'test'));
  try {
    await role.app.ready();
    await use(role);
  } finally {
    await role.close(1000);
    await deleteKeys(redisUrl, prefix);
    await rm(dataDirectory, { recursive: true, force: true });
  }
}

describe('console routes', { timeout: 60_000 }, () => {
  test('GANTRY_CONSOLE=off: no console files and no live-stats stream', async () => {
    await withApi({ GANTRY_CONSOLE: 'off' }, async (role) => {
      const headers = { authorization: `Bearer ${testAdminKey}` };
      for (const url of ['/console', '/console/', '/v1/console/live-stats']) {
        const reply = await role.app.inject({ method: 'GET', url, headers });
        assert.equal(reply.statusCode, 404, `${url}: ${reply.body}`);
      }
      assert.ok(!role.app.registeredRoutes.some((route) => route.url.includes('console')));
    });
  });

  test('GANTRY_AUTH=off: the stream needs no key; closing the API ends it', async () => {
    await withApi({ GANTRY_AUTH: 'off' }, async (role) => {
      const address = await role.listen('127.0.0.1', 0);
      const response = await fetch(`${address}/v1/console/live-stats`);
      assert.equal(response.status, 200);
      assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
      assert.equal(response.headers.get('cache-control'), 'no-store');
      const reader = response.body!.getReader();
      const decoder = new TextDecoder();
      let text = '';
      while (!/event: stats\ndata: .*\n\n/.test(text)) text += decoder.decode((await reader.read()).value, { stream: true });
      const event = JSON.parse(/event: stats\ndata: (.*)\n\n/.exec(text)![1]!);
      assert.deepEqual(Object.keys(event).sort(), ['at', 'intervalMs', 'models', 'modelsOmitted', 'windowSeconds']);
      assert.equal(event.intervalMs, 1000);
      const closing = role.close(5000);
      // The stream ends (done) instead of holding the close until its timeout.
      for (;;) {
        const { done } = await reader.read();
        if (done) break;
      }
      await closing;
    });
  });
});
