/** API keys never reach a log line: the pino redaction covers both headers that carry them, wherever headers are logged. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { loggerOptions } from '../../src/logger.js';

test('authorization and x-api-key headers are redacted in request, nested and bare header objects', () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  const logger = pino(loggerOptions({ LOG_LEVEL: 'info' }, 'test'), sink);
  const key = 'gk_abcdefghijkl_secretsecretsecretsecretsecretsecretsecret1';
  logger.info({ req: { headers: { authorization: `Bearer ${key}`, 'x-api-key': key } } }, 'request');
  logger.info({ headers: { authorization: `Bearer ${key}`, 'x-api-key': key } }, 'bare headers');
  logger.info({ upstream: { headers: { authorization: `Bearer ${key}`, 'x-api-key': key } } }, 'nested headers');
  assert.equal(lines.length, 3);
  for (const line of lines) {
    assert.ok(!line.includes('secretsecret'), `a key reached the log: ${line}`);
    assert.match(line, /\[redacted\]/);
  }
});
