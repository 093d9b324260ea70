/**
 * GANTRY_WORKER_MODELS (worker pools): how the list is read and validated, and what each pattern matches. Patterns
 * match qualified model names: `*` any run of characters (the tenant separator `~` included), `?` one character.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../../src/config.js';
import { parseModelPatterns, patternsMatch, servesAllModels } from '../../src/workers-view/model-patterns.js';

test('unset or * serves every model; a list is trimmed and deduplicated', () => {
  assert.deepEqual(loadConfig({}).GANTRY_WORKER_MODELS, ['*']);
  assert.deepEqual(loadConfig({ GANTRY_WORKER_MODELS: 'mlp*, big-model ,mlp*' }).GANTRY_WORKER_MODELS, ['mlp*', 'big-model']);
  assert.deepEqual(parseModelPatterns('mlp*,*'), ['*']);
  assert.ok(servesAllModels(['*']));
  assert.ok(!servesAllModels(['mlp*']));
});

test('a bad list stops start-up with a message naming the variable and what is allowed', () => {
  assert.throws(
    () => loadConfig({ GANTRY_WORKER_MODELS: 'mlp[0-9]' }),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, /GANTRY_WORKER_MODELS pattern 'mlp\[0-9\]' may only hold letters, digits/);
      return true;
    },
  );
  assert.throws(() => loadConfig({ GANTRY_WORKER_MODELS: ' , ' }), /GANTRY_WORKER_MODELS lists no pattern/);
});

test('patterns match whole qualified names; dots and dashes are literal', () => {
  const patterns = ['mlp*', 'resnet-?', 'acme~*', 'v1.0'];
  for (const model of ['mlp', 'mlp-small', 'resnet-5', 'acme~anything', 'v1.0']) assert.ok(patternsMatch(patterns, model), model);
  for (const model of ['tiny-mlp', 'resnet-50', 'other~mlp', 'v1x0', 'acme']) assert.ok(!patternsMatch(patterns, model), model);
  assert.ok(patternsMatch(['*~big*'], 'acme~big-model'));
  assert.ok(!patternsMatch(['*~big*'], 'big-model'), 'a default-tenant model has no tenant separator');
  assert.ok(patternsMatch(['*'], 'acme~x'));
});
