/**
 * REDIS_URL forms (redis://, rediss://, redis+sentinel://, rediss+sentinel://), REDIS_SENTINELS/REDIS_SENTINEL_NAME,
 * and the ioredis options they become. A malformed URL is refused with what is wrong, never with its password.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig } from '../../src/config.js';
import { isRedisUnavailableError } from '../../src/errors.js';
import { createRedis } from '../../src/queue/redis-connection.js';
import { RedisEndpointError, describeRedisEndpoint, parseRedisUrl, redisEndpointOptions, sentinelUrlOf } from '../../src/queue/redis-endpoint.js';

const password = 'pw-s3cret-value';
const scratch = mkdtempSync(path.join(os.tmpdir(), 'gantry-redis-endpoint-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

function refusal(url: string): string {
  try {
    parseRedisUrl(url);
  } catch (error) {
    assert.ok(error instanceof RedisEndpointError, String(error));
    assert.ok(!error.message.includes(password), `the message echoes the password: ${error.message}`);
    return error.message;
  }
  assert.fail(`${url} was accepted`);
}

describe('one server', () => {
  test('redis:// with host, port, database and credentials', () => {
    assert.deepEqual(parseRedisUrl('redis://localhost:6380/2'), { kind: 'direct', tls: false, db: 2, host: 'localhost', port: 6380 });
    assert.deepEqual(parseRedisUrl('redis://10.0.0.5'), { kind: 'direct', tls: false, db: 0, host: '10.0.0.5', port: 6379 });
    assert.deepEqual(parseRedisUrl(`redis://gantry:${password}@redis.internal:7000?db=4`), {
      kind: 'direct',
      tls: false,
      username: 'gantry',
      password,
      db: 4,
      host: 'redis.internal',
      port: 7000,
    });
  });

  test('the classic :password@ form has no user, and %-escapes are decoded (an @ or / in a password must be escaped)', () => {
    assert.deepEqual(parseRedisUrl('redis://:p%40ss%2Fword@h'), { kind: 'direct', tls: false, password: 'p@ss/word', db: 0, host: 'h', port: 6379 });
    assert.equal(parseRedisUrl('redis://:a@b@h').password, 'a@b', 'an unescaped @ in the password: the host is after the last one');
  });

  test('IPv6 addresses in brackets', () => {
    const endpoint = parseRedisUrl('redis://[::1]:6390');
    assert.equal(endpoint.kind === 'direct' && `${endpoint.host} ${endpoint.port}`, '::1 6390');
    assert.equal(describeRedisEndpoint('redis://[::1]:6390'), '[::1]:6390');
  });

  test('rediss:// is TLS: the system CAs, or REDIS_TLS_CA_FILE read once', () => {
    assert.deepEqual(redisEndpointOptions(parseRedisUrl('rediss://cache.example.com:6380')), { host: 'cache.example.com', port: 6380, db: 0, tls: {} });
    const caFile = path.join(scratch, 'ca.pem');
    writeFileSync(caFile, '-----BEGIN CERTIFICATE-----\nnot really one\n-----END CERTIFICATE-----\n');
    const options = redisEndpointOptions(parseRedisUrl('rediss://h'), { tlsCaFile: caFile });
    assert.equal(String((options.tls as { ca: Buffer }).ca), '-----BEGIN CERTIFICATE-----\nnot really one\n-----END CERTIFICATE-----\n');
    assert.equal(redisEndpointOptions(parseRedisUrl('redis://h'), { tlsCaFile: caFile }).tls, undefined, 'no TLS for redis://, whatever the CA file');
    assert.throws(
      () => redisEndpointOptions(parseRedisUrl('rediss://h'), { tlsCaFile: path.join(scratch, 'missing.pem') }),
      /REDIS_TLS_CA_FILE=.*missing\.pem cannot be read \(ENOENT\)/,
    );
  });
});

describe('Sentinel', () => {
  test('redis+sentinel:// lists the sentinels (26379 by default) and names the master; ?db= picks the database', () => {
    assert.deepEqual(parseRedisUrl('redis+sentinel://10.0.0.1:26380,10.0.0.2,[fd00::3]:5000/mymaster?db=3'), {
      kind: 'sentinel',
      tls: false,
      db: 3,
      sentinels: [
        { host: '10.0.0.1', port: 26380 },
        { host: '10.0.0.2', port: 26379 },
        { host: 'fd00::3', port: 5000 },
      ],
      masterName: 'mymaster',
    });
  });

  test('the ioredis options: sentinels, name, the servers credentials in the URL, the sentinels password apart', () => {
    const options = redisEndpointOptions(parseRedisUrl(`redis+sentinel://:${password}@s1:1,s2:2/cache`), { sentinelPassword: 'sentinel-pw' });
    assert.deepEqual(options, {
      sentinels: [
        { host: 's1', port: 1 },
        { host: 's2', port: 2 },
      ],
      name: 'cache',
      db: 0,
      password,
      sentinelPassword: 'sentinel-pw',
      failoverDetector: true,
    });
  });

  test('rediss+sentinel:// is TLS to the sentinels and to the master they name', () => {
    const options = redisEndpointOptions(parseRedisUrl('rediss+sentinel://s1:1/cache'));
    assert.deepEqual([options.tls, options.sentinelTLS, options.enableTLSForSentinelMode], [{}, {}, true]);
  });

  test('descriptions name hosts and the master, never a password', () => {
    assert.equal(describeRedisEndpoint(`redis+sentinel://u:${password}@s1:1,s2:2/cache`), "master 'cache' of the sentinels s1:1,s2:2");
    assert.equal(describeRedisEndpoint(`rediss://:${password}@h:7`), 'h:7 (TLS)');
    assert.equal(describeRedisEndpoint(`nonsense ${password}`), 'the configured Redis');
  });

  test('REDIS_SENTINELS and REDIS_SENTINEL_NAME make the same URL', () => {
    assert.equal(sentinelUrlOf('s1:1, s2:2', 'my master', false), 'redis+sentinel://s1:1,s2:2/my%20master');
    assert.equal(parseRedisUrl(sentinelUrlOf('s1:1', 'my master', true)).kind, 'sentinel');
    assert.throws(() => sentinelUrlOf('s1:1,,s2:2', 'm', false), /sentinel 2 is missing/);
  });
});

describe('malformed URLs name what is wrong, never the password', () => {
  const cases: Array<[string, RegExp]> = [
    [`localhost:6379`, /no scheme/],
    [`http://u:${password}@h:1`, /unknown scheme 'http:\/\/'/],
    [`redis://u:${password}@`, /the host is missing/],
    [`redis://u:${password}@h:70000`, /port 70000, outside 1-65535/],
    [`redis://u:${password}@h:1/zero`, /database 'zero' is not a number/],
    [`redis://u:${password}@h:1/1?db=2`, /database twice/],
    [`redis://u:${password}@h:1?family=6`, /unknown parameter 'family'/],
    [`redis://u:${password}@h:1#x`, /fragment/],
    [`redis://u:${password}%zz@h`, /password has a malformed %-escape/],
    [`redis+sentinel://u:${password}@s1:1,s2:2`, /master's name as the path/],
    [`redis+sentinel://u:${password}@s1:1,s2:2/`, /master's name as the path/],
    [`redis+sentinel://u:${password}@/m`, /names no sentinel/],
    [`redis+sentinel://u:${password}@s1:1,s 2:2/m`, /sentinel 2 is not host\[:port\]/],
  ];
  for (const [url, expected] of cases) test(url.replace(password, '…'), () => assert.match(refusal(url), expected));
});

describe('configuration', () => {
  test('REDIS_URL accepts every form (z.string().url() refused a Sentinel list), refuses bad ones without echoing the password', () => {
    for (const url of ['redis://h:1', 'rediss://h:1', 'redis+sentinel://s1:1,s2:2/m', 'rediss+sentinel://s1:1/m?db=1'])
      assert.equal(loadConfig({ REDIS_URL: url }).REDIS_URL, url);
    assert.throws(
      () => loadConfig({ REDIS_URL: `redis+sentinel://u:${password}@s1:1,s2:2` }),
      (error: Error) =>
        error instanceof ConfigError && /^Invalid configuration: REDIS_URL: .*master's name/.test(error.message) && !error.message.includes(password),
    );
  });

  test('REDIS_SENTINELS with REDIS_SENTINEL_NAME become REDIS_URL (what forked workers inherit); one without the other is refused', () => {
    assert.equal(loadConfig({ REDIS_SENTINELS: 's1:1,s2:2', REDIS_SENTINEL_NAME: 'm' }).REDIS_URL, 'redis+sentinel://s1:1,s2:2/m');
    assert.equal(loadConfig({ REDIS_SENTINELS: 's1:1', REDIS_SENTINEL_NAME: 'm', REDIS_SENTINEL_TLS: 'true' }).REDIS_URL, 'rediss+sentinel://s1:1/m');
    assert.throws(() => loadConfig({ REDIS_SENTINELS: 's1:1' }), /REDIS_SENTINELS is set without REDIS_SENTINEL_NAME/);
    assert.throws(() => loadConfig({ REDIS_SENTINEL_NAME: 'm' }), /REDIS_SENTINEL_NAME is set without REDIS_SENTINELS/);
    assert.throws(
      () => loadConfig({ REDIS_SENTINELS: 's1:99999', REDIS_SENTINEL_NAME: 'm' }),
      /REDIS_SENTINELS \/ REDIS_SENTINEL_NAME: sentinel 1 has port 99999/,
    );
  });

  test('REDIS_URL and REDIS_SENTINELS together must name the same deployment (the URL, with its password, is kept)', () => {
    const url = `redis+sentinel://:${password}@s1:1,s2:2/m`;
    assert.equal(loadConfig({ REDIS_URL: url, REDIS_SENTINELS: 's1:1,s2:2', REDIS_SENTINEL_NAME: 'm' }).REDIS_URL, url);
    assert.throws(() => loadConfig({ REDIS_URL: 'redis://h:1', REDIS_SENTINELS: 's1:1', REDIS_SENTINEL_NAME: 'm' }), /name different Redis deployments/);
    assert.throws(() => loadConfig({ REDIS_URL: url, REDIS_SENTINELS: 's1:1,s2:2', REDIS_SENTINEL_NAME: 'other' }), /name different Redis deployments/);
  });

  test('REDIS_TLS_CA_FILE must be a readable file', () => {
    const caFile = path.join(scratch, 'config-ca.pem');
    writeFileSync(caFile, 'pem');
    assert.equal(loadConfig({ REDIS_TLS_CA_FILE: caFile }).REDIS_TLS_CA_FILE, caFile);
    assert.throws(() => loadConfig({ REDIS_TLS_CA_FILE: path.join(scratch, 'nope.pem') }), /REDIS_TLS_CA_FILE: cannot be read/);
    assert.throws(() => loadConfig({ REDIS_TLS_CA_FILE: scratch }), /REDIS_TLS_CA_FILE: cannot be read/, 'a directory is not a CA file');
  });
});

describe('failover behaviour of every connection', () => {
  test('createRedis builds Sentinel connections, and a READONLY reply (a demoted master) reconnects and resends', () => {
    const redis = createRedis('redis+sentinel://127.0.0.1:1/m', 'producer', 'unit', { sentinelPassword: 'x' });
    redis.on('error', () => undefined);
    try {
      assert.deepEqual(redis.options.sentinels, [{ host: '127.0.0.1', port: 1 }]);
      assert.equal(redis.options.name, 'm');
      assert.equal(redis.options.sentinelPassword, 'x');
      assert.equal(redis.options.connectionName, 'gantry-unit');
      const reconnect = redis.options.reconnectOnError!;
      assert.equal(reconnect(new Error("READONLY You can't write against a read only replica.")), 2);
      assert.equal(reconnect(new Error('ERR Error running script: @user_script:1: READONLY You can not write')), 2);
      assert.equal(reconnect(new Error('WRONGTYPE Operation against a key holding the wrong kind of value')), false);
    } finally {
      redis.disconnect();
    }
  });

  test('the replies of a Redis in the middle of a failover mean "retry" (503), not a bug (500)', () => {
    for (const message of [
      "READONLY You can't write against a read only replica.",
      'MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to no.',
      'LOADING Redis is loading the dataset in memory',
      'UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)',
      'All sentinels are unreachable. Retrying from scratch after 10ms.',
      'NOREPLICAS Not enough good replicas to write.',
    ])
      assert.equal(isRedisUnavailableError(new Error(message)), true, message);
    assert.equal(isRedisUnavailableError(new Error('ERR syntax error')), false);
    assert.equal(isRedisUnavailableError(new Error('the model READONLY-ish')), false);
  });
});
