import { ErrorCode, GantryError } from '../errors.js';
import type { ApiMetrics } from '../metrics/api-metrics.js';
import { lowestPriority } from '../protocol/schedule-parameters.js';
import type { Tensor, TensorDescriptor } from '../protocol/tensor.js';
import { validateInputs } from '../protocol/validate-inputs.js';
import type { InferenceProducer, OutputLimits } from '../queue/inference-producer.js';
import { executionConfigOf, type ModelConfig } from '../registry/model-config.js';
import type { TrafficPolicy } from '../registry/traffic-policy.js';
import type { ModelCatalog } from './model-catalog.js';
import { compareOutputs } from './shadow-comparison.js';

/** What shadow traffic is built from (the inference service's own dependencies). */
export interface ShadowTrafficDependencies {
  catalog: Pick<ModelCatalog, 'serving'>;
  producer: Pick<InferenceProducer, 'submit'>;
  metrics: Pick<ApiMetrics, 'shadowRequests' | 'shadowDuration' | 'shadowMismatches' | 'shadowMaxAbsDifference'>;
  /** GANTRY_MAX_SHADOW_INFLIGHT: shadow copies this process keeps in flight; past it, copies are shed. */
  maxInFlight: number;
  /** False once shutdown began: no copy is sent, and those in flight are cancelled. */
  isAcceptingWork: () => boolean;
  /** A number in [0, 1) per request (Math.random; tests may fix it). */
  random?: () => number;
}

/** One primary request that was answered, as the shadow needs it. */
export interface AnsweredPrimary {
  /** The tenant-qualified model name. */
  model: string;
  /** The version that answered: a request it serves is not copied to itself. */
  version: string;
  modelConfig: ModelConfig;
  descriptors: readonly TensorDescriptor[];
  /** The decoded inputs: views into the request body, valid only until the primary answer is written. */
  inputs: readonly Tensor[];
  /** The outputs the primary was asked for (the shadow is asked for the same). */
  outputNames: readonly string[];
  outputLimits: OutputLimits;
  /** The primary's outputs as the worker sent them (before classification): the shadow's are compared with them. */
  outputs: readonly Tensor[];
  /** The model's own timeout (its inferTimeoutMs, else GANTRY_INFER_TIMEOUT_MS): the caller's is not the shadow's. */
  timeoutMs: number;
}

/** The priority shadow copies queue at: the lowest BullMQ takes, so primary requests of any other level go first. */
const shadowPriority = lowestPriority;

/** How often shadows in flight check whether shutdown began (then they are cancelled, not waited for). */
const shutdownCheckIntervalMs = 100;

/**
 * Shadow traffic (issue 14): after a primary request of a model was answered, a share of them (the policy's
 * `shadow.percent`) is copied to the policy's shadow version, whose answer is compared with the primary's and
 * discarded. Nothing here runs before the primary answer or is awaited by it, and nothing here throws: a shadow's
 * failure is counted in `gantry_shadow_requests_total`, never seen by the caller.
 *
 * Shadows are shed first under load: a copy is skipped (outcome `shed`) when GANTRY_MAX_SHADOW_INFLIGHT copies are
 * in flight in this process, when shutdown began, when the shadow version is not READY, or when the model's queue
 * caps refuse it. Copies queue at the lowest priority, so every primary request overtakes them on the workers;
 * under a `maxQueueSize` they are admitted only while the model's queue is under half full, so they can take at
 * most half of its slots. On the worker a copy runs as background work (session-cache.ts): on a session of its own
 * in a thread at the lowest OS priority, so once running it still yields the CPU to every primary.
 */
export class ShadowTraffic {
  /** One controller per shadow in flight: shutdown cancels them all. */
  private readonly inFlight = new Set<AbortController>();
  private shutdownCheck: NodeJS.Timeout | undefined;
  private readonly random: () => number;

  constructor(private readonly dependencies: ShadowTrafficDependencies) {
    this.random = dependencies.random ?? Math.random;
  }

