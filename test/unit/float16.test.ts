import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { fromFloat16Bits, toFloat16Bits } from '../../src/protocol/float16.js';

describe('toFloat16Bits known values', () => {
  const known: [number, number][] = [
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-1, 0xbc00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [65504, 0x7bff],
    [-65504, 0xfbff],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    [0.1, 0x2e66],
    [1 / 3, 0x3555],
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -15, 0x0200], // a subnormal
    [65520, 0x7c00], // rounds up past the largest finite → Infinity
    [1e6, 0x7c00],
    [-1e6, 0xfc00],
    [65519, 0x7bff], // just below the rounding point
    [1 + 2 ** -11, 0x3c00], // tie → even (down)
    [1 + 3 * 2 ** -11, 0x3c02], // tie → even (up)
    [2 ** -25, 0x0000], // half the smallest subnormal, tie → even (zero)
    [3 * 2 ** -25, 0x0002], // tie between 1 and 2 subnormal units → 2
  ];
  for (const [value, bits] of known) {
    test(`${Object.is(value, -0) ? '-0' : value} → 0x${bits.toString(16).padStart(4, '0')}`, () => {
      assert.equal(toFloat16Bits(value), bits);
    });
  }

  test('1e-8 underflows to zero or a subnormal', () => {
    const bits = toFloat16Bits(1e-8);
    assert.equal(bits & 0x7c00, 0, 'exponent bits must be zero');
    assert.ok(bits === 0 || bits === 1, `got 0x${bits.toString(16)}`);
    assert.ok(Math.abs(fromFloat16Bits(bits) - 1e-8) <= 2 ** -25);
  });

  test('NaN stays NaN', () => {
    const bits = toFloat16Bits(NaN);
    assert.equal(bits & 0x7c00, 0x7c00);
    assert.notEqual(bits & 0x3ff, 0);
    assert.ok(Number.isNaN(fromFloat16Bits(bits)));
  });
});

describe('fromFloat16Bits known values', () => {
  test('values', () => {
    assert.equal(fromFloat16Bits(0x3c00), 1);
    assert.equal(fromFloat16Bits(0xc000), -2);
    assert.equal(fromFloat16Bits(0x7bff), 65504);
    assert.equal(fromFloat16Bits(0x7c00), Infinity);
    assert.equal(fromFloat16Bits(0xfc00), -Infinity);
    assert.equal(fromFloat16Bits(0x0001), 2 ** -24);
    assert.equal(fromFloat16Bits(0x03ff), 1023 * 2 ** -24);
    assert.equal(fromFloat16Bits(0x2e66), 0.0999755859375);
    assert.ok(Object.is(fromFloat16Bits(0x8000), -0));
    assert.ok(Number.isNaN(fromFloat16Bits(0x7e00)));
    assert.ok(Number.isNaN(fromFloat16Bits(0xfc01)));
  });
});

describe('round trip', () => {
  test('every non-NaN 16-bit pattern survives bits → number → bits', () => {
    let checked = 0;
    for (let bits = 0; bits < 0x10000; bits++) {
      const isNaN = (bits & 0x7c00) === 0x7c00 && (bits & 0x3ff) !== 0;
      const value = fromFloat16Bits(bits);
      if (isNaN) {
        assert.ok(Number.isNaN(value), `0x${bits.toString(16)} should be NaN`);
        continue;
      }
      const back = toFloat16Bits(value);
      if (back !== bits) assert.fail(`0x${bits.toString(16)} → ${value} → 0x${back.toString(16)}`);
      checked++;
    }
    assert.equal(checked, 65536 - 2 * 1023);
  });

  // toFloat16Bits rounds the double to float32 first (src/protocol/float16.ts:10), then to half: a value just
  // off a half-way point can land exactly on it after the first rounding and then go the wrong way.
  test('no double rounding through float32', () => {
    assert.equal(toFloat16Bits(1 + 2 ** -11 + 2 ** -40), 0x3c01); // just above the tie → up
    assert.equal(toFloat16Bits(2 ** -25 + 2 ** -60), 0x0001); // just above half the smallest subnormal → up
    assert.equal(toFloat16Bits(65520 - 2 ** -30), 0x7bff); // just below the overflow point → 65504, not Infinity
  });

  test('toFloat16Bits picks the nearest half for values between neighbours', () => {
    for (let bits = 0x0400; bits < 0x7bff; bits += 97) {
      const low = fromFloat16Bits(bits);
      const high = fromFloat16Bits(bits + 1);
      const nearLow = low + (high - low) * 0.3;
      const nearHigh = low + (high - low) * 0.7;
      assert.equal(toFloat16Bits(nearLow), bits);
      assert.equal(toFloat16Bits(nearHigh), bits + 1);
    }
  });
});
