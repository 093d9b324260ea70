import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { errors } from '../errors.js';
import type { InferenceCall } from '../inference/inference-call.js';
import { callbackSchema, jobStates, jobView, type JobCallback } from '../jobs/job-record.js';
import { resolveWebhookTarget } from '../webhooks/webhook-target.js';
import type { ApiServices } from './services.js';

/** What a job's creation answers (202 new, 200 the job an Idempotency-Key already made): the job as GET shows it. */
export const jobSchema = z
  .object({
    id: z.string(),
    model: z.string(),
    version: z.string(),
    state: z.enum(jobStates),
    createdAt: z.string(),
    startedAt: z.string().optional(),
    finishedAt: z.string().optional(),
    attempts: z.number(),
    error: z.object({ error: z.string(), code: z.string() }).optional(),
    cancelledWhile: z.enum(['queued', 'running']).optional(),
    expiresAt: z.string(),
    callback: z.object({ url: z.string(), signed: z.boolean() }).optional(),
    deliveries: z.array(z.object({ at: z.string(), status: z.number().optional(), error: z.string().optional() })).optional(),
  })
  .describe('An asynchronous job: GET /v1/jobs/{id} for its state, GET /v1/jobs/{id}/result for its answer.');
export const jobCreatedSchema = jobSchema;

/** RFC 7240: the caller prefers an asynchronous answer (a job) to waiting. */
export function wantsAsync(request: FastifyRequest): boolean {
  const prefer = request.headers.prefer;
  const values = Array.isArray(prefer) ? prefer : prefer === undefined ? [] : [prefer];
  return values.some((value) =>
    value.split(',').some(
      (part) =>
        part
          .trim()
          .toLowerCase()
          .split(/[;=\s]/)[0] === 'respond-async',
    ),
  );
}

function headerText(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** sha256 of the request as sent: its JSON (or JSON header), the binary part, and inputs a parse thread decoded. */
function bodySha256(request: FastifyRequest): string {
  const hash = createHash('sha256').update(JSON.stringify(request.body ?? null));
  const state = request.inferBody;
  if (state?.binary !== undefined) hash.update(state.binary);
  for (const decoded of state?.decoded ?? []) if (decoded?.bytes !== undefined) hash.update(decoded.bytes);
  return hash.digest('hex');
}

/** A job's own options beside its inference request: the body's (jobs route) or the headers' (Prefer on infer). */
export interface JobOptions {
  callback?: JobCallback | undefined;
  retention?: number | undefined;
}

/**
 * Creates an asynchronous job from an inference request as the REST routes read it, and answers 202 with its
 * `Location` (or 200 with the job an Idempotency-Key already made). The callback may also come in headers
 * (`gantry-callback-url`, `gantry-callback-secret`), for `Prefer: respond-async` on the infer route. A callback
 * is checked against the SSRF guard at once, so a refused address is a 400 now rather than a failed delivery later.
 */
export async function createJobFromRequest(request: FastifyRequest, reply: FastifyReply, services: ApiServices, call: InferenceCall, options: JobOptions) {
  const headerUrl = headerText(request, 'gantry-callback-url');
  let callback = options.callback;
  if (callback === undefined && headerUrl !== undefined) {
    const parsed = callbackSchema.safeParse({ url: headerUrl, secret: headerText(request, 'gantry-callback-secret') });
    if (!parsed.success) throw errors.invalidArgument('gantry-callback-url must be a URL and gantry-callback-secret 16 to 256 characters.');
    callback = parsed.data;
  }
  if (callback !== undefined) await resolveWebhookTarget(callback.url, services.webhookAllowList);
  const idempotencyKey = headerText(request, 'idempotency-key');
  if (idempotencyKey !== undefined && (idempotencyKey.length === 0 || idempotencyKey.length > 255))
    throw errors.invalidArgument('Idempotency-Key must be 1 to 255 characters.');
  // Nobody waits on this connection for the job: the client going away must not cancel it.
  const { signal, ...detached } = call;
  void signal;
  const { record, created } = await services.jobs.create(detached, {
    bodySha256: bodySha256(request),
    ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
    ...(callback === undefined ? {} : { callback }),
    ...(options.retention === undefined ? {} : { retentionSeconds: options.retention }),
  });
  return reply
    .code(created ? 202 : 200)
    .header('location', `/v1/jobs/${record.id}`)
    .send(jobView(record, undefined));
}
