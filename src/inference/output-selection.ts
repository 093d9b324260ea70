import { describeValue, errors } from '../errors.js';
import { wantsBinaryOutput } from '../protocol/binary-extension.js';
import { classificationParameter, classify } from '../protocol/classification.js';
import type { ModelSignature } from '../protocol/signature.js';
import type { Tensor } from '../protocol/tensor.js';
import { resolveRequestedOutputs } from '../protocol/validate-inputs.js';
import type { CallOutput, ResultOutput, TransportProtocol } from './inference-call.js';

/** The outputs one call computes and how each leaves. */
export interface OutputSelection {
  /** What the model computes, in the order asked for (every output, in the model's order, when none were). */
  names: string[];
  /** Top-N of each output asked to be classified. */
  classifications: Map<string, number>;
  /** The outputs answered as raw bytes (REST's `binary_data` / `binary_data_output`; every output on gRPC). */
  binary: Set<string>;
}

/**
 * Reads which outputs a call wants and how: checks they exist, reads the `classification` parameter of each, and
 * on REST the binary-data parameters (gRPC has no JSON outputs, so it never reads them).
 * @throws GantryError(INVALID_ARGUMENT) naming an unknown output or a bad parameter.
 */
export function selectOutputs(
  signature: ModelSignature,
  requested: readonly CallOutput[] | undefined,
  requestParameters: Record<string, unknown> | undefined,
  protocol: TransportProtocol,
): OutputSelection {
  const parametersByName = new Map((requested ?? []).map((output) => [output.name, output.parameters]));
  const names = resolveRequestedOutputs(
    signature,
    requested?.map((output) => output.name),
  );
  const classifications = new Map<string, number>();
  const binary = new Set<string>();
  // Every classification is read before any binary flag, so the first bad parameter is the one it always was.
  for (const name of names) {
    const topN = readClassification(name, parametersByName.get(name));
    if (topN !== undefined) classifications.set(name, topN);
  }
  for (const name of names) {
    if (protocol === 'grpc' || wantsBinaryOutput(requestParameters, parametersByName.get(name), name)) binary.add(name);
  }
  return { names, classifications, binary };
}

/** The outputs the worker answers as JSON numbers (not binary, not classified), which GANTRY_MAX_JSON_OUTPUT_ELEMENTS bounds. */
export function jsonOutputNames(selection: OutputSelection): string[] {
  return selection.names.filter((name) => !selection.binary.has(name) && !selection.classifications.has(name));
}

/** The model's outputs as the call asked for them: classified where it asked, each marked binary or not. */
export function presentOutputs(outputs: readonly Tensor[], selection: OutputSelection, labels: readonly string[] | undefined): ResultOutput[] {
  return outputs.map((tensor) => {
    const topN = selection.classifications.get(tensor.name);
    return { tensor: topN === undefined ? tensor : classify(tensor, topN, labels), binary: selection.binary.has(tensor.name) };
  });
}

function readClassification(outputName: string, parameters: Record<string, unknown> | undefined): number | undefined {
  const value = parameters?.[classificationParameter];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw errors.invalidArgument(`Output '${outputName}': parameter 'classification' must be a positive integer, got ${describeValue(value)}.`);
  }
  return value;
}
