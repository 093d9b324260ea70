import type { Tensor } from '../protocol/tensor.js';
import type { ExecutionSettings } from './job-contracts.js';
import type { CallerGone } from './caller-gone.js';

/** The model version a request runs on, and the execution settings its job carries to the worker. */
export interface ModelTarget {
  model: string;
  version: string;
  sha256: string;
  settings: ExecutionSettings;
  /** For a load: the version's load generation it is for (src/registry/model-lifecycle.ts); the current one when absent. */
  loadGeneration?: number;
}

/** One inference request as the data plane hands it to the producer (inputs already validated and decoded). */
export interface InferenceSubmission {
  inputs: Tensor[];
  outputs: string[];
  /** Absolute deadline, ms since the epoch. */
  deadline: number;
  /** The timeout the deadline came from, for the message a caller sees when it passes. */
  timeoutMs: number;
  /** BullMQ priority: 1 is the highest; lower-numbered jobs overtake queued higher-numbered ones. */
  priority: number;
  /**
   * The model's default priority (absent: the standard default): a job at it takes BullMQ's cheap path, one above
   * it the front of the queue, one below it BullMQ's priority order (job-ordering.ts).
   */
  defaultPriority?: number;
  /** Aborted when the client goes away: a request not yet running is then dropped. */
  signal?: CallerGone;
  /** Most requests of this model this API process keeps waiting or running; 0 is unbounded. */
  maxQueueSize?: number;
  /** What the worker may send back for this request; it answers OUTPUT_TOO_LARGE past these. */
  outputLimits?: OutputLimits;
  /**
   * Work nobody waits on (shadow copies): the worker runs it on the version's background session, a thread at the
   * lowest OS scheduling priority, so it takes only CPU time that answered requests leave idle.
   */
  background?: boolean;
}

/** A request's output limits, carried in its job (job-contracts.ts) and checked by the worker. */
export interface OutputLimits {
  /** Most output tensor bytes (GANTRY_MAX_RESPONSE_BYTES). */
  maxOutputBytes: number;
  /** Most elements over the outputs answered as JSON (GANTRY_MAX_JSON_OUTPUT_ELEMENTS). */
  maxJsonOutputElements: number;
  /** The outputs answered as JSON numbers: not binary_data, not classified. */
  jsonOutputs: string[];
}
