/** Element-wise comparison of two answers to the same request, within the model's tolerance. */
import type { OutputTensor } from './inference.js';
import type { CheckModel } from './model-catalogue.js';

export interface Comparison {
  what: string;
  model: string;
  elements: number;
  maxAbs: number;
  /** Largest |a-b|/|b| over elements with |b| >= 1e-3 (tiny references make relative differences meaningless). */
  maxRel: number;
  /** Elements outside abs + rel·|ref|. */
  outside: number;
  pass: boolean;
  problem?: string;
}

export function compareOutputs(what: string, model: CheckModel, actual: OutputTensor[], reference: OutputTensor[]): Comparison {
  const result: Comparison = { what, model: model.name, elements: 0, maxAbs: 0, maxRel: 0, outside: 0, pass: true };
  const { abs, rel } = model.tolerance;
  const actualNames = actual
    .map((o) => o.name)
    .sort()
    .join(',');
  const referenceNames = reference
    .map((o) => o.name)
    .sort()
    .join(',');
  if (actualNames !== referenceNames || actual.length === 0) {
    return { ...result, pass: false, problem: `outputs differ: [${actualNames}] vs [${referenceNames}]` };
  }
  for (const expected of reference) {
    const got = actual.find((o) => o.name === expected.name)!;
    if (JSON.stringify(got.shape) !== JSON.stringify(expected.shape) || got.datatype !== expected.datatype || got.data.length !== expected.data.length) {
      return {
        ...result,
        pass: false,
        problem: `${expected.name}: ${got.datatype}${JSON.stringify(got.shape)} (${got.data.length}) vs ${expected.datatype}${JSON.stringify(expected.shape)} (${expected.data.length})`,
      };
    }
    for (let i = 0; i < expected.data.length; i++) {
      const a = got.data[i]!;
      const b = expected.data[i]!;
      result.elements++;
      // NaN on both sides agrees; NaN on one side only is a difference without a size.
      if (Number.isNaN(a) || Number.isNaN(b)) {
        if (!(Number.isNaN(a) && Number.isNaN(b))) {
          result.outside++;
          result.maxAbs = Infinity;
        }
        continue;
      }
      const diff = Math.abs(a - b);
      if (diff > result.maxAbs) result.maxAbs = diff;
      if (Math.abs(b) >= 1e-3 && diff / Math.abs(b) > result.maxRel) result.maxRel = diff / Math.abs(b);
      if (!(diff <= abs + rel * Math.abs(b))) result.outside++;
    }
  }
  result.pass = result.outside === 0;
  return result;
}
