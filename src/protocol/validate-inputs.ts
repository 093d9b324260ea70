import { errors } from '../errors.js';
import { elementCount } from './datatypes.js';
import { formatShape } from './shape-text.js';
import type { ModelSignature, TensorSpec } from './signature.js';
import type { TensorDescriptor } from './tensor.js';

/** Above this many elements a single tensor is refused before any memory is allocated for it. */
export const maxElementsPerTensor = 2 ** 31 - 1;

function checkShapeAgainstSpec(input: TensorDescriptor, spec: TensorSpec): void {
  const { shape } = input;
  let elements = 1;
  for (const dimension of shape) {
    if (!Number.isSafeInteger(dimension) || dimension < 0) {
      throw errors.invalidArgument(`Input '${input.name}': shape ${formatShape(shape)} has an invalid dimension ${dimension}; dimensions are integers ≥ 0.`);
    }
    elements *= dimension;
  }
  if (elements > maxElementsPerTensor) {
    throw errors.invalidArgument(`Input '${input.name}': shape ${formatShape(shape)} has ${elements} elements, more than the ${maxElementsPerTensor} allowed.`);
  }
  if (shape.length !== spec.shape.length) {
    throw errors.invalidArgument(
      `Input '${input.name}': expected rank ${spec.shape.length} (shape ${formatShape(spec.shape)}, -1 is any size) but got shape ${formatShape(shape)}.`,
    );
  }
  for (let axis = 0; axis < shape.length; axis++) {
    const declared = spec.shape[axis]!;
    if (declared >= 0 && declared !== shape[axis]) {
      throw errors.invalidArgument(
        `Input '${input.name}': dimension ${axis} must be ${declared} (shape ${formatShape(spec.shape)}) but got shape ${formatShape(shape)}.`,
      );
    }
  }
}

/**
 * Checks a request's inputs against the model's signature: every declared input present exactly once, no unknown
 * input, the right datatype, rank and fixed dimensions. Element counts are checked where the data is decoded.
 * @throws GantryError(INVALID_ARGUMENT) naming the input and what was expected.
 */
export function validateInputs(signature: ModelSignature, inputs: readonly TensorDescriptor[]): void {
  const specByName = new Map(signature.inputs.map((spec) => [spec.name, spec]));
  const seen = new Set<string>();
  for (const input of inputs) {
    const spec = specByName.get(input.name);
    if (spec === undefined) {
      const expected = signature.inputs.map((declared) => `'${declared.name}'`).join(', ');
      throw errors.invalidArgument(`Unknown input '${input.name}'; this model's inputs are ${expected}.`);
    }
    if (seen.has(input.name)) throw errors.invalidArgument(`Input '${input.name}' is given more than once.`);
    seen.add(input.name);
    if (input.datatype !== spec.datatype) {
      throw errors.invalidArgument(`Input '${input.name}': expected datatype ${spec.datatype} but got ${input.datatype}.`);
    }
    checkShapeAgainstSpec(input, spec);
  }
  for (const spec of signature.inputs) {
    if (!seen.has(spec.name)) {
      throw errors.invalidArgument(`Missing input '${spec.name}' (${spec.datatype}, shape ${formatShape(spec.shape)}).`);
    }
  }
}

/** Checks that every requested output exists; returns the names to compute (all outputs when none requested). */
export function resolveRequestedOutputs(signature: ModelSignature, requested: readonly string[] | undefined): string[] {
  const declared = signature.outputs.map((output) => output.name);
  if (requested === undefined || requested.length === 0) return declared;
  const known = new Set(declared);
  for (const name of requested) {
    if (!known.has(name)) {
      throw errors.invalidArgument(`Unknown output '${name}'; this model's outputs are ${declared.map((output) => `'${output}'`).join(', ')}.`);
    }
  }
  return [...new Set(requested)];
}

/**
 * Checks the BYTES elements a request declares, over all its inputs, against `limit` (GANTRY_MAX_BYTES_ELEMENTS).
 * Counted from the shapes, which the data must match, so the check runs before any element is decoded. Each
 * element becomes one string on the worker (onnxruntime's string tensors need them), so this bounds that cost.
 * Call after validateInputs (shapes are checked there).
 * @throws GantryError(INVALID_ARGUMENT) naming the count and the limit.
 */
export function checkBytesElementCount(inputs: readonly TensorDescriptor[], limit: number): void {
  let total = 0;
  for (const input of inputs) if (input.datatype === 'BYTES') total += elementCount(input.shape);
  if (total > limit) throw errors.tooManyBytesElements(total, limit);
}
