import { describeValue, errors } from '../errors.js';
import { elementCount } from './datatypes.js';
import { writeBytesElements } from './bytes-elements.js';
import { fromFloat16Bits, toFloat16Bits } from './float16.js';
import type { Tensor } from './tensor.js';
import { formatShape } from './shape-text.js';
import { typedView } from './typed-view.js';

/**
 * Triton's classification extension (extension_classification.md). A requested output with the
 * `classification` parameter is answered with its top-N classes instead of its scores: a BYTES tensor whose
 * elements read "<value>:<index>" or "<value>:<index>:<label>".
 *
 * Choices where the spec is silent or loose:
 * - Rows. The spec describes a [batch-size, count] result. Gantry treats the output's last dimension as the
 *   classes and every other dimension as rows: [C] → [N'], [B, C] → [B, N'], [B, T, C] → [B, T, N'], with
 *   N' = min(N, C). A scalar output has no class dimension and is refused.
 * - Value text. The spec's example turns an FP32 3.3 into "3.3", so values are written as the shortest decimal
 *   that reads back as the same value *in the output's own precision* (FP16/FP32/FP64), using JavaScript's
 *   number formatting (plain decimal for 1e-6 ≤ |v| < 1e21, exponent form such as "1e-7" outside it).
 *   Triton's own server prints floats with six fixed decimals ("3.300000"); Gantry follows the spec text.
 *   Integers are written in full (64-bit ones exactly, via BigInt).
 * - Order. Highest value first, compared in the output's datatype (§"Classification Extension"); equal values keep
 *   the lower index first; NaN sorts below every number.
 * - Labels. A label is appended when `labels[index]` is a non-empty string; otherwise the element is
 *   "<value>:<index>".
 */

/** The request-output parameter that asks for classification (§HTTP/REST). */
export const classificationParameter = 'classification';

/** Shortest decimal text for `value` that converts back to the same value via `round`. */
function shortestText(value: number, round: (candidate: number) => number): string {
  if (!Number.isFinite(value)) return String(value);
  const target = round(value);
  for (let digits = 1; digits < 17; digits++) {
    const candidate = Number(value.toPrecision(digits));
    if (Object.is(round(candidate), target)) return String(candidate);
  }
  return String(value);
}

const sameFloat16 = (candidate: number) => toFloat16Bits(candidate);

interface Scores {
  count: number;
  /** Compares elements a and b: > 0 when a ranks higher. */
  compare(a: number, b: number): number;
  text(index: number): string;
}

function numericCompare(values: ArrayLike<number | bigint>): (a: number, b: number) => number {
  return (a, b) => {
    const x = values[a]!;
    const y = values[b]!;
    // NaN ranks below everything (only possible for floats).
    const xNaN = x !== x;
    const yNaN = y !== y;
    if (xNaN || yNaN) return xNaN === yNaN ? 0 : xNaN ? -1 : 1;
    return x > y ? 1 : x < y ? -1 : 0;
  };
}

function scoresOf(output: Tensor): Scores {
  const { datatype } = output;
  if (datatype === 'BYTES' || datatype === 'BOOL') {
    throw errors.invalidArgument(`Output '${output.name}': classification needs a numeric output, but it is ${datatype}.`);
  }
  const view = typedView(datatype, output.data);
  if (datatype === 'FP16') {
    const values = Float64Array.from(view as Uint16Array, fromFloat16Bits);
    return { count: values.length, compare: numericCompare(values), text: (i) => shortestText(values[i]!, sameFloat16) };
  }
  // FP32 values are written in their own precision; FP64 and integers (64-bit ones as bigints) in full.
  const text = datatype === 'FP32' ? (i: number) => shortestText(view[i] as number, Math.fround) : (i: number) => String(view[i]!);
  return { count: view.length, compare: numericCompare(view), text };
}

/**
 * Replaces a numeric output by its top-`topN` classes per row (see the module comment for the exact rules).
 * @param labels class labels by index, when the model has them.
 * @returns a BYTES tensor with the output's name and shape [...leading dimensions, min(topN, C)].
 * @throws GantryError(INVALID_ARGUMENT) naming the output when `topN` is not a positive integer, the output is
 * BYTES or BOOL, or it is a scalar.
 */
export function classify(output: Tensor, topN: number, labels?: readonly string[]): Tensor {
  if (typeof topN !== 'number' || !Number.isSafeInteger(topN) || topN < 1) {
    throw errors.invalidArgument(`Output '${output.name}': parameter '${classificationParameter}' must be a positive integer, got ${describeValue(topN)}.`);
  }
  const scores = scoresOf(output);
  const classes = output.shape[output.shape.length - 1];
  if (classes === undefined) {
    throw errors.invalidArgument(`Output '${output.name}': classification needs an output with a class dimension, but it is a scalar.`);
  }
  if (scores.count !== elementCount(output.shape)) {
    throw errors.internal(
      `Output '${output.name}' holds ${scores.count} values but its shape ${formatShape(output.shape)} needs ${elementCount(output.shape)}.`,
    );
  }
  const keep = Math.min(topN, classes);
  const rows = classes === 0 ? elementCount(output.shape.slice(0, -1)) : scores.count / classes;
  const elements: Uint8Array[] = [];
  const order = new Array<number>(classes);
  for (let row = 0; row < rows; row++) {
    const base = row * classes;
    for (let index = 0; index < classes; index++) order[index] = index;
    order.sort((a, b) => scores.compare(base + b, base + a) || a - b);
    for (let rank = 0; rank < keep; rank++) {
      const index = order[rank]!;
      const label = labels?.[index];
      const text = `${scores.text(base + index)}:${index}${typeof label === 'string' && label !== '' ? `:${label}` : ''}`;
      elements.push(Buffer.from(text, 'utf8'));
    }
  }
  return { name: output.name, datatype: 'BYTES', shape: [...output.shape.slice(0, -1), keep], data: writeBytesElements(elements) };
}
