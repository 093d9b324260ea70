/** Version records and error capture for the unit tests of the serving rule (src/inference/serving-version.ts). */
import assert from 'node:assert/strict';
import { GantryError } from '../../src/errors.js';
import type { ModelState } from '../../src/registry/model-state.js';
import type { ModelVersion } from '../../src/registry/model-registry.js';

/** The signature every test version has: FP32 x [-1, 4] → FP32 y [-1, 2]. */
export const testSignature = {
  inputs: [{ name: 'x', datatype: 'FP32' as const, shape: [-1, 4] }],
  outputs: [{ name: 'y', datatype: 'FP32' as const, shape: [-1, 2] }],
};

/** A version record of model 'm' in `state` (without a signature when `withSignature` is false: not loaded yet). */
export function testVersion(number: string, state: ModelState, withSignature = true): ModelVersion {
  return {
    name: 'm',
    version: number,
    sha256: 'a'.repeat(64),
    size: 1,
    state,
    createdAt: '2026-01-01T00:00:00.000Z',
    ...(withSignature ? { signature: testSignature } : {}),
  };
}

/** The GantryError `run` throws; fails the test when it throws nothing or something else. */
export function thrownGantryError(run: () => unknown): GantryError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof GantryError);
    return error;
  }
  assert.fail('expected a throw');
}
