import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { checkJsonCost, couldExceedJsonCost, countJsonCost, isJsonTooCostly, jsonCostBounds } from '../../src/protocol/json-cost.js';
import { ErrorCode, GantryError } from '../../src/errors.js';

const count = (text: string) => {
  const { containers, strings } = countJsonCost(Buffer.from(text, 'utf8'));
  return { containers, strings };
};

describe('countJsonCost', () => {
  test('counts arrays and objects, nested or not, and every string (keys included)', () => {
    assert.deepEqual(count('[]'), { containers: 1, strings: 0 });
    assert.deepEqual(count('[[],[[]],{}]'), { containers: 5, strings: 0 });
    assert.deepEqual(count('{"a":{"b":["c","d"]}}'), { containers: 3, strings: 4 });
    assert.deepEqual(count('{"inputs":[{"name":"x","shape":[2],"data":[1,2]}]}'), { containers: 5, strings: 5 });
  });

  test('numbers, literals and whitespace cost nothing', () => {
    assert.deepEqual(count('  1.5e-3 , -0, true, false, null \n'), { containers: 0, strings: 0 });
    assert.deepEqual(count(`[${'3.14159,'.repeat(1000)}1]`), { containers: 1, strings: 0 });
  });

  test('brackets, braces and quotes inside strings are not counted, escaped quotes included', () => {
    assert.deepEqual(count('["[[[{{{"]'), { containers: 1, strings: 1 });
    assert.deepEqual(count(String.raw`["a\"[b", "c"]`), { containers: 1, strings: 2 });
    // An escaped backslash ends in a real closing quote: the bracket after it is outside the string.
    assert.deepEqual(count(String.raw`["a\\", []]`), { containers: 2, strings: 1 });
    assert.deepEqual(count(String.raw`["\\\"[", []]`), { containers: 2, strings: 1 });
    assert.deepEqual(count(String.raw`["\u005b\u0022", {}]`), { containers: 2, strings: 1 });
  });

  test('multi-byte UTF-8 inside strings is skipped byte by byte without miscounting', () => {
    assert.deepEqual(count('["é[", "日本\\"{", "😀"]'), { containers: 1, strings: 3 });
    assert.equal(JSON.parse('["é[", "日本\\"{", "😀"]').length, 3);
  });

  test('agrees with JSON.parse on a generated nested document', () => {
    let containers = 0;
    let strings = 0;
    const build = (depth: number): unknown => {
      if (depth === 0) {
        strings++;
        return `s"[{\\${depth}`;
      }
      containers++;
      if (depth % 2 === 0) {
        strings += 2; // two keys
        return { key: build(depth - 1), other: build(depth - 1) };
      }
      return [build(depth - 1), 3, build(depth - 1)];
    };
    const text = JSON.stringify(build(8));
    assert.deepEqual(count(text), { containers, strings });
  });

  test('values are counted by the commas outside strings', () => {
    assert.equal(countJsonCost(Buffer.from('[1,2,3,{"a":1,"b":"x,y"}]')).values, 4);
  });

  test('with bounds it stops at the first container or string past them', () => {
    const text = Buffer.from(`[${'[],'.repeat(100)}0]`);
    const stopped = countJsonCost(text, { maxContainers: 10, maxStrings: 1000, maxValues: 1000 });
    assert.equal(stopped.containers, 11);
    assert.ok(stopped.scannedBytes < 40, `stopped after ${stopped.scannedBytes} bytes`);
    assert.equal(countJsonCost(text).containers, 101);
  });
});

describe('checkJsonCost', () => {
  const bounds = { maxContainers: 3, maxStrings: 2, maxValues: 4 };

  test('lets a body within both bounds through', () => {
    assert.deepEqual(checkJsonCost(Buffer.from('{"a":[[1]],"b":2}'), bounds), { containers: 3, strings: 2, values: 1 });
  });

  test('refuses too many containers or strings with 400 naming the bound and the fix', () => {
    for (const [text, pattern] of [
      ['[[],[],[]]', /more than 3 arrays and objects/],
      ['["a","b","c"]', /more than 2 strings \(the most allowed: GANTRY_MAX_BYTES_ELEMENTS \+ 100000/],
      ['[1,2,3,4,5,6]', /more than 4 values \(the most allowed\)/],
    ] as const) {
      assert.throws(
        () => checkJsonCost(Buffer.from(text), bounds, 'The request body'),
        (error: unknown) => {
          assert.ok(error instanceof GantryError);
          assert.equal(error.code, ErrorCode.InvalidArgument);
          assert.equal(error.httpStatus, 400);
          assert.match(error.message, /^The request body is too costly to parse as JSON/);
          assert.match(error.message, pattern);
          assert.match(error.message, /flat .*binary tensor extension/);
          assert.ok(isJsonTooCostly(error));
          return true;
        },
      );
    }
    assert.equal(isJsonTooCostly(new Error('other')), false);
  });

  test('the default bounds: 1,000,000 containers, GANTRY_MAX_BYTES_ELEMENTS + 100,000 strings', () => {
    assert.deepEqual(jsonCostBounds(1_000_000), { maxContainers: 1_000_000, maxStrings: 1_100_000, maxValues: 8_000_000 });
  });

  test('couldExceedJsonCost: a text under twice the smaller bound cannot pass either, so it is not scanned', () => {
    const defaults = jsonCostBounds(1_000_000);
    assert.equal(couldExceedJsonCost(1024 ** 2, defaults), false);
    assert.equal(couldExceedJsonCost(2_000_000, defaults), false);
    assert.equal(couldExceedJsonCost(2_000_002, defaults), true);
    // The densest text: every container takes two bytes.
    const densest = `${'['.repeat(6)}${']'.repeat(6)}`;
    assert.equal(count(densest).containers, 6);
    assert.equal(couldExceedJsonCost(densest.length, { maxContainers: 6, maxStrings: 6, maxValues: 6 }), false);
    assert.equal(couldExceedJsonCost(densest.length, { maxContainers: 5, maxStrings: 100, maxValues: 100 }), true);
  });
});
