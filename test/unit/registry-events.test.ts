/** Registry events (src/registry/registry-events.ts): what parses, and what followers are told to re-read everything for. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRegistryEvent } from '../../src/registry/registry-events.js';

test('a published event parses back, from a Buffer or a string', () => {
  const event = { type: 'version-deleted', name: 'acme~mlp', version: '3', sha256: 'a'.repeat(64) } as const;
  assert.deepEqual(parseRegistryEvent(Buffer.from(JSON.stringify(event))), event);
  assert.deepEqual(parseRegistryEvent(JSON.stringify({ type: 'model-deleted', name: 'mlp' })), { type: 'model-deleted', name: 'mlp' });
});

test('a message that is not JSON, lacks a name, or has a type this version does not know reads as undefined', () => {
  assert.equal(parseRegistryEvent('not json'), undefined);
  assert.equal(parseRegistryEvent(JSON.stringify({ type: 'model-deleted' })), undefined);
  assert.equal(parseRegistryEvent(JSON.stringify({ type: 'model-renamed', name: 'mlp' })), undefined);
  assert.equal(parseRegistryEvent(JSON.stringify([1, 2])), undefined);
});
