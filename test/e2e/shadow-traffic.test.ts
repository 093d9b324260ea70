/**
 * Shadow traffic end to end: a real `gantry start` (API and worker processes), the policy set with
 * `PUT /v1/models/{m}/traffic`, requests over HTTP, the outcome read from `/metrics`. An identical shadow shows
 * successes and no mismatch; a different one mismatches on every answer; the primary answer never changes.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { call, waitUntil } from './support.js';
import { fixturePath, inferJson, startGantry, uploadModel, withAdminKey, type GantryProcess } from '../helpers/gantry-process.js';
import { sampleValue } from '../helpers/metrics-text.js';

describe('shadow traffic through a running gantry', { timeout: 120_000 }, () => {
  let gantry: GantryProcess;
  const request = { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] };

  async function metrics(): Promise<string> {
    const response = await fetch(`${gantry.baseUrl}/metrics`, { headers: withAdminKey() });
    return response.text();
  }

  /** Sends requests pinned to version 1 until `count` copies to `version` succeeded; every primary answers unchanged. */
  async function shadowUntilSucceeded(version: string, count: number): Promise<string> {
    let exposition = '';
    await waitUntil(
      async () => {
        const answer = await inferJson(gantry.baseUrl, 'shadowed', request, '1');
        assert.equal(answer.status, 200, JSON.stringify(answer.body));
        assert.deepEqual((answer.body.outputs as Array<{ data: number[] }>)[0]!.data, [1, 2, 3, 4]);
        exposition = await metrics();
        return sampleValue(exposition, 'gantry_shadow_requests_total', { model: 'shadowed', version, outcome: 'success' }) >= count;
      },
      60_000,
      `${count} shadow copies to version ${version} succeeded`,
    );
    return exposition;
  }

  before(async () => {
    gantry = await startGantry();
    // 1 and 2: the same identity model; 3 doubles its input (same input and output names).
    for (const fixture of ['identity-float.onnx', 'identity-float.onnx', 'fixed-batch.onnx']) {
      const uploaded = await uploadModel(gantry.baseUrl, 'shadowed', fixturePath(fixture), '?duplicate=true');
      assert.equal(uploaded.status, 201, JSON.stringify(uploaded.body));
    }
  });

  after(async () => {
    await gantry?.cleanup();
  });

  test('an identical shadow: copies succeed with no mismatch', async () => {
    const set = await call(gantry.baseUrl, 'PUT', '/v1/models/shadowed/traffic', { shadow: { version: '2', percent: 100 } });
    assert.equal(set.status, 200, set.text);
    const exposition = await shadowUntilSucceeded('2', 3);
    assert.equal(sampleValue(exposition, 'gantry_shadow_mismatches_total', { model: 'shadowed', version: '2' }), 0);
    assert.ok(sampleValue(exposition, 'gantry_shadow_max_abs_difference_bucket', { model: 'shadowed', version: '2', le: '0' }) >= 3);
  });

  test('a different shadow: every answered copy is a mismatch', async () => {
    const set = await call(gantry.baseUrl, 'PUT', '/v1/models/shadowed/traffic', { shadow: { version: '3', percent: 100 } });
    assert.equal(set.status, 200, set.text);
    let exposition = await shadowUntilSucceeded('3', 3);
    // A copy answered after the scrape above is counted in the next: compare both counters in one scrape, settled.
    await waitUntil(
      async () => {
        exposition = await metrics();
        const succeeded = sampleValue(exposition, 'gantry_shadow_requests_total', { model: 'shadowed', version: '3', outcome: 'success' });
        return sampleValue(exposition, 'gantry_shadow_mismatches_total', { model: 'shadowed', version: '3' }) === succeeded;
      },
      10_000,
      'every answered copy to version 3 is counted as a mismatch',
    );
    assert.ok(sampleValue(exposition, 'gantry_shadow_mismatches_total', { model: 'shadowed', version: '3' }) >= 3);
  });
});
