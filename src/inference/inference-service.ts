import type { Config } from '../config.js';
import { ErrorCode, GantryError, errors } from '../errors.js';
import type { ApiMetrics } from '../metrics/api-metrics.js';
import { isNestingTooDeep } from '../protocol/json-tensor-codec.js';
import { readScheduleParameters } from '../protocol/schedule-parameters.js';
import { checkBytesElementCount, validateInputs } from '../protocol/validate-inputs.js';
import type { InferenceProducer, InferenceSubmission, ModelTarget } from '../queue/inference-producer.js';
import { executionConfigOf } from '../registry/model-config.js';
import type { InferenceCall, InferenceResult } from './inference-call.js';
import { decodeInputs, describeInputs } from './input-decoding.js';
import type { ModelCatalog } from './model-catalog.js';
import { jsonOutputNames, presentOutputs, selectOutputs } from './output-selection.js';
import { resultRendering, type ResultRendering } from './result-rendering.js';
import { inCallersTerms, requestedModel } from './requested-model.js';
import { checkVersion } from './requested-version.js';
import { ShadowTraffic } from './shadow-traffic.js';
import type { LiveWorkers } from '../workers-view/live-workers.js';

/** What the inference service is built from. */
export interface InferenceServiceDependencies {
  /** Serving versions, signatures and model configurations. */
  catalog: ModelCatalog;
  /** Queues a checked request for the workers and waits for its answer. */
  producer: Pick<InferenceProducer, 'submit'>;
  config: Pick<
    Config,
    'GANTRY_MAX_BYTES_ELEMENTS' | 'GANTRY_INFER_TIMEOUT_MS' | 'GANTRY_MAX_RESPONSE_BYTES' | 'GANTRY_MAX_JSON_OUTPUT_ELEMENTS' | 'GANTRY_MAX_SHADOW_INFLIGHT'
  >;
  metrics: Pick<
    ApiMetrics,
    'inferenceRequests' | 'inferenceDuration' | 'limitRejections' | 'shadowRequests' | 'shadowDuration' | 'shadowMismatches' | 'shadowMaxAbsDifference'
  >;
  /** False once shutdown began: new calls are refused (503) while accepted ones finish. */
  isAcceptingWork: () => boolean;
  /** Refuses (503) a model that workers run for but none serves (GANTRY_WORKER_MODELS); absent: never refused. */
  liveWorkers?: Pick<LiveWorkers, 'checkServed'>;
}

/**
 * A call checked and decoded, ready to be queued durably (asynchronous jobs, batch lines): where it runs, what
 * the queue job carries for it, and how its answer is written back (JSON-serializable, kept with the job).
 */
export interface PreparedInference {
  target: ModelTarget;
  submission: Omit<InferenceSubmission, 'signal'>;
  rendering: ResultRendering;
}

/** The outcome label of `gantry_inference_requests_total` for an error. */
function outcomeLabel(error: unknown): string {
  if (!(error instanceof GantryError)) return 'error';
  switch (error.code) {
    case ErrorCode.InvalidArgument:
    case ErrorCode.NotFound:
    case ErrorCode.PayloadTooLarge:
    case ErrorCode.Cancelled:
      return 'client_error';
    case ErrorCode.DeadlineExceeded:
      return 'timeout';
    case ErrorCode.Unavailable:
    case ErrorCode.ResourceExhausted:
      return 'unavailable';
    default:
      return 'error';
  }
}

