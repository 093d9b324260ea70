import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode } from '../../src/errors.js';
import { checkVersion } from '../../src/inference/requested-version.js';
import { describedVersion, servingVersion, versionReference } from '../../src/inference/serving-version.js';
import { testVersion, thrownGantryError } from '../helpers/model-versions.js';

// Oldest first, as the registry lists them: 1 READY, 2 READY, 3 UNAVAILABLE (unloaded), 4 LOADING (no signature yet).
const versions = [testVersion('1', 'READY'), testVersion('2', 'READY'), testVersion('3', 'UNAVAILABLE'), testVersion('4', 'LOADING', false)];
const none = new Map<string, string>();

describe('servingVersion', () => {
  test('nothing named and no production alias: the newest READY version', () => {
    assert.equal(servingVersion('m', versions, none, undefined).version, '2');
  });

  test('nothing named with a production alias: its version, even when a newer one is READY', () => {
    assert.equal(servingVersion('m', versions, new Map([['production', '1']]), undefined).version, '1');
  });

  test('production pinned to a version that is not READY: 503 naming the alias and the version, no silent fallback', () => {
    const error = thrownGantryError(() => servingVersion('m', versions, new Map([['production', '3']]), undefined));
    assert.equal(error.code, ErrorCode.Unavailable);
    assert.match(error.message, /'production'.*version 3, which is UNAVAILABLE/);
    assert.equal(error.retryAfterSeconds, 1);
  });

  test('production pointing at a version that no longer exists: 503 saying so', () => {
    const error = thrownGantryError(() => servingVersion('m', versions, new Map([['production', '9']]), undefined));
    assert.equal(error.code, ErrorCode.Unavailable);
    assert.match(error.message, /version 9, which no longer exists/);
  });

  test('a named version must be READY; an unknown one is 404', () => {
    assert.equal(servingVersion('m', versions, none, '1').version, '1');
    assert.equal(thrownGantryError(() => servingVersion('m', versions, none, '3')).code, ErrorCode.Unavailable);
    assert.equal(thrownGantryError(() => servingVersion('m', versions, none, '4')).code, ErrorCode.Unavailable);
    const unknown = thrownGantryError(() => servingVersion('m', versions, none, '7'));
    assert.equal(unknown.code, ErrorCode.NotFound);
    assert.match(unknown.message, /version '7' of model 'm'/);
  });

  test('a named version wins over production', () => {
    assert.equal(servingVersion('m', versions, new Map([['production', '1']]), '2').version, '2');
  });

  test('an alias resolves to its version, which must be READY', () => {
    const aliases = new Map([
      ['canary', '2'],
      ['old', '3'],
    ]);
    assert.equal(servingVersion('m', versions, aliases, 'canary').version, '2');
    const notReady = thrownGantryError(() => servingVersion('m', versions, aliases, 'old'));
    assert.equal(notReady.code, ErrorCode.Unavailable);
    assert.match(notReady.message, /Alias 'old' of model 'm' points at version 3/);
  });

  test('an unknown alias is 404 naming it', () => {
    const error = thrownGantryError(() => servingVersion('m', versions, none, 'canary'));
    assert.equal(error.code, ErrorCode.NotFound);
    assert.match(error.message, /no version or alias 'canary'/);
  });

  test('an unknown model is 404; a model with nothing READY is 503', () => {
    assert.equal(thrownGantryError(() => servingVersion('m', [], none, undefined)).code, ErrorCode.NotFound);
    const error = thrownGantryError(() => servingVersion('m', [testVersion('1', 'LOADING', false)], none, undefined));
    assert.equal(error.code, ErrorCode.Unavailable);
    assert.match(error.message, /no READY version/);
  });

  test('a READY version without a signature does not serve', () => {
    assert.equal(servingVersion('m', [testVersion('1', 'READY'), testVersion('2', 'READY', false)], none, undefined).version, '1');
  });
});

describe('describedVersion', () => {
  test('a named version or alias is described whatever its state', () => {
    assert.equal(describedVersion('m', versions, none, '3').state, 'UNAVAILABLE');
    assert.equal(describedVersion('m', versions, new Map([['old', '3']]), 'old').version, '3');
  });

  test('nothing named: the version that would serve', () => {
    assert.equal(describedVersion('m', versions, none, undefined).version, '2');
    assert.equal(describedVersion('m', versions, new Map([['production', '1']]), undefined).version, '1');
  });

  test('unknown versions and aliases are 404; an alias whose version is gone is 503', () => {
    assert.equal(thrownGantryError(() => describedVersion('m', versions, none, '7')).code, ErrorCode.NotFound);
    assert.equal(thrownGantryError(() => describedVersion('m', versions, none, 'canary')).code, ErrorCode.NotFound);
    assert.equal(thrownGantryError(() => describedVersion('m', versions, new Map([['gone', '9']]), 'gone')).code, ErrorCode.Unavailable);
  });
});

describe('what a request may name as its version', () => {
  test('numbers and alias names pass; numbers read as versions, names as aliases', () => {
    assert.equal(checkVersion(undefined), undefined);
    assert.equal(checkVersion(''), undefined);
    assert.equal(checkVersion('12'), '12');
    assert.equal(checkVersion('production'), 'production');
    assert.equal(checkVersion('canary-2_b'), 'canary-2_b');
    assert.deepEqual(versionReference('12'), { kind: 'version', version: '12' });
    assert.deepEqual(versionReference('canary'), { kind: 'alias', alias: 'canary' });
    assert.deepEqual(versionReference(undefined), { kind: 'default' });
  });

  test('anything else is 400 saying what is allowed, without echoing a long value', () => {
    for (const bad of ['0', '01', 'Prod', '-x', '_x', 'a b', 'a'.repeat(64), 'x'.repeat(5000), '1a']) {
      const error = thrownGantryError(() => checkVersion(bad));
      assert.equal(error.code, ErrorCode.InvalidArgument, bad.slice(0, 20));
      assert.ok(error.message.length < 300);
    }
    assert.match(thrownGantryError(() => checkVersion('Prod')).message, /alias names such as "production"/);
  });

  test("'latest' is reserved: 400 explaining that naming no version is the serving one", () => {
    const error = thrownGantryError(() => checkVersion('latest'));
    assert.equal(error.code, ErrorCode.InvalidArgument);
    assert.match(error.message, /'latest' is reserved/);
  });
});
