import { fromFloat16Bits } from '../protocol/float16.js';
import type { Tensor } from '../protocol/tensor.js';
import { typedView } from '../protocol/typed-view.js';

/**
 * How far a floating-point element of a shadow's answer may be from the primary's before the output counts as a
 * mismatch: |shadow - primary| <= absolute + relative * |primary| (numpy's isclose rule). Both are 1e-5: a
 * re-export of the same model, another execution provider or thread count differs by rounding only (about 1e-7
 * relative in FP32), while a retrained or broken version differs far more. Integer, BOOL and BYTES outputs
 * compare exactly.
 */
export const shadowTolerance = { absolute: 1e-5, relative: 1e-5 } as const;

/** What comparing a shadow's answer with the primary's found. */
export interface ShadowComparison {
  /** Outputs that differ: another datatype or shape, an output missing, or an element past the tolerance. */
  mismatchedOutputs: number;
  /**
   * The largest absolute element difference over the numeric outputs whose datatype and shape agree (Infinity
   * when one side is NaN or infinite and the other is not); undefined when no numeric output could be compared.
   */
  maxAbsDifference: number | undefined;
}

const floatDatatypes = new Set(['FP16', 'FP32', 'FP64']);

/** Compares the shadow's outputs with the primary's, output by output (matched by name). */
export function compareOutputs(primary: readonly Tensor[], shadow: readonly Tensor[]): ShadowComparison {
  const shadowByName = new Map(shadow.map((tensor) => [tensor.name, tensor]));
  let mismatchedOutputs = 0;
  let maxAbsDifference: number | undefined;
  for (const expected of primary) {
    const actual = shadowByName.get(expected.name);
    if (actual === undefined || actual.datatype !== expected.datatype || !sameShape(actual.shape, expected.shape)) {
      mismatchedOutputs++;
      continue;
    }
    if (expected.datatype === 'BYTES') {
      if (!sameBytes(expected.data, actual.data)) mismatchedOutputs++;
      continue;
    }
    const difference = compareNumbers(expected, actual);
    if (difference.mismatched) mismatchedOutputs++;
    maxAbsDifference = Math.max(maxAbsDifference ?? 0, difference.maxAbs);
  }
  return { mismatchedOutputs, maxAbsDifference };
}

function sameShape(left: readonly number[], right: readonly number[]): boolean {
  return left.length === right.length && left.every((dimension, index) => dimension === right[index]);
}

function sameBytes(left: Uint8Array, right: Uint8Array): boolean {
  return Buffer.from(left.buffer, left.byteOffset, left.byteLength).equals(Buffer.from(right.buffer, right.byteOffset, right.byteLength));
}

/** Element by element: the largest absolute difference, and whether any element is past the tolerance. */
function compareNumbers(expected: Tensor, actual: Tensor): { maxAbs: number; mismatched: boolean } {
  const datatype = expected.datatype as Exclude<Tensor['datatype'], 'BYTES'>;
  const left = typedView(datatype, expected.data);
  const right = typedView(datatype, actual.data);
  const isFloat = floatDatatypes.has(datatype);
  const toNumber = datatype === 'FP16' ? (value: number | bigint) => fromFloat16Bits(Number(value)) : undefined;
  let maxAbs = 0;
  let mismatched = false;
  for (let index = 0; index < left.length; index++) {
    const a = left[index]!;
    const b = right[index]!;
    if (typeof a === 'bigint' || typeof b === 'bigint') {
      // INT64/UINT64: exact, in bigint so values past 2^53 are not rounded together.
      const difference = BigInt(a) - BigInt(b);
      const magnitude = Number(difference < 0n ? -difference : difference);
      if (magnitude > 0) mismatched = true;
      maxAbs = Math.max(maxAbs, magnitude);
      continue;
    }
    const primaryValue = toNumber === undefined ? a : toNumber(a);
    const shadowValue = toNumber === undefined ? b : toNumber(b);
    const magnitude = elementDifference(primaryValue, shadowValue);
    maxAbs = Math.max(maxAbs, magnitude);
    const allowed = isFloat ? shadowTolerance.absolute + shadowTolerance.relative * Math.abs(primaryValue) : 0;
    // An infinite difference (NaN or infinity against anything else) is past any tolerance, an infinite one too.
    if (magnitude === Infinity || magnitude > allowed) mismatched = true;
  }
  return { maxAbs, mismatched };
}

/** |a - b|, where two NaNs (or two equal infinities) agree and a NaN or infinity against anything else is Infinity. */
function elementDifference(a: number, b: number): number {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b) ? 0 : Infinity;
  if (a === b) return 0;
  return Math.abs(a - b);
}
