import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { baseRetryDelayMs, isRetryableStatus, maxRetryDelayMs, retryDelayMs, shouldRetry } from '../../src/client/retry-policy.js';
import { errorFromResponse, parseRetryAfter } from '../../src/client/gantry-error.js';

describe('client retry policy', () => {
  test('429 and 503 are retried, whatever the method; other statuses never', () => {
    assert.deepEqual([400, 404, 409, 413, 429, 500, 502, 503, 504].filter(isRetryableStatus), [429, 503]);
    for (const idempotent of [true, false]) {
      assert.equal(shouldRetry({ kind: 'status', status: 503 }, 0, 2, idempotent, true), true);
      assert.equal(shouldRetry({ kind: 'status', status: 429, retryAfterSeconds: 1 }, 1, 2, idempotent, true), true);
      assert.equal(shouldRetry({ kind: 'status', status: 500 }, 0, 2, idempotent, true), false);
      assert.equal(shouldRetry({ kind: 'status', status: 504 }, 0, 2, idempotent, true), false);
    }
  });

  test('a connection failure is retried only for idempotent calls', () => {
    assert.equal(shouldRetry({ kind: 'connection' }, 0, 2, true, true), true);
    assert.equal(shouldRetry({ kind: 'connection' }, 0, 2, false, true), false);
  });

  test('no retry past `retries`, for a body that cannot be sent again, or for a Retry-After beyond the cap', () => {
    assert.equal(shouldRetry({ kind: 'status', status: 503 }, 2, 2, true, true), false);
    assert.equal(shouldRetry({ kind: 'status', status: 503 }, 0, 0, true, true), false);
    assert.equal(shouldRetry({ kind: 'status', status: 503 }, 0, 2, true, false), false);
    assert.equal(shouldRetry({ kind: 'status', status: 429, retryAfterSeconds: maxRetryDelayMs / 1000 + 1 }, 0, 2, true, true), false);
    assert.equal(shouldRetry({ kind: 'status', status: 429, retryAfterSeconds: maxRetryDelayMs / 1000 }, 0, 2, true, true), true);
  });

  test('the wait honours Retry-After, else backs off exponentially; capped; jitter up to 20% on top', () => {
    assert.equal(
      retryDelayMs({ kind: 'status', status: 429, retryAfterSeconds: 3 }, 0, () => 0),
      3000,
    );
    assert.equal(
      retryDelayMs({ kind: 'status', status: 429, retryAfterSeconds: 3 }, 0, () => 0.999),
      3600 - 1,
    );
    assert.equal(
      retryDelayMs({ kind: 'status', status: 503 }, 0, () => 0),
      baseRetryDelayMs,
    );
    assert.equal(
      retryDelayMs({ kind: 'status', status: 503 }, 2, () => 0),
      baseRetryDelayMs * 4,
    );
    assert.equal(
      retryDelayMs({ kind: 'connection' }, 20, () => 0),
      maxRetryDelayMs,
    );
    assert.equal(
      retryDelayMs({ kind: 'status', status: 503, retryAfterSeconds: 0 }, 0, () => 0),
      0,
    );
  });

  test('Retry-After reads delay-seconds and HTTP dates', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(parseRetryAfter('7', now), 7);
    assert.equal(parseRetryAfter(' 0 ', now), 0);
    assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now), 5);
    assert.equal(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now), 0);
    assert.equal(parseRetryAfter('soon', now), undefined);
    assert.equal(parseRetryAfter(null, now), undefined);
  });
});

describe('client errors from answers', () => {
  test("Gantry's body gives the message, code and requestId; headers give Retry-After", () => {
    const error = errorFromResponse(
      429,
      new Headers({ 'retry-after': '2', 'x-request-id': 'header-id' }),
      JSON.stringify({ error: 'Rate limit reached', code: 'RESOURCE_EXHAUSTED', requestId: 'body-id' }),
    );
    assert.equal(error.name, 'GantryError');
    assert.deepEqual(
      [error.status, error.code, error.requestId, error.retryAfterSeconds, error.message],
      [429, 'RESOURCE_EXHAUSTED', 'body-id', 2, 'Rate limit reached'],
    );
  });

  test("a proxy's answer without Gantry's body still has a code and the request id header; a long body is cut", () => {
    const error = errorFromResponse(502, new Headers({ 'x-request-id': 'abc' }), `<html>${'x'.repeat(10_000)}</html>`);
    assert.deepEqual([error.status, error.code, error.requestId], [502, 'INTERNAL', 'abc']);
    assert.ok(error.message.length <= 2001, `message of ${error.message.length} characters`);
    assert.equal(errorFromResponse(503, new Headers(), '').code, 'UNAVAILABLE');
    assert.equal(errorFromResponse(503, new Headers(), '').message, 'HTTP 503');
  });
});
