import type { WireError } from '../errors.js';
import type { Datatype } from '../protocol/datatypes.js';
import type { ModelSignature } from '../protocol/signature.js';
import type { WarmupReport } from '../registry/warmup-report.js';

/** A tensor crossing the thread boundary: its bytes sit in an ArrayBuffer that is transferred, not copied. */
export interface ThreadTensor {
  name: string;
  datatype: Datatype;
  shape: number[];
  buffer: ArrayBuffer;
  byteOffset: number;
  byteLength: number;
}

/** `idle`: SCHED_IDLE (runs only on a core nothing else wants) plus nice 19; `nice`: nice 19 only (no chrt, not Linux). */
export type BackgroundScheduling = 'idle' | 'nice';

export interface SessionSettings {
  executionProviders: string[];
  graphOptimizationLevel: 'disabled' | 'basic' | 'extended' | 'all';
  intraOpThreads?: number;
  interOpThreads?: number;
  /**
   * The model's intra-op count is automatic: `intraOpThreads` is the instance's share of the cores, and the load
   * times a few zero-filled runs and reloads with one thread when a run is light (thread-choice.ts).
   */
  autoIntraOpThreads?: boolean;
  /** Where onnxruntime writes the optimized graph, so a second load skips optimization. */
  optimizedModelPath?: string;
  /** onnxruntime's session.intra_op/inter_op.allow_spinning: whether idle pool threads spin-wait (absent: no). */
  allowSpinning?: boolean;
  /** A background session (session-cache.ts): its thread, and the threads onnxruntime starts from it, run at the lowest OS priority. */
  background?: boolean;
}

/** A warm-up runs `inputs` (a sample, checked against the signature first) or, without them, zero-filled inputs. */
export type InstanceRequestBody =
  | { type: 'load'; modelPath: string; settings: SessionSettings }
  | { type: 'warmup'; inputs?: ThreadTensor[] }
  | { type: 'run'; inputs: ThreadTensor[]; outputNames: string[] };

export type InstanceRequest = InstanceRequestBody & { id: number };

export interface RunTiming {
  computeInputNs: number;
  computeInferNs: number;
  computeOutputNs: number;
}

export type InstanceResponse =
  | {
      id: number;
      ok: true;
      type: 'load';
      signature: ModelSignature;
      /** How a background session's thread is scheduled: `idle` (SCHED_IDLE and nice 19) or `nice` (nice 19 only). */
      backgroundScheduling?: BackgroundScheduling;
      /** The intra-op threads the session runs with (absent: onnxruntime's own default, not set by Gantry). */
      intraOpThreads?: number;
      /** With automatic threads: the median zero-filled run, in milliseconds, the choice was made from. */
      measuredRunMs?: number;
    }
  | { id: number; ok: true; type: 'warmup'; report: WarmupReport }
  | { id: number; ok: true; type: 'run'; outputs: ThreadTensor[]; timing: RunTiming }
  | { id: number; ok: false; error: WireError };
