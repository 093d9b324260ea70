import { z } from 'zod';
import { datatypes } from '../protocol/datatypes.js';
import { ErrorCode } from '../errors.js';

/**
 * The data of every BullMQ job, parsed with zod by both the producer (API) and the consumer (worker). The
 * schemaVersion lets a rolling upgrade refuse jobs it does not understand instead of misreading them.
 */
export const jobSchemaVersion = 1;

const tensorLayoutSchema = z.object({
  name: z.string(),
  datatype: z.enum(datatypes),
  shape: z.array(z.number().int().nonnegative()),
  byteLength: z.number().int().nonnegative(),
});
export type TensorLayout = z.infer<typeof tensorLayoutSchema>;

/**
 * How a worker should run a model: the per-model configuration that matters to execution, sent with every job
 * so that workers never need their own view of the configuration (a change applies from the next job on).
 */
export const executionSettingsSchema = z.object({
  maxBatchSize: z.number().int().min(0),
  preferredBatchSizes: z.array(z.number().int().positive()),
  maxQueueDelayMicroseconds: z.number().int().min(0),
  instances: z.number().int().positive(),
  intraOpThreads: z.number().int().min(0),
  interOpThreads: z.number().int().min(0),
  graphOptimizationLevel: z.enum(['disabled', 'basic', 'extended', 'all']),
  optimizedModelCache: z.boolean(),
});
export type ExecutionSettings = z.infer<typeof executionSettingsSchema>;

export const defaultExecutionSettings: ExecutionSettings = {
  maxBatchSize: 64,
  preferredBatchSizes: [],
  maxQueueDelayMicroseconds: 0,
  instances: 1,
  intraOpThreads: 0,
  interOpThreads: 0,
  graphOptimizationLevel: 'all',
  optimizedModelCache: true,
};

const queuedRequestSchema = z.object({
  /** Matches the reply to the waiting HTTP request; unique per API process. */
  correlationId: z.string(),
  inputs: z.array(tensorLayoutSchema),
  outputs: z.array(z.string()),
});
export type QueuedRequest = z.infer<typeof queuedRequestSchema>;

export const inferenceJobSchema = z
  .object({
    schemaVersion: z.literal(jobSchemaVersion),
    model: z.string(),
    version: z.string(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    replyTo: z.string(),
    /** Absolute deadline (ms since the epoch): past it nobody waits for the answer, so the work is dropped. */
    deadline: z.number(),
    enqueuedAt: z.number(),
    requests: z.array(queuedRequestSchema).min(1),
    /** The schedule priority of every request in the job (1 is the highest); the worker's batcher honours it. */
    priority: z.number().int().min(0).default(0),
    settings: executionSettingsSchema.default(defaultExecutionSettings),
    /** The input bytes of all requests, concatenated in order, base64: used for small jobs. */
    payload: z.string().optional(),
    /** A Redis key holding the same bytes raw: used for large jobs, so they never pass through JSON. */
    payloadKey: z.string().optional(),
  })
  .refine((job) => (job.payload === undefined) !== (job.payloadKey === undefined), {
    message: 'exactly one of payload and payloadKey must be set',
  });
export type InferenceJob = z.infer<typeof inferenceJobSchema>;

export const loadJobSchema = z.object({
  schemaVersion: z.literal(jobSchemaVersion),
  model: z.string(),
  version: z.string(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  replyTo: z.string(),
  correlationId: z.string(),
  settings: executionSettingsSchema.default(defaultExecutionSettings),
});
export type LoadJob = z.infer<typeof loadJobSchema>;

export const wireErrorSchema = z.object({ code: z.enum(ErrorCode), message: z.string() });
