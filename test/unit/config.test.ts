import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../../src/config.js';

function assertConfigError(environment: Record<string, string>, variable: string): void {
  assert.throws(
    () => loadConfig(environment),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
      assert.match(error.message, new RegExp(`\\b${variable}\\b`));
      return true;
    },
  );
}

describe('loadConfig', () => {
  test('defaults', () => {
    const config = loadConfig({});
    assert.equal(config.PORT, 8080);
    assert.equal(config.HOST, '127.0.0.1');
    assert.equal(config.GANTRY_DATA_DIR, './data');
    assert.equal(config.GANTRY_MAX_UPLOAD_BYTES, 2 * 1024 ** 3);
    assert.equal(config.GANTRY_MAX_UPLOAD_BYTES, 2147483648);
    assert.equal(config.GANTRY_INFER_TIMEOUT_MS, 30000);
    assert.equal(config.LOG_LEVEL, 'info');
    assert.equal(config.REDIS_URL, undefined);
    assert.equal(config.GANTRY_QUEUE_PREFIX, 'gantry');
    assert.equal(config.GANTRY_DEVICE, 'cpu');
    assert.equal(config.GANTRY_PRETTY_LOGS, false);
    assert.equal(config.GANTRY_HEAP_GROWTH_PERCENT, 300);
  });

  test('GANTRY_HEAP_GROWTH_PERCENT: 0 keeps V8 default; negative, huge or non-numeric values are refused', () => {
    assert.equal(loadConfig({ GANTRY_HEAP_GROWTH_PERCENT: '0' }).GANTRY_HEAP_GROWTH_PERCENT, 0);
    assertConfigError({ GANTRY_HEAP_GROWTH_PERCENT: '-5' }, 'GANTRY_HEAP_GROWTH_PERCENT');
    assertConfigError({ GANTRY_HEAP_GROWTH_PERCENT: '5000' }, 'GANTRY_HEAP_GROWTH_PERCENT');
    assertConfigError({ GANTRY_HEAP_GROWTH_PERCENT: 'lots' }, 'GANTRY_HEAP_GROWTH_PERCENT');
  });

  test('request and response byte limits stay under what one Redis value can hold (512 MB)', () => {
    assertConfigError({ GANTRY_MAX_REQUEST_BYTES: String(600 * 1024 ** 2) }, 'GANTRY_MAX_REQUEST_BYTES');
    assertConfigError({ GANTRY_MAX_RESPONSE_BYTES: String(600 * 1024 ** 2) }, 'GANTRY_MAX_RESPONSE_BYTES');
    assert.equal(loadConfig({ GANTRY_MAX_RESPONSE_BYTES: String(480 * 1024 ** 2) }).GANTRY_MAX_RESPONSE_BYTES, 480 * 1024 ** 2);
  });

  test('does not read process.env when given a record', () => {
    const saved = process.env.PORT;
    process.env.PORT = '1234';
    try {
      assert.equal(loadConfig({}).PORT, 8080);
    } finally {
      if (saved === undefined) delete process.env.PORT;
      else process.env.PORT = saved;
    }
  });

  test('coerces strings', () => {
    const config = loadConfig({
      PORT: '9000',
      GANTRY_MAX_UPLOAD_BYTES: '1048576',
      GANTRY_INFER_TIMEOUT_MS: '250',
      GANTRY_WORKER_METRICS_PORT: '0',
      GANTRY_PRETTY_LOGS: 'true',
      LOG_LEVEL: 'debug',
      REDIS_URL: 'redis://localhost:6380/2',
    });
    assert.strictEqual(config.PORT, 9000);
    assert.strictEqual(config.GANTRY_MAX_UPLOAD_BYTES, 1048576);
    assert.strictEqual(config.GANTRY_INFER_TIMEOUT_MS, 250);
    assert.strictEqual(config.GANTRY_WORKER_METRICS_PORT, 0);
    assert.strictEqual(config.GANTRY_PRETTY_LOGS, true);
    assert.strictEqual(config.LOG_LEVEL, 'debug');
    assert.strictEqual(config.REDIS_URL, 'redis://localhost:6380/2');
  });

  test('boolean flags are parsed strictly ("false" stays false)', () => {
    assert.equal(loadConfig({ GANTRY_PRETTY_LOGS: 'false' }).GANTRY_PRETTY_LOGS, false);
    assert.equal(loadConfig({ GANTRY_PRETTY_LOGS: '0' }).GANTRY_PRETTY_LOGS, false);
    assert.equal(loadConfig({ GANTRY_PRETTY_LOGS: '1' }).GANTRY_PRETTY_LOGS, true);
    assertConfigError({ GANTRY_PRETTY_LOGS: 'yes' }, 'GANTRY_PRETTY_LOGS');
  });

  test('numbers given as numbers are accepted', () => {
    assert.equal(loadConfig({ PORT: 0 }).PORT, 0);
  });

  test('bad values throw ConfigError naming the variable', () => {
    assertConfigError({ PORT: 'abc' }, 'PORT');
    assertConfigError({ PORT: '70000' }, 'PORT');
    assertConfigError({ PORT: '80.5' }, 'PORT');
    assertConfigError({ LOG_LEVEL: 'loud' }, 'LOG_LEVEL');
    assertConfigError({ REDIS_URL: 'not a url' }, 'REDIS_URL');
    assertConfigError({ GANTRY_MAX_UPLOAD_BYTES: '-1' }, 'GANTRY_MAX_UPLOAD_BYTES');
    assertConfigError({ GANTRY_INFER_TIMEOUT_MS: '0' }, 'GANTRY_INFER_TIMEOUT_MS');
    assertConfigError({ GANTRY_QUEUE_PREFIX: 'has:colon' }, 'GANTRY_QUEUE_PREFIX');
    assertConfigError({ GANTRY_DEVICE: 'tpu' }, 'GANTRY_DEVICE');
  });

  test('every bad variable is named when several are wrong', () => {
    assert.throws(
      () => loadConfig({ PORT: 'abc', LOG_LEVEL: 'loud' }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, /PORT/);
        assert.match(error.message, /LOG_LEVEL/);
        return true;
      },
    );
  });

  test('empty string means unset', () => {
    const config = loadConfig({ PORT: '', REDIS_URL: '', LOG_LEVEL: '', GANTRY_DATA_DIR: '', HOST: '' });
    assert.equal(config.PORT, 8080);
    assert.equal(config.REDIS_URL, undefined);
    assert.equal(config.LOG_LEVEL, 'info');
    assert.equal(config.GANTRY_DATA_DIR, './data');
    assert.equal(config.HOST, '127.0.0.1');
  });

  test('unknown variables are ignored', () => {
    const config = loadConfig({ PATH: '/usr/bin', SOMETHING_ELSE: 'x' } as never);
    assert.equal(config.PORT, 8080);
    assert.equal((config as Record<string, unknown>).PATH, undefined);
  });
});
