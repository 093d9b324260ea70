/**
 * GANTRY_CORS_ORIGINS (src/cors-origins.ts, through loadConfig): exact origins as a browser sends them, or `*`
 * alone; anything that could never match is refused at start-up, naming the variable and what to write.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../../src/config.js';
import { parseCorsOrigins } from '../../src/cors-origins.js';

test('unset or empty: CORS off', () => {
  assert.deepEqual(loadConfig({}).GANTRY_CORS_ORIGINS, []);
  assert.deepEqual(parseCorsOrigins(' , '), []);
});

test('a list of origins: trimmed, lower-cased (browsers send them so), duplicates dropped', () => {
  assert.deepEqual(loadConfig({ GANTRY_CORS_ORIGINS: 'https://App.Example.com, http://localhost:5173,https://app.example.com' }).GANTRY_CORS_ORIGINS, [
    'https://app.example.com',
    'http://localhost:5173',
  ]);
  assert.deepEqual(parseCorsOrigins('http://[::1]:8080,http://127.0.0.1:3000,chrome-extension://abcdefgh'), [
    'http://[::1]:8080',
    'http://127.0.0.1:3000',
    'chrome-extension://abcdefgh',
  ]);
});

test('* alone: any origin', () => {
  assert.deepEqual(loadConfig({ GANTRY_CORS_ORIGINS: '*' }).GANTRY_CORS_ORIGINS, ['*']);
});

test('entries that could never match are refused with what to write instead', () => {
  const cases: Array<[string, RegExp]> = [
    ['*, https://a.example', /'\*' allows every origin and must be the only entry/],
    ['https://*.example.com', /is a pattern: list exact origins/],
    ['https://app.example.com/', /has a path: an origin is scheme:\/\/host\[:port\] only \('https:\/\/app.example.com'\)/],
    ['https://app.example.com/console', /has a path/],
    ['app.example.com', /is not an origin: write scheme:\/\/host\[:port\]/],
    ['https://app.example.com:443', /names the default port: browsers send https:\/\/app.example.com without it/],
    ['http://localhost:80', /names the default port/],
    ['http://localhost:70000', /outside 1-65535/],
    ['https://exa mple.com', /is not an origin/],
  ];
  for (const [value, message] of cases) {
    assert.throws(
      () => loadConfig({ GANTRY_CORS_ORIGINS: value }),
      (error: unknown) => error instanceof ConfigError && /GANTRY_CORS_ORIGINS/.test(error.message) && message.test(error.message),
      value,
    );
  }
});

test('a long bad entry is quoted cut, not whole', () => {
  const problem = parseCorsOrigins(`https://${'a'.repeat(5000)}.example.com/path`);
  assert.equal(typeof problem, 'string');
  assert.ok((problem as string).length < 400, `message of ${(problem as string).length} characters`);
});
