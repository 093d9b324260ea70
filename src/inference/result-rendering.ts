import type { Tensor } from '../protocol/tensor.js';
import type { InferenceResult } from './inference-call.js';
import { presentOutputs, type OutputSelection } from './output-selection.js';

/**
 * How a call's answer is written back, in a form that can wait with a durable job (JSON): the names the caller
 * sees, the outputs it asked for and how each leaves (classified, binary). An asynchronous job's result is
 * rendered from it hours later exactly as the synchronous call would have been answered at once.
 */
export interface ResultRendering {
  /** The model's name as the caller may see it, and the version that serves the call. */
  modelName: string;
  modelVersion: string;
  /** The request's id, echoed in the answer. */
  id?: string;
  /** Outputs asked to be classified, with their top-N. */
  classifications: Array<[string, number]>;
  /** Outputs answered as raw bytes (REST's binary data parameters). */
  binary: string[];
  /** The model's class labels, kept only when something is classified. */
  labels?: string[];
}

/** The rendering of a call whose outputs were selected (output-selection.ts). */
export function resultRendering(
  names: { modelName: string; modelVersion: string; id?: string },
  selection: OutputSelection,
  labels: readonly string[] | undefined,
): ResultRendering {
  return {
    ...names,
    classifications: [...selection.classifications],
    binary: [...selection.binary],
    ...(selection.classifications.size > 0 && labels !== undefined ? { labels: [...labels] } : {}),
  };
}

/** The service's answer for the outputs a worker computed, as the call asked for them. */
export function renderResult(rendering: ResultRendering, outputs: readonly Tensor[]): InferenceResult {
  const selection: OutputSelection = {
    names: outputs.map((output) => output.name),
    classifications: new Map(rendering.classifications),
    binary: new Set(rendering.binary),
  };
  return {
    modelName: rendering.modelName,
    modelVersion: rendering.modelVersion,
    ...(rendering.id === undefined ? {} : { id: rendering.id }),
    outputs: presentOutputs(outputs, selection, rendering.labels),
  };
}
