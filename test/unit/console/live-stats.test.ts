/**
 * The console's live stats: the shared sampler over the API's real prom-client metrics (rates between samples,
 * windowed latency percentiles, queue depth from the gauge), and what each caller is shown of a sample.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createApiMetrics } from '../../../src/metrics/api-metrics.js';
import { LiveStatsSampler, type LiveStatsSample, type ModelLiveStats } from '../../../src/api/console/live-stats-sampler.js';
import { liveStatsFor, maxModelsPerEvent } from '../../../src/api/console/live-stats-view.js';
import type { Principal, Scope } from '../../../src/auth/principal.js';

function metricsWith(pending: () => Map<string, number>, redisUp = () => true) {
  return createApiMetrics({
    isRedisUp: redisUp,
    pendingByModel: async () => pending(),
    versionsByState: async () => new Map(),
    unfinishedWork: async () => new Map(),
  });
}

/** Subscribes and resolves each call with the next sample. */
function nextSamples(sampler: LiveStatsSampler): { next: () => Promise<LiveStatsSample>; stop: () => void } {
  const waiting: Array<(sample: LiveStatsSample) => void> = [];
  const arrived: LiveStatsSample[] = [];
  const stop = sampler.subscribe((sample) => {
    const resolve = waiting.shift();
    if (resolve === undefined) arrived.push(sample);
    else resolve(sample);
  });
  // The sampler's timer is unref'd (it must not hold a process open): a waiting test holds the loop itself.
  const next = () =>
    arrived.length > 0
      ? Promise.resolve(arrived.shift()!)
      : new Promise<LiveStatsSample>((resolve) => {
          const keepAlive = setInterval(() => undefined, 1000);
          waiting.push((sample) => {
            clearInterval(keepAlive);
            resolve(sample);
          });
        });
  return { next, stop };
}

const find = (sample: LiveStatsSample, model: string) => sample.models.find((stats) => stats.model === model);

describe('LiveStatsSampler', () => {
  test('rates between samples, percentiles over the window, errors apart, queue depth from the gauge', async () => {
    let depth = 3;
    const metrics = metricsWith(() => new Map([['m', depth]]));
    const sampler = new LiveStatsSampler(metrics, { intervalMs: 100, windowIntervals: 3 });
    const samples = nextSamples(sampler);
    try {
      const first = await samples.next();
      assert.deepEqual(find(first, 'm'), {
        model: 'm',
        requestsTotal: 0,
        errorsTotal: 0,
        requestsPerSecond: null,
        errorsPerSecond: null,
        latencySeconds: null,
        queueDepth: 3,
      } satisfies ModelLiveStats);

      const labels = { model: 'm', version: '1', protocol: 'rest' };
      for (let count = 0; count < 8; count++) {
        metrics.inferenceRequests.inc({ ...labels, outcome: 'success' });
        metrics.inferenceDuration.observe(labels, 0.003);
      }
      metrics.inferenceRequests.inc({ ...labels, outcome: 'timeout' });
      metrics.inferenceRequests.inc({ ...labels, protocol: 'grpc', outcome: 'success' });
      metrics.inferenceDuration.observe({ ...labels, protocol: 'grpc' }, 0.2);
      // Requests before any model was known are nobody's.
      metrics.inferenceRequests.inc({ model: '', version: '', protocol: 'rest', outcome: 'client_error' });
      depth = 5;
      const second = await samples.next();
      const stats = find(second, 'm')!;
      const seconds = (second.at - first.at) / 1000;
      assert.equal(stats.requestsTotal, 10);
      assert.equal(stats.errorsTotal, 1);
      assert.equal(stats.requestsPerSecond, 10 / seconds);
      assert.equal(stats.errorsPerSecond, 1 / seconds);
      assert.equal(stats.queueDepth, 5);
      // 8 of 9 in (2.5 ms, 5 ms], 1 in (100 ms, 250 ms]: p50 and p90 in the first, p99 in the second.
      const latency = stats.latencySeconds!;
      assert.ok(latency.p50 > 0.0025 && latency.p50 <= 0.005, String(latency.p50));
      assert.ok(latency.p90 > 0.1 && latency.p90 <= 0.25, String(latency.p90));
      assert.ok(latency.p99 > 0.1 && latency.p99 <= 0.25, String(latency.p99));
      assert.equal(second.models.length, 1, 'model="" is left out');

      // Nothing new: the rate falls to 0; the percentiles still cover the window, then forget it.
      const third = await samples.next();
      assert.equal(find(third, 'm')!.requestsPerSecond, 0);
      assert.notEqual(find(third, 'm')!.latencySeconds, null);
      let later = third;
      for (let count = 0; count < 4; count++) later = await samples.next();
      assert.equal(find(later, 'm')!.latencySeconds, null, 'the requests left the 3-interval window');
      assert.equal(find(later, 'm')!.requestsTotal, 10);
    } finally {
      samples.stop();
      sampler.close();
    }
  });

  test('while Redis is down the queue depth is null, the counts go on', async () => {
    const metrics = metricsWith(
      () => new Map([['m', 1]]),
      () => false,
    );
    metrics.inferenceRequests.inc({ model: 'm', version: '1', protocol: 'rest', outcome: 'success' });
    const sampler = new LiveStatsSampler(metrics, { intervalMs: 50, windowIntervals: 2 });
    const samples = nextSamples(sampler);
    try {
      const sample = await samples.next();
      assert.equal(find(sample, 'm')!.queueDepth, null);
      assert.equal(find(sample, 'm')!.requestsTotal, 1);
    } finally {
      samples.stop();
      sampler.close();
    }
  });

  test('it samples only while someone listens; a late listener gets the latest sample at once', async () => {
    let reads = 0;
    const metrics = metricsWith(() => {
      reads++;
      return new Map([['m', 0]]);
    });
    const sampler = new LiveStatsSampler(metrics, { intervalMs: 30, windowIntervals: 2 });
    const first = nextSamples(sampler);
    await first.next();
    await first.next();
    const late = nextSamples(sampler);
    await late.next();
    first.stop();
    late.stop();
    const readsWhenStopped = reads;
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert.ok(reads <= readsWhenStopped + 1, `${reads - readsWhenStopped} reads after the last listener left`);
    sampler.close();
    assert.equal(sampler.subscribe(() => assert.fail('a closed sampler sends nothing')).length, 0, 'a closed sampler hands back a no-op unsubscribe');
  });
});

