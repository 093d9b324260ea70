import type { WireError } from '../errors.js';
import type { Datatype } from '../protocol/datatypes.js';
import type { ModelSignature } from '../protocol/signature.js';

/** A tensor crossing the thread boundary: its bytes sit in an ArrayBuffer that is transferred, not copied. */
export interface ThreadTensor {
  name: string;
  datatype: Datatype;
  shape: number[];
  buffer: ArrayBuffer;
  byteOffset: number;
  byteLength: number;
}

export interface SessionSettings {
  executionProviders: string[];
  graphOptimizationLevel: 'disabled' | 'basic' | 'extended' | 'all';
  intraOpThreads?: number;
  interOpThreads?: number;
  /** Where onnxruntime writes the optimized graph, so a second load skips optimization. */
  optimizedModelPath?: string;
}

export type InstanceRequestBody =
  { type: 'load'; modelPath: string; settings: SessionSettings; warmup: boolean } | { type: 'run'; inputs: ThreadTensor[]; outputNames: string[] };

export type InstanceRequest = InstanceRequestBody & { id: number };

export interface RunTiming {
  computeInputNs: number;
  computeInferNs: number;
  computeOutputNs: number;
}

export type InstanceResponse =
  | { id: number; ok: true; type: 'load'; signature: ModelSignature; warmup: string }
  | { id: number; ok: true; type: 'run'; outputs: ThreadTensor[]; timing: RunTiming }
  | { id: number; ok: false; error: WireError };
