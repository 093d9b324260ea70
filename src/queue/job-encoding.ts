import { jobSchemaVersion, type InferenceJob, type LoadJob, type QueuedRequest } from './job-contracts.js';
import type { InferenceSubmission, ModelTarget } from './inference-submission.js';

/** BullMQ options of every job Gantry queues: done jobs go at once, failed ones stay an hour (at most 1000). */
export const jobRetention = { removeOnComplete: true, removeOnFail: { age: 3600, count: 1000 } } as const;

/** One request of a job: its submission and the correlation id its reply will carry. */
export interface RequestToEncode {
  correlationId: string;
  submission: InferenceSubmission;
}

/** An inference job without its payload, and the input bytes that go with it (inline or under a key). */
export interface EncodedInferenceJob {
  job: InferenceJob;
  /** Every request's input tensors' bytes, in the order the job lists them (the worker cuts them back out). */
  parts: Uint8Array[];
  payloadBytes: number;
}

/**
 * Builds the job contract (job-contracts.ts) for requests sharing a model version and priority: metadata per
 * request (input layouts, requested outputs, output limits), the latest deadline among them, the model's
 * execution settings, and where to reply. The caller sets `payload` or `payloadKey`.
 */
export function encodeInferenceJob(target: ModelTarget, priority: number, requests: readonly RequestToEncode[], replyTo: string): EncodedInferenceJob {
  const queued: QueuedRequest[] = [];
  const parts: Uint8Array[] = [];
  let payloadBytes = 0;
  let deadline = 0;
  for (const { correlationId, submission } of requests) {
    const limits = submission.outputLimits;
    queued.push({
      correlationId,
      inputs: submission.inputs.map((input) => ({ name: input.name, datatype: input.datatype, shape: input.shape, byteLength: input.data.byteLength })),
      outputs: submission.outputs,
      ...(limits === undefined
        ? {}
        : { maxOutputBytes: limits.maxOutputBytes, maxJsonOutputElements: limits.maxJsonOutputElements, jsonOutputs: limits.jsonOutputs }),
    });
    for (const input of submission.inputs) {
      parts.push(input.data);
      payloadBytes += input.data.byteLength;
    }
    deadline = Math.max(deadline, submission.deadline);
  }
  const job: InferenceJob = {
    schemaVersion: jobSchemaVersion,
    model: target.model,
    version: target.version,
    sha256: target.sha256,
    replyTo,
    deadline,
    enqueuedAt: Date.now(),
    requests: queued,
    priority,
    settings: target.settings,
    // Every request of a job shares its lane (inference-producer.ts), so the first one's says it for all.
    ...(requests[0]?.submission.background === true ? { background: true } : {}),
  };
  return { job, parts, payloadBytes };
}

/** The job asking any worker to load a version and answer with its signature. */
export function encodeLoadJob(target: ModelTarget, correlationId: string, replyTo: string): LoadJob {
  return { schemaVersion: jobSchemaVersion, ...target, replyTo, correlationId };
}