/**
 * The data plane: runs one inference call, whichever transport it came on (REST, gRPC; later asynchronous jobs,
 * batch files, the CLI). Transports read their wire format into an {@link InferenceCall} and write the
 * {@link InferenceResult} back in theirs; everything in between happens here, once, with the same checks, order
 * and messages for every transport:
 *
 * 1. the model is resolved in the caller's tenant (another tenant's model is not found) and the version checked;
 * 2. refused (503) once shutdown began; the serving version and the model's configuration are looked up (404,
 *    503 when nothing is READY); refused (503, saying why) when workers run but none serves the model;
 * 3. the inputs' datatypes, names and shapes are checked against the signature, then the BYTES element limit
 *    (GANTRY_MAX_BYTES_ELEMENTS), then every input's data is decoded (JSON, parse-thread decoded, raw, typed);
 * 4. the outputs are selected, their `classification` and (REST) binary-data parameters read, and the schedule
 *    parameters `priority` and `timeout` (the sooner of it, or the model's default, and the call's own limit);
 * 5. the request is queued with the caller's signal, its deadline and output limits, and its outputs classified.
 *
 * Errors leave as {@link GantryError}s naming the model as the caller wrote it (the transport maps their codes to
 * its statuses). `call.usage` is filled in as the model, version, rows and compute become known, also when the
 * call fails. Each call counts in `gantry_inference_requests_total` (by outcome) and, when answered,
 * `gantry_inference_request_duration_seconds`, labelled by transport.
 *
 * Once answered, a share of the calls is copied to the model's shadow version, if its traffic policy names one
 * (shadow-traffic.ts): detached, after the answer, never delaying or failing it.
 */
export class InferenceService {
  /** Copies answered calls to the shadow version of their model's traffic policy. */
  readonly shadows: ShadowTraffic;

  constructor(private readonly dependencies: InferenceServiceDependencies) {
    this.shadows = new ShadowTraffic({
      catalog: dependencies.catalog,
      producer: dependencies.producer,
      metrics: dependencies.metrics,
      maxInFlight: dependencies.config.GANTRY_MAX_SHADOW_INFLIGHT,
      isAcceptingWork: dependencies.isAcceptingWork,
    });
  }

  async infer(call: InferenceCall): Promise<InferenceResult> {
    const { producer, metrics } = this.dependencies;
    const started = process.hrtime.bigint();
    const requested = requestedModel(call.principal, call.model);
    let labels = { model: '', version: '', protocol: call.protocol };
    try {
      const prepared = await this.prepareCall(call, requested, undefined, (model, version) => (labels = { ...labels, model, version }));
      const outcome = await producer.submit(prepared.target, { ...prepared.submission, ...(call.signal === undefined ? {} : { signal: call.signal }) });
      if (call.usage !== undefined) Object.assign(call.usage, { rows: outcome.rows, computeNs: outcome.computeNs });
      // Answered at once: the outputs are presented from the selection itself, without the serializable rendering.
      const result: InferenceResult = {
        ...prepared.names,
        outputs: presentOutputs(outcome.outputs, prepared.selection, prepared.modelConfig.labels),
      };
      metrics.inferenceRequests.inc({ ...labels, outcome: 'success' });
      metrics.inferenceDuration.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
      this.shadows.mirror(prepared.traffic, {
        model: prepared.target.model,
        version: prepared.target.version,
        modelConfig: prepared.modelConfig,
        descriptors: prepared.descriptors,
        inputs: prepared.submission.inputs,
        outputNames: prepared.submission.outputs,
        outputLimits: prepared.submission.outputLimits,
        outputs: outcome.outputs,
        timeoutMs: prepared.modelTimeoutMs,
      });
      return result;
    } catch (error) {
      metrics.inferenceRequests.inc({ ...labels, outcome: outcomeLabel(error) });
      throw inCallersTerms(error, requested);
    }
  }

  /**
   * Steps 1 to 4 without queueing: what asynchronous jobs and batch files do with a call before they queue it
   * durably themselves (src/jobs/). The same checks, order and messages as a synchronous call; the deadline and
   * priority are the caller's (`options`) instead of the model's timeout and default priority, and the request's
   * own `priority` and `timeout` parameters still apply. Errors name the model as the caller wrote it.
   */
  async prepare(call: InferenceCall, options: { timeoutMs: number; priority: number }): Promise<PreparedInference> {
    const requested = requestedModel(call.principal, call.model);
    try {
      const prepared = await this.prepareCall(call, requested, options);
      return {
        target: prepared.target,
        submission: prepared.submission,
        rendering: resultRendering(prepared.names, prepared.selection, prepared.modelConfig.labels),
      };
    } catch (error) {
      throw inCallersTerms(error, requested);
    }
  }

