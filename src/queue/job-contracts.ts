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
});
export type LoadJob = z.infer<typeof loadJobSchema>;

export const wireErrorSchema = z.object({ code: z.enum(ErrorCode), message: z.string() });
