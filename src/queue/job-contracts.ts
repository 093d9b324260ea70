import { z } from 'zod';
import { isValidQualifiedModelName } from '../auth/model-names.js';
import { datatypes } from '../protocol/datatypes.js';
import { ErrorCode } from '../errors.js';

/**
 * The data of every BullMQ job, parsed with zod by both the producer (API) and the consumer (worker). The
 * schemaVersion lets a rolling upgrade refuse jobs it does not understand instead of misreading them.
 */
export const jobSchemaVersion = 1;

/**
 * A model's qualified name (`<tenant>~<name>`, bare in the default tenant). The worker builds Redis keys and
 * hash tags from it, so a job naming anything else is unreadable rather than trusted.
 */
const qualifiedModelNameSchema = z.string().refine(isValidQualifiedModelName, { message: 'not a valid qualified model name' });

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
  /** Whether onnxruntime's idle pool threads spin-wait for the next run (jobs from before this field: no). */
  allowSpinning: z.boolean().default(false),
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
  // onnxruntime's own default spins its pool threads between runs: on a shared host that burns a core per idle
  // session (measured: 7x the CPU of the runs themselves on the tiny MLP) for a few microseconds of latency.
  allowSpinning: false,
};

const queuedRequestSchema = z.object({
  /** Matches the reply to the waiting HTTP request; unique per API process. */
  correlationId: z.string(),
  inputs: z.array(tensorLayoutSchema),
  outputs: z.array(z.string()),
  // Output limits (README "Limits"), checked by the worker before anything is published. Optional, so jobs of
  // an older API parse; a worker applies its hard ceiling (maxReplyBytesPerRequest) either way.
  /** Most output tensor bytes this request may get back (GANTRY_MAX_RESPONSE_BYTES of the API that queued it). */
  maxOutputBytes: z.number().int().positive().optional(),
  /** The outputs the API answers as JSON numbers (not binary, not classified): their elements are limited. */
  jsonOutputs: z.array(z.string()).optional(),
  /** Most elements of `jsonOutputs` together (GANTRY_MAX_JSON_OUTPUT_ELEMENTS). */
  maxJsonOutputElements: z.number().int().positive().optional(),
});
export type QueuedRequest = z.infer<typeof queuedRequestSchema>;

/**
 * The most output bytes one request's reply may carry, whatever a job asks for: a Redis value (a reply body key,
 * a pub/sub message) holds at most 512 MB (proto-max-bulk-len), and a bigger one resets the connection.
 */
export const maxReplyBytesPerRequest = 480 * 1024 ** 2;

/**
 * The most input bytes the producer packs into one job (unless a single request is larger): the payload is one
 * Redis value, read by the worker in one GET, so it stays far from the 512 MB a Redis string may hold.
 */
export const maxPayloadBytesPerJob = 64 * 1024 ** 2;

/**
 * Where a job's answers go when nobody waits on a connection for them (asynchronous jobs and batch files,
 * src/jobs/): instead of publishing to `replyTo`, the worker writes each answer once to Redis, where it lasts
 * for the retention, and the job's record or the batch's progress moves on in the same script.
 * - `job`: every request's correlationId is the id of an asynchronous job (src/jobs/job-store.ts).
 * - `batch`: the requests are lines of one batch; each correlationId is the line's number (src/jobs/batch-store.ts).
 */
/** Who asked for asynchronous work: the worker meters its compute to them (the request was metered when it was made). */
const workOwnerSchema = z.object({ tenant: z.string().max(64), keyId: z.string().max(128) });

export const durableDestinationSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('job'), owner: workOwnerSchema.optional() }),
  z.object({
    kind: z.literal('batch'),
    batchId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
    chunk: z.number().int().nonnegative(),
    owner: workOwnerSchema.optional(),
  }),
]);
export type DurableDestination = z.infer<typeof durableDestinationSchema>;

export const inferenceJobSchema = z
  .object({
    schemaVersion: z.literal(jobSchemaVersion),
    model: qualifiedModelNameSchema,
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
    /** Work nobody waits on (shadow copies): run on the version's background session (see inference-submission.ts). */
    background: z.boolean().optional(),
    /** Set for asynchronous work: the answers are written there, not published to `replyTo`. */
    durable: durableDestinationSchema.optional(),
  })
  .refine((job) => (job.payload === undefined) !== (job.payloadKey === undefined), {
    message: 'exactly one of payload and payloadKey must be set',
  });
export type InferenceJob = z.infer<typeof inferenceJobSchema>;

export const loadJobSchema = z.object({
  schemaVersion: z.literal(jobSchemaVersion),
  model: qualifiedModelNameSchema,
  version: z.string(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  replyTo: z.string(),
  correlationId: z.string(),
  settings: executionSettingsSchema.default(defaultExecutionSettings),
  /**
   * The version's load generation this load was asked for (registry/model-lifecycle.ts): its outcome is recorded
   * only while the version is still at it. Optional so that a job queued by an older API parses; the worker then
   * takes the generation it finds when it starts, which is safe because an unload, a fault or a delete during the
   * load still moves the generation on (or removes the version) and so still wins.
   */
  loadGeneration: z.number().int().nonnegative().optional(),
});
export type LoadJob = z.infer<typeof loadJobSchema>;

export const wireErrorSchema = z.object({ code: z.enum(ErrorCode), message: z.string() });
