import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TenantMetricLabels, otherTenantsLabel } from '../../src/usage/tenant-metric-labels.js';

test('the first tenants get their own label; past the bound they share _other, and the bound is reported once', () => {
  const reported: number[] = [];
  const labels = new TenantMetricLabels(2, (bound) => reported.push(bound));
  assert.equal(labels.labelFor('acme'), 'acme');
  assert.equal(labels.labelFor('globex'), 'globex');
  assert.equal(labels.labelFor('initech'), otherTenantsLabel);
  assert.equal(labels.labelFor('umbrella'), otherTenantsLabel);
  // Tenants already labelled keep their label.
  assert.equal(labels.labelFor('acme'), 'acme');
  assert.deepEqual(reported, [2]);
});

test('a bound of 0 puts every tenant under _other', () => {
  const labels = new TenantMetricLabels(0);
  assert.equal(labels.labelFor('acme'), otherTenantsLabel);
});
