import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, GantryError, errors, fromWire, httpStatusFor, isErrorCode, type WireError } from '../../src/errors.js';

describe('httpStatusFor', () => {
  // Triton's mapping of its status codes to HTTP (plus Gantry's own INVALID_MODEL and PAYLOAD_TOO_LARGE).
  const expected: [ErrorCode, number][] = [
    [ErrorCode.InvalidArgument, 400],
    [ErrorCode.NotFound, 404],
    [ErrorCode.AlreadyExists, 409],
    [ErrorCode.Unsupported, 501],
    [ErrorCode.Unavailable, 503],
    [ErrorCode.DeadlineExceeded, 504],
    [ErrorCode.Internal, 500],
    [ErrorCode.InvalidModel, 422],
    [ErrorCode.PayloadTooLarge, 413],
  ];
  for (const [code, status] of expected) {
    test(`${code} → ${status}`, () => {
      assert.equal(httpStatusFor(code), status);
      assert.equal(new GantryError(code, 'x').httpStatus, status);
    });
  }

  test('every code maps to a 4xx or 5xx status', () => {
    for (const code of Object.values(ErrorCode)) {
      const status = httpStatusFor(code);
      assert.ok(Number.isInteger(status) && status >= 400 && status < 600, `${code} → ${status}`);
    }
  });
});

describe('wire form', () => {
  test('toWire/fromWire round trip for every code', () => {
    for (const code of Object.values(ErrorCode)) {
      const original = new GantryError(code, `message for ${code}`);
      const wire = original.toWire();
      assert.deepEqual(wire, { code, message: `message for ${code}` });
      const back = fromWire(JSON.parse(JSON.stringify(wire)) as WireError);
      assert.ok(back instanceof GantryError);
      assert.equal(back.code, code);
      assert.equal(back.message, original.message);
      assert.equal(back.httpStatus, original.httpStatus);
    }
  });

  test('a retryable error from a worker (503, 429) keeps a Retry-After after crossing the queue', () => {
    assert.equal(fromWire({ code: ErrorCode.Unavailable, message: 'unloaded' }).retryAfterSeconds, 1);
    assert.equal(fromWire({ code: ErrorCode.ResourceExhausted, message: 'full' }).retryAfterSeconds, 1);
    assert.equal(fromWire({ code: ErrorCode.InvalidArgument, message: 'bad' }).retryAfterSeconds, undefined);
  });

  test('unknown code → INTERNAL, message kept', () => {
    const back = fromWire({ code: 'NO_SUCH_CODE' as ErrorCode, message: 'strange' });
    assert.equal(back.code, ErrorCode.Internal);
    assert.equal(back.message, 'strange');
    assert.equal(back.httpStatus, 500);
  });

  test('isErrorCode accepts real codes and refuses other values', () => {
    assert.equal(isErrorCode('NOT_FOUND'), true);
    assert.equal(isErrorCode('not_found'), false);
    assert.equal(isErrorCode(404), false);
    assert.equal(isErrorCode(undefined), false);
  });

  // src/errors.ts:41 uses `value in reverseCodes` on a plain object, so inherited keys count as codes.
  test('codes that look like object keys are not accepted as error codes', () => {
    assert.equal(isErrorCode('toString'), false);
    assert.equal(isErrorCode('__proto__'), false);
    assert.equal(isErrorCode('constructor'), false);
    assert.equal(fromWire({ code: 'toString' as ErrorCode, message: 'm' }).code, ErrorCode.Internal);
    assert.equal(isErrorCode('NOT_FOUND'), true);
    assert.equal(isErrorCode(404), false);
  });
});

describe('GantryError and factories', () => {
  test('is an Error with name, code, cause and retryAfter', () => {
    const cause = new Error('root');
    const error = new GantryError(ErrorCode.Unavailable, 'later', { retryAfterSeconds: 2, cause });
    assert.ok(error instanceof Error);
    assert.equal(error.name, 'GantryError');
    assert.equal(error.retryAfterSeconds, 2);
    assert.equal(error.cause, cause);
  });

  test('factories pick the right codes', () => {
    assert.equal(errors.invalidArgument('x').code, ErrorCode.InvalidArgument);
    assert.equal(errors.modelNotFound('m').code, ErrorCode.NotFound);
    assert.match(errors.modelNotFound('m', '3').message, /version '3' of model 'm'/);
    assert.equal(errors.uploadTooLarge(10).code, ErrorCode.PayloadTooLarge);
    assert.equal(errors.requestTooLarge(10).code, ErrorCode.PayloadTooLarge);
    assert.equal(errors.deadlineExceeded(5).code, ErrorCode.DeadlineExceeded);
    assert.equal(errors.invalidModel('bad').code, ErrorCode.InvalidModel);
    assert.equal(errors.unsupported('no').code, ErrorCode.Unsupported);
    assert.equal(errors.internal().code, ErrorCode.Internal);
    const notReady = errors.modelNotReady('m', '1', 'LOADING');
    assert.equal(notReady.code, ErrorCode.Unavailable);
    assert.equal(notReady.retryAfterSeconds, 1);
    assert.match(notReady.message, /^Version '1' of model 'm' is not ready \(state LOADING\)/);
    assert.equal(errors.queueUnavailable('x').retryAfterSeconds, 1);
  });

  test('invalidModelName truncates an absurdly long name', () => {
    const error = errors.invalidModelName('a'.repeat(10_000));
    assert.ok(error.message.length < 600);
  });
});
