/**
 * IEEE 754 half-precision conversions. JSON carries FP16 values as ordinary numbers; inside Gantry they are
 * the 2-byte bit patterns onnxruntime expects. Rounding goes straight from the 64-bit number to half precision
 * (to nearest, ties to even): going through float32 first would round twice and sometimes land on the wrong
 * neighbour.
 */

/** Rounds to the nearest integer, halfway cases to the even one. Exact for the ranges used here. */
function roundHalfToEven(value: number): number {
  const floor = Math.floor(value);
  const fraction = value - floor;
  if (fraction > 0.5) return floor + 1;
  if (fraction < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** Largest finite half (65504) plus half its spacing: from here on, values round to infinity. */
const overflowThreshold = 65520;
const smallestNormal = 2 ** -14;
const subnormalStep = 2 ** -24;

export function toFloat16Bits(value: number): number {
  if (Number.isNaN(value)) return 0x7e00;
  const sign = value < 0 || Object.is(value, -0) ? 0x8000 : 0;
  const magnitude = Math.abs(value);
  if (magnitude >= overflowThreshold) return sign | 0x7c00;
  // Subnormals (and the smallest normal, which rounding may reach) are multiples of 2^-24.
  if (magnitude < smallestNormal) return sign | roundHalfToEven(magnitude / subnormalStep);
  let exponent = Math.floor(Math.log2(magnitude));
  // log2 can be off by one right at powers of two; scaling by powers of two is exact, so correct it.
  if (2 ** exponent > magnitude) exponent -= 1;
  else if (2 ** (exponent + 1) <= magnitude) exponent += 1;
  let mantissa = roundHalfToEven((magnitude / 2 ** exponent - 1) * 1024);
  if (mantissa === 1024) {
    mantissa = 0;
    exponent += 1;
  }
  if (exponent + 15 >= 0x1f) return sign | 0x7c00;
  return sign | ((exponent + 15) << 10) | mantissa;
}

export function fromFloat16Bits(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * subnormalStep;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}
