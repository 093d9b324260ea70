/**
 * Per-model admission (src/queue/model-admission.ts): the queue-size and queued-bytes caps, their errors and
 * metric labels, release, and the idle callback a deleted model's queue waits for.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, GantryError, errors } from '../../src/errors.js';
import { ModelAdmission, queuedRequestOverheadBytes } from '../../src/queue/model-admission.js';

function refusal(action: () => unknown): GantryError {
  try {
    action();
  } catch (error) {
    assert.ok(error instanceof GantryError, String(error));
    return error;
  }
  assert.fail('the request was admitted');
}

describe('ModelAdmission', () => {
  test('maxQueueSize: requests past it are refused with 429 queue_size until one is released; other models are apart', () => {
    const labels: string[] = [];
    const admission = new ModelAdmission({ onLimitRejection: (label) => labels.push(label) });
    const held = [admission.admit('m', 10, 2), admission.admit('m', 10, 2)];
    const error = refusal(() => admission.admit('m', 10, 2));
    assert.equal(error.code, ErrorCode.ResourceExhausted);
    assert.equal(error.httpStatus, 429);
    assert.match(error.message, /Model 'm' has 2 requests waiting or running \(its maxQueueSize\)/);
    assert.deepEqual(labels, ['queue_size']);
    admission.admit('other', 10, 2);
    admission.release(held[0]!);
    admission.admit('m', 10, 2);
    assert.equal(admission.size, 2);
  });

  test('queued bytes: a model with nothing outstanding takes any one request; the next past the cap is refused', () => {
    const labels: string[] = [];
    const admission = new ModelAdmission({ maxQueuedBytesPerModel: 1000, onLimitRejection: (label) => labels.push(label) });
    const big = admission.admit('m', 5000, 0);
    assert.equal(big.queuedBytes, 5000 + queuedRequestOverheadBytes);
    const error = refusal(() => admission.admit('m', 1, undefined));
    assert.match(error.message, /GANTRY_MAX_QUEUED_BYTES_PER_MODEL/);
    assert.deepEqual(labels, ['queued_bytes']);
    admission.release(big);
    admission.admit('m', 1, undefined);
  });

  test('whenIdle runs once the last request of the model is released (at once when it has none)', () => {
    const admission = new ModelAdmission({});
    let idle = 0;
    admission.whenIdle('quiet', () => idle++);
    assert.equal(idle, 1);
    const first = admission.admit('busy', 1, 0);
    const second = admission.admit('busy', 1, 0);
    admission.whenIdle('busy', () => idle++);
    admission.release(first);
    assert.equal(idle, 1);
    assert.equal(admission.isBusy('busy'), true);
    admission.release(second);
    assert.equal(idle, 2);
    assert.equal(admission.isBusy('busy'), false);
    assert.equal(admission.size, 0, 'no entry stays for a model with nothing outstanding');
  });

  test('an output refused for its size is counted under the limit its message names; other errors are not', () => {
    const labels: string[] = [];
    const admission = new ModelAdmission({ onLimitRejection: (label) => labels.push(label) });
    admission.noteOutcome(errors.outputTooLarge(10, 5));
    admission.noteOutcome(errors.jsonOutputTooLarge(10, 5));
    admission.noteOutcome(errors.deadlineExceeded(100));
    assert.deepEqual(labels, ['output_bytes', 'json_output']);
  });
});
