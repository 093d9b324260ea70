/**
 * GANTRY_PRETTY_LOGS (src/pretty-log-line.ts through src/logger.ts): a real pino logger with the shared options
 * writes readable lines when asked, JSON otherwise, and redaction holds either way.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { loadConfig } from '../../src/config.js';
import { loggerOptions } from '../../src/logger.js';
import { prettyLogLine } from '../../src/pretty-log-line.js';

function capture(pretty: string | undefined): { logger: pino.Logger; written: () => string } {
  let text = '';
  const sink = new Writable({
    write(chunk, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  const config = loadConfig(pretty === undefined ? {} : { GANTRY_PRETTY_LOGS: pretty });
  return { logger: pino(loggerOptions(config, 'api'), sink), written: () => text };
}

test('GANTRY_PRETTY_LOGS=true: time, level, role, message, then the fields; the key stays redacted', () => {
  const { logger, written } = capture('true');
  logger.info({ requestId: 'r-1', status: 200, reason: 'two words', headers: { authorization: 'Bearer secret-key' } }, 'request answered');
  const line = written();
  assert.match(line, /^\d{2}:\d{2}:\d{2}\.\d{3} INFO {2}api: request answered requestId=r-1 status=200 reason="two words" headers=/);
  assert.ok(!line.includes('secret-key'), line);
  assert.ok(line.includes('[redacted]'), line);
  assert.ok(!line.trimStart().startsWith('{'), 'not JSON');
});

test('a stack is printed on lines of its own, indented', () => {
  const line = prettyLogLine(
    `${JSON.stringify({ level: 50, time: 0, role: 'api', msg: 'request answered', fault: { type: 'SyntaxError', message: 'bad', stack: 'SyntaxError: bad\n    at parse' } })}\n`,
  );
  assert.equal(line, '00:00:00.000 ERROR api: request answered fault={"type":"SyntaxError","message":"bad"}\n    SyntaxError: bad\n        at parse\n');
});

test('unset or false: JSON lines, as log collectors want them', () => {
  for (const value of [undefined, 'false']) {
    const { logger, written } = capture(value);
    logger.warn({ model: 'm' }, 'hello');
    const entry = JSON.parse(written()) as Record<string, unknown>;
    assert.equal(entry.msg, 'hello');
    assert.equal(entry.level, 40);
    assert.equal(entry.model, 'm');
  }
});

test('a line that is not JSON is left as it is', () => {
  assert.equal(prettyLogLine('not json\n'), 'not json\n');
});