describe('liveStatsFor', () => {
  const stats = (model: string, requestsPerSecond = 0): ModelLiveStats => ({
    model,
    requestsTotal: 0,
    errorsTotal: 0,
    requestsPerSecond,
    errorsPerSecond: 0,
    latencySeconds: null,
    queueDepth: 0,
  });
  const sample = (models: ModelLiveStats[]): LiveStatsSample => ({ at: 1, intervalMs: 1000, windowSeconds: 10, models });
  const principal = (tenant: string, scopes: Scope[], models?: string[]): Principal => ({
    tenant,
    keyId: 'k',
    scopes: new Set(scopes),
    ...(models === undefined ? {} : { models: new Set(models) }),
  });
  const names = (view: ReturnType<typeof liveStatsFor>) => view.models.map((one) => one.model);
  const mixed = sample([stats('shared'), stats('alpha~a'), stats('alpha~b'), stats('beta~c')]);

  test("a tenant's key sees its tenant's models, by their bare names", () => {
    assert.deepEqual(names(liveStatsFor(principal('alpha', ['models:read']), mixed)), ['a', 'b']);
    assert.deepEqual(names(liveStatsFor(principal('default', ['models:read']), mixed)), ['shared']);
  });

  test("the admin sees every tenant's, other tenants' by qualified name; an allow-list narrows any key", () => {
    assert.deepEqual(names(liveStatsFor(principal('default', ['admin']), mixed)), ['shared', 'alpha~a', 'alpha~b', 'beta~c']);
    assert.deepEqual(names(liveStatsFor(principal('alpha', ['models:read'], ['b']), mixed)), ['b']);
    assert.deepEqual(names(liveStatsFor(principal('default', ['admin'], ['shared']), mixed)), ['shared']);
  });

  test(`at most ${maxModelsPerEvent} models an event, the busiest, the rest counted`, () => {
    const many = sample(Array.from({ length: maxModelsPerEvent + 5 }, (_, index) => stats(`m${String(index).padStart(3, '0')}`, index === 250 ? 0 : index)));
    const view = liveStatsFor(principal('default', ['admin']), many);
    assert.equal(view.models.length, maxModelsPerEvent);
    assert.equal(view.modelsOmitted, 5);
    assert.equal(view.models[0]!.model, `m${maxModelsPerEvent + 4}`);
    assert.ok(!names(view).includes('m000'), 'a quiet model is left out first');
  });
});