  /** The steps before queueing; `onServing` learns the model and version as soon as they are known (metric labels). */
  private async prepareCall(
    call: InferenceCall,
    requested: ReturnType<typeof requestedModel>,
    durable?: { timeoutMs: number; priority: number },
    onServing?: (model: string, version: string) => void,
  ) {
    const { catalog, config, isAcceptingWork } = this.dependencies;
    // Resolved in the caller's tenant before anything is looked up: another tenant's model is not found.
    const model = requested.qualified;
    const version = checkVersion(call.version);
    if (!isAcceptingWork()) throw errors.shuttingDown();
    const { serving, traffic } = await catalog.route(model, version, call);
    onServing?.(model, serving.version);
    await this.dependencies.liveWorkers?.checkServed(model);
    if (call.usage !== undefined) Object.assign(call.usage, { model, version: serving.version });
    const modelConfig = await catalog.config(model);
    const descriptors = describeInputs(call.inputs);
    validateInputs(serving.signature, descriptors);
    this.countingLimit('bytes_elements', () => checkBytesElementCount(descriptors, config.GANTRY_MAX_BYTES_ELEMENTS));
    const inputs = this.countingLimit('nesting_depth', () => decodeInputs(call.inputs, descriptors), isNestingTooDeep);
    const selection = selectOutputs(serving.signature, call.outputs, call.parameters, call.protocol);
    const schedule = readScheduleParameters(call.parameters);
    const modelTimeoutMs = modelConfig.inferTimeoutMs ?? config.GANTRY_INFER_TIMEOUT_MS;
    const baseTimeoutMs = durable?.timeoutMs ?? modelTimeoutMs;
    // A synchronous call's own `timeout` replaces its model's; a durable one's cannot outlast the job's deadline.
    const requestedTimeoutMs = schedule.timeoutMicroseconds === undefined ? undefined : schedule.timeoutMicroseconds / 1000;
    const ownTimeoutMs =
      requestedTimeoutMs === undefined ? baseTimeoutMs : durable === undefined ? requestedTimeoutMs : Math.min(requestedTimeoutMs, baseTimeoutMs);
    const timeoutMs = call.timeoutMs === undefined ? ownTimeoutMs : Math.min(ownTimeoutMs, call.timeoutMs);
    // A signal aborted before submission fires no abort event: a caller already gone is not queued at all.
    if (call.signal?.aborted === true) throw errors.cancelled();

    const outputLimits = {
      maxOutputBytes: config.GANTRY_MAX_RESPONSE_BYTES,
      maxJsonOutputElements: config.GANTRY_MAX_JSON_OUTPUT_ELEMENTS,
      jsonOutputs: jsonOutputNames(selection),
    };
    const target: ModelTarget = { model, version: serving.version, sha256: serving.sha256, settings: executionConfigOf(modelConfig) };
    const submission = {
      inputs,
      outputs: selection.names,
      deadline: Date.now() + timeoutMs,
      timeoutMs,
      priority: schedule.priority ?? durable?.priority ?? modelConfig.defaultPriority,
      defaultPriority: modelConfig.defaultPriority,
      maxQueueSize: modelConfig.maxQueueSize,
      // The worker refuses outputs past these before sending them (classified outputs are small: not JSON-limited).
      outputLimits,
    } satisfies InferenceSubmission;
    const names = { modelName: requested.shown, modelVersion: serving.version, ...(call.id === undefined ? {} : { id: call.id }) };
    return { target, submission, names, selection, traffic, modelConfig, descriptors, modelTimeoutMs };
  }

  /** Runs `check`; when it throws a limit's error (all its errors, or those `isLimit` picks), counts the limit. */
  private countingLimit<T>(limit: string, check: () => T, isLimit: (error: unknown) => boolean = () => true): T {
    try {
      return check();
    } catch (error) {
      if (isLimit(error)) this.dependencies.metrics.limitRejections.inc({ limit });
      throw error;
    }
  }
}
