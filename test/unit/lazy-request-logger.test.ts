/**
 * The request logger Fastify gets from src/api/lazy-request-logger.ts: pino's child is made only when a line is
 * written at an enabled level, once, with the request's bindings and Gantry's redaction; a route with a level of
 * its own gets its child at once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { IncomingMessage } from 'node:http';
import { lazyRequestLogger } from '../../src/api/lazy-request-logger.js';
import { loggerOptions } from '../../src/logger.js';

/** A pino logger with Gantry's options writing into `lines`, whose child() calls are counted. */
function countingLogger(level: string) {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const logger = pino({ ...loggerOptions({ LOG_LEVEL: 'info' }, 'test'), level }, stream);
  let children = 0;
  // pino's children inherit from their parent object, so the counting wrapper calls the original on `this`.
  const child = logger.child as unknown as (this: unknown, ...args: unknown[]) => unknown;
  Object.assign(logger, {
    child(this: unknown, ...args: unknown[]) {
      children++;
      return child.apply(this, args);
    },
  });
  return { logger: logger as unknown as FastifyBaseLogger, lines, children: () => children };
}

function requestLogger(parent: FastifyBaseLogger, options = {}): FastifyBaseLogger {
  return lazyRequestLogger.call({} as FastifyInstance, parent, { requestId: 'req-1' }, options, {} as IncomingMessage);
}

test('a request that logs nothing, or only below the level, never makes a child', () => {
  const { logger, lines, children } = countingLogger('info');
  const log = requestLogger(logger);
  log.debug({ reason: 'x' }, 'API key refused');
  log.trace('nothing');
  assert.equal(children(), 0);
  assert.deepEqual(lines, []);
  assert.equal(log.level, 'info', "the parent's level until a child exists");
});

test('the first enabled line makes the child once; every line carries the request id and is redacted', async () => {
  const { logger, lines, children } = countingLogger('info');
  const log = requestLogger(logger);
  log.info({ code: 'NOT_FOUND' }, 'request rejected');
  log.error({ headers: { authorization: 'Bearer secret' } }, 'request failed');
  log.warn('plain message');
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(children(), 1);
  assert.deepEqual(
    lines.map((line) => [line.msg, line.requestId]),
    [
      ['request rejected', 'req-1'],
      ['request failed', 'req-1'],
      ['plain message', 'req-1'],
    ],
  );
  assert.equal(lines[0]!.code, 'NOT_FOUND');
  assert.deepEqual(lines[1]!.headers, { authorization: '[redacted]' });
});

test('child() and a level change go to the real child; a route with its own level gets its child at once', async () => {
  const { logger, lines, children } = countingLogger('info');
  const log = requestLogger(logger);
  log.level = 'debug';
  log.debug('now printed');
  log.child({ part: 'inner' }).info('from a grandchild');
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(
    lines.map((line) => [line.msg, line.requestId, line.part]),
    [
      ['now printed', 'req-1', undefined],
      ['from a grandchild', 'req-1', 'inner'],
    ],
  );
  const before = children();
  const routeLevel = requestLogger(logger, { level: 'warn' });
  assert.equal(children(), before + 1, 'made at once');
  assert.equal(routeLevel.level, 'warn');
});
