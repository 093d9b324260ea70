import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TenantConcurrency } from '../../src/limits/tenant-concurrency.js';

test('a tenant past its share waits, in order, while another tenant goes on at once', async () => {
  const share = new TenantConcurrency(2);
  const first = share.acquire('flood');
  const second = share.acquire('flood');
  assert.equal(first.ready, true);
  assert.equal(second.ready, true);
  const third = share.acquire('flood');
  const fourth = share.acquire('flood');
  assert.notEqual(third.ready, true);
  assert.equal(share.acquire('quiet').ready, true, 'another tenant is not held up');
  const order: string[] = [];
  void (third.ready as Promise<void>).then(() => order.push('third'));
  void (fourth.ready as Promise<void>).then(() => order.push('fourth'));
  first.release();
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(order, ['third']);
  assert.equal(share.inflightOf('flood'), 2);
  second.release();
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(order, ['third', 'fourth']);
  third.release();
  fourth.release();
  fourth.release();
  assert.equal(share.inflightOf('flood'), 0, 'every slot back, a second release of one slot changes nothing');
});

test('a waiting request whose client left gives up its place without taking a slot', async () => {
  const share = new TenantConcurrency(1);
  const running = share.acquire('acme');
  const gone = share.acquire('acme');
  const next = share.acquire('acme');
  gone.release();
  let nextReady = false;
  void (next.ready as Promise<void>).then(() => (nextReady = true));
  running.release();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(nextReady, true, 'the slot went past the request that left');
  assert.equal(share.inflightOf('acme'), 1);
  next.release();
  assert.equal(share.inflightOf('acme'), 0);
});

test('a share of 0 is off', () => {
  assert.equal(new TenantConcurrency(0).enabled, false);
});
