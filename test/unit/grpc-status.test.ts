/**
 * The one mapping of Gantry's errors to gRPC statuses (src/grpc/grpc-status.ts): codes, messages, retry-after, the
 * generic INTERNAL, and Redis being away answered as UNAVAILABLE like REST's 503, not as a server bug.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { ErrorCode, GantryError, errors } from '../../src/errors.js';
import { grpcStatusFor, internalErrorMessage, toServiceError } from '../../src/grpc/grpc-status.js';

test('every error code has a gRPC status; the protocol codes map to their namesakes', () => {
  for (const code of Object.values(ErrorCode)) assert.equal(typeof grpcStatusFor(code), 'number', code);
  assert.equal(grpcStatusFor(ErrorCode.InvalidArgument), status.INVALID_ARGUMENT);
  assert.equal(grpcStatusFor(ErrorCode.NotFound), status.NOT_FOUND);
  assert.equal(grpcStatusFor(ErrorCode.Unavailable), status.UNAVAILABLE);
  assert.equal(grpcStatusFor(ErrorCode.DeadlineExceeded), status.DEADLINE_EXCEEDED);
  assert.equal(grpcStatusFor(ErrorCode.PayloadTooLarge), status.RESOURCE_EXHAUSTED);
  assert.equal(grpcStatusFor(ErrorCode.Unsupported), status.UNIMPLEMENTED);
});

test('a GantryError keeps its message and its Retry-After as retry-after metadata', () => {
  const { serviceError, isUnexpected } = toServiceError(errors.serverBusy('too much', 'GANTRY_SOMETHING'));
  assert.equal(isUnexpected, false);
  assert.equal(serviceError.code, status.UNAVAILABLE);
  assert.match(serviceError.details!, /GANTRY_SOMETHING/);
  assert.deepEqual(serviceError.metadata!.get('retry-after'), ['1']);
});

test('anything unexpected, and an INTERNAL GantryError, is INTERNAL with the generic message (the detail is for the log)', () => {
  for (const error of [new TypeError('secret detail'), new GantryError(ErrorCode.Internal, 'worker detail')]) {
    const { serviceError, isUnexpected } = toServiceError(error);
    assert.equal(isUnexpected, true);
    assert.equal(serviceError.code, status.INTERNAL);
    assert.equal(serviceError.details, internalErrorMessage);
  }
});

test('Redis unreachable (ioredis errors) is UNAVAILABLE with retry-after, as REST answers 503', () => {
  const closed = new Error('Connection is closed.');
  const retries = Object.assign(new Error('Reached the max retries per request limit (which is 1).'), { name: 'MaxRetriesPerRequestError' });
  for (const error of [closed, retries]) {
    const { serviceError, isUnexpected } = toServiceError(error);
    assert.equal(isUnexpected, false);
    assert.equal(serviceError.code, status.UNAVAILABLE);
    assert.equal(serviceError.details, 'Redis is unreachable; retry shortly.');
    assert.deepEqual(serviceError.metadata!.get('retry-after'), ['1']);
  }
});