  /** Shadow copies in flight now (for tests: it must stay within GANTRY_MAX_SHADOW_INFLIGHT). */
  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /**
   * Copies an answered primary request to the policy's shadow version when the draw falls in its share. Returns
   * at once: the copy runs detached.
   */
  mirror(policy: TrafficPolicy | undefined, primary: AnsweredPrimary): void {
    const shadow = policy?.shadow;
    if (shadow === undefined || shadow.version === primary.version) return;
    if (this.random() * 100 >= shadow.percent) return;
    const labels = { model: primary.model, version: shadow.version };
    const { metrics, maxInFlight, isAcceptingWork } = this.dependencies;
    if (this.inFlight.size >= maxInFlight || !isAcceptingWork()) {
      metrics.shadowRequests.inc({ ...labels, outcome: 'shed' });
      return;
    }
    // The decoded inputs are views into the request body, which the in-flight byte budget frees (and the server
    // may reuse) once the primary answer is written, while the shadow may still be queued. They are copied here,
    // so a shadow never reads freed memory; the copies are bounded by GANTRY_MAX_SHADOW_INFLIGHT. Holding the body
    // instead would keep the caller's bytes charged to the budget for as long as a slow shadow takes. The primary
    // outputs are the worker's reply buffers, which nothing reuses: they are held, not copied.
    const inputs = primary.inputs.map((input) => ({ ...input, shape: [...input.shape], data: input.data.slice() }));
    const controller = new AbortController();
    this.track(controller);
    // Started on the next turn of the event loop: the caller's continuation (which writes the primary answer)
    // runs in this turn's microtasks, and the copy's job encoding and queueing would otherwise run before it.
    setImmediate(() => {
      this.run(shadow.version, { ...primary, inputs }, controller.signal)
        .then((outcome) => metrics.shadowRequests.inc({ ...labels, outcome }))
        // run() counts its own failures; this only keeps an unexpected throw from becoming an unhandled rejection.
        .catch(() => metrics.shadowRequests.inc({ ...labels, outcome: 'error' }))
        .finally(() => this.untrack(controller));
    });
  }

  /** Runs one copy on the shadow version; resolves with its outcome label, never rejects. */
  private async run(version: string, primary: AnsweredPrimary, signal: AbortSignal): Promise<string> {
    const { catalog, producer, metrics } = this.dependencies;
    const labels = { model: primary.model, version };
    let target;
    try {
      target = await catalog.serving(primary.model, version);
    } catch {
      // Gone, loading or unloaded: nothing to compare with until it is READY again.
      return 'shed';
    }
    try {
      // The shadow version may take other inputs or lack an output the primary was asked for: an error of the
      // shadow (counted), not of the caller's request.
      validateInputs(target.signature, primary.descriptors);
      const known = new Set(target.signature.outputs.map((output) => output.name));
      if (!primary.outputNames.every((name) => known.has(name))) return 'error';
    } catch {
      return 'error';
    }
    const started = process.hrtime.bigint();
    const maxQueueSize = primary.modelConfig.maxQueueSize;
    try {
      const outcome = await producer.submit(
        { model: primary.model, version: target.version, sha256: target.sha256, settings: executionConfigOf(primary.modelConfig) },
        {
          inputs: [...primary.inputs],
          outputs: [...primary.outputNames],
          deadline: Date.now() + primary.timeoutMs,
          timeoutMs: primary.timeoutMs,
          priority: shadowPriority,
          defaultPriority: primary.modelConfig.defaultPriority,
          // On the workers, at the lowest OS priority: a shadow takes only CPU the primaries leave idle.
          background: true,
          signal,
          ...(maxQueueSize === undefined || maxQueueSize === 0 ? {} : { maxQueueSize: Math.floor(maxQueueSize / 2) || 1 }),
          outputLimits: primary.outputLimits,
        },
      );
      metrics.shadowDuration.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
      const comparison = compareOutputs(primary.outputs, outcome.outputs);
      // Incremented by 0 for a match, so the series exists from the first comparison: a mismatch ratio of 0 is a
      // number on a dashboard, not "no data".
      metrics.shadowMismatches.inc(labels, comparison.mismatchedOutputs > 0 ? 1 : 0);
      if (comparison.maxAbsDifference !== undefined) metrics.shadowMaxAbsDifference.observe(labels, comparison.maxAbsDifference);
      return 'success';
    } catch (error) {
      return failureOutcome(error);
    }
  }

  private track(controller: AbortController): void {
    this.inFlight.add(controller);
    // Shutdown waits for the inferences in flight to be answered; shadows would hold it up to their deadline.
    // While any is in flight, a timer (unref'd: it keeps nothing alive) cancels them once shutdown began.
    this.shutdownCheck ??= setInterval(() => {
      if (this.dependencies.isAcceptingWork()) return;
      for (const pending of this.inFlight) pending.abort();
    }, shutdownCheckIntervalMs).unref();
  }

  private untrack(controller: AbortController): void {
    this.inFlight.delete(controller);
    if (this.inFlight.size > 0) return;
    clearInterval(this.shutdownCheck);
    this.shutdownCheck = undefined;
  }
}

/** The outcome label of a shadow that failed: one that was refused or cancelled rather than run is `shed`. */
function failureOutcome(error: unknown): string {
  if (!(error instanceof GantryError)) return 'error';
  switch (error.code) {
    case ErrorCode.DeadlineExceeded:
      return 'timeout';
    // Refused by the queue caps, cancelled at shutdown, or no queue to put it on (Redis down, shutting down).
    case ErrorCode.ResourceExhausted:
    case ErrorCode.Cancelled:
    case ErrorCode.Unavailable:
      return 'shed';
    default:
      return 'error';
  }
}
