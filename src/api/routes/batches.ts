import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { displayModelName } from '../../auth/model-names.js';
import { isAdmin, tenantIdPattern, type Principal } from '../../auth/principal.js';
import { ErrorCode, GantryError, errors } from '../../errors.js';
import { forModel, requestedModel } from '../../inference/requested-model.js';
import { renderResult } from '../../inference/result-rendering.js';
import { restInferenceCall } from '../../inference/rest-call.js';
import { enqueueBatchChunks, needsEnqueueResume } from '../../jobs/batch-enqueue.js';
import { batchBodyLimitOf } from '../../jobs/batch-line-reader.js';
import { batchStates, batchView, isFinished, type BatchRecord } from '../../jobs/batch-record.js';
import { batchResultLines } from '../../jobs/batch-results-stream.js';
import { BatchStore, receivingTimeMs } from '../../jobs/batch-store.js';
import { receiveBatch } from '../../jobs/batch-submission.js';
import type { Logger } from '../../logger.js';
import { errorBodySchema } from '../../protocol/oip-schemas.js';
import { resolveWebhookTarget } from '../../webhooks/webhook-target.js';
import { modelParamsSchema } from '../route-params.js';
import type { ApiServices } from '../services.js';

/** The media types of a batch body: one JSON inference request per line. */
const batchMediaTypes = ['application/x-ndjson', 'application/jsonl', 'application/json-lines'];

const batchIdPattern = /^[A-Za-z0-9_-]{1,64}$/;

const batchViewSchema = z.object({
  id: z.string(),
  model: z.string(),
  version: z.string().describe('The version every line runs on (resolved once, when the batch was submitted).'),
  state: z.enum(batchStates),
  createdAt: z.string(),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional().describe('When the last line got its result.'),
  cancelledAt: z.string().optional(),
  total: z.number().describe('Lines in the batch (blank lines are not lines).'),
  succeeded: z.number(),
  failed: z.number().describe('Lines that ended with an error: refused when read (invalid), by the model, or expired.'),
  running: z.number().describe('Lines of started chunks without a result yet.'),
  queued: z.number().describe('Lines waiting for a worker.'),
  cancelled: z.number().describe('Lines the cancel took before they ran.'),
  expired: z.number().describe('Lines that passed GANTRY_JOB_DEADLINE_S before they ran (in failed too).'),
  invalid: z.number().describe('Lines refused when the body was read (in failed too).'),
  attempts: z.number().describe('Chunk starts, re-runs after a crash included.'),
  retention: z.number().describe('Seconds the results are kept once the batch finished.'),
  expiresAt: z.string().optional(),
  callback: z.object({ url: z.string() }).optional(),
  deliveries: z.array(z.object({ at: z.string(), status: z.number().optional(), error: z.string().optional() })).optional(),
});
const batchIdParamsSchema = z.object({ batchId: z.string() });
const createQuerySchema = z.object({
  retention: z.coerce
    .number()
    .int()
    .positive()
    .optional()
    .describe('Seconds the results are kept once the batch finished (default GANTRY_JOB_RETENTION_S, at most GANTRY_JOB_MAX_RETENTION_S).'),
});
const listQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().optional().describe("The previous page's nextCursor."),
  tenant: z.string().optional().describe("An admin's choice of tenant; a tenant's key always lists its own."),
  state: z.enum(batchStates).optional().describe('Only batches in this state.'),
  model: z.string().optional().describe('Only batches of this model (as the caller names it).'),
});
const errorResponses = { '4xx': errorBodySchema, '5xx': errorBodySchema };

function headerValue(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The callback of a batch from its headers, checked for form (where it may go: the SSRF guard, resolveWebhookTarget). */
function callbackOf(request: FastifyRequest): { callbackUrl?: string; callbackSecret?: string } {
  const url = headerValue(request, 'gantry-callback-url');
  const secret = headerValue(request, 'gantry-callback-secret');
  if (url === undefined) {
    if (secret !== undefined) throw errors.invalidArgument('gantry-callback-secret needs gantry-callback-url.');
    return {};
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw errors.invalidArgument(`gantry-callback-url '${url.slice(0, 80)}' is not an absolute URL.`);
  }
  if ((parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || url.length > 2048) {
    throw errors.invalidArgument('gantry-callback-url must be an http or https URL of at most 2048 characters.');
  }
  if (secret !== undefined && (secret.length === 0 || secret.length > 256)) throw errors.invalidArgument('gantry-callback-secret must be 1 to 256 characters.');
  return { callbackUrl: url, ...(secret === undefined ? {} : { callbackSecret: secret }) };
}

function batchNotFound(id: string): GantryError {
  return new GantryError(ErrorCode.NotFound, `Unknown batch '${id.slice(0, 64)}'.`);
}

/**
 * Batch files (issue 16, docs/jobs.md): POST /v1/models/{m}/batches takes a JSONL body of OIP inference requests,
 * GET /v1/batches[/{id}[/results]] shows them and streams their results, DELETE /v1/batches/{id} cancels. Thin: the
 * body is read by jobs/batch-submission.ts, the record kept by jobs/batch-store.ts, chunks queued by
 * jobs/batch-enqueue.ts and results rendered by jobs/batch-results-stream.ts. A batch is its tenant's (an admin
 * sees every tenant's); another tenant's batch is 404.
 */
export async function batchRoutes(app: FastifyInstance, services: ApiServices): Promise<void> {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  const { config, redis } = services;
  const prefix = config.GANTRY_QUEUE_PREFIX;
  const store = new BatchStore(redis, prefix);
  const logger = app.log as unknown as Logger;
  // Identifies this process as the holder of an enqueue lease.
  const holder = randomBytes(8).toString('hex');
  // The API's one webhook queue (closed with the API role).
  const queueWebhook = (id: string) => services.webhooks.add([{ kind: 'batch', id }]);

  // The body reaches the handler as the raw stream: it is read line by line, never held whole. Only JSONL is
  // taken (this context only): any other type is refused with 415 before its body is read, rather than parsed
  // whole by a default parser under this route's large body limit.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(batchMediaTypes, (_request, payload, done) => done(null, payload));

  /** The batch, when the caller may see it; 404 otherwise (also for another tenant's). */
  const readOwn = async (principal: Principal, id: string): Promise<BatchRecord> => {
    if (!batchIdPattern.test(id)) throw batchNotFound(id);
    const record = await store.read(id);
    if (record === undefined || (record.tenant !== principal.tenant && !isAdmin(principal))) throw batchNotFound(id);
    if (needsEnqueueResume(record)) {
      // Its creator died while queueing the chunks: whoever reads it first queues the rest.
      void enqueueBatchChunks(store, services.durable, record, holder, logger).catch((error: unknown) =>
        logger.warn({ batchId: id, err: (error as Error).message }, 'could not resume queueing a batch'),
      );
    }
    return record;
  };
  /** The record as `principal` sees it: the model under the name it uses (bare in its tenant, qualified for an admin elsewhere). */
  const shownTo = (principal: Principal, record: BatchRecord): BatchRecord => ({ ...record, modelShown: displayModelName(principal, record.model) });
  const viewOf = async (principal: Principal, record: BatchRecord) =>
    batchView(shownTo(principal, record), record.callbackUrl === undefined ? [] : await store.deliveries(record.id));

  typed.post(
    '/v1/models/:model/batches',
    {
      bodyLimit: config.GANTRY_MAX_BATCH_BYTES,
      schema: {
        tags: ['batches'],
        summary: 'Submit a batch file: one OIP JSON inference request per line (application/x-ndjson); 202 with its id',
        description:
          'Each line may carry an `id` (default: its line number, from 0; blank lines are skipped). A line that is not a valid request fails alone. ' +
          'Headers gantry-callback-url and gantry-callback-secret ask for a signed webhook when the batch finishes.',
        params: modelParamsSchema,
        querystring: createQuerySchema,
        response: { 202: batchViewSchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const principal = request.principal;
      const model = requestedModel(principal, request.params.model);
      const retentionS = request.query.retention ?? Math.min(config.GANTRY_JOB_RETENTION_S, config.GANTRY_JOB_MAX_RETENTION_S);
      if (retentionS > config.GANTRY_JOB_MAX_RETENTION_S) {
        throw errors.invalidArgument(`retention ${retentionS} s is longer than GANTRY_JOB_MAX_RETENTION_S (${config.GANTRY_JOB_MAX_RETENTION_S} s).`);
      }
      const callback = callbackOf(request);
      // The SSRF guard checks the callback now (400) as well as at each delivery (the dispatcher).
      if (callback.callbackUrl !== undefined) await resolveWebhookTarget(callback.callbackUrl, services.webhookAllowList);
      const coding = headerValue(request, 'content-encoding');
      if (coding !== undefined && coding.toLowerCase() !== 'identity') {
        throw errors.invalidArgument(`A batch body is sent uncompressed: Content-Encoding '${coding.slice(0, 20)}' is not supported here.`);
      }
      // The version is resolved once, before the body is read (404 for an unknown model, 503 when nothing is
      // READY), and pinned: every line runs on it, however the model's aliases or traffic change meanwhile.
      const serving = await forModel(model, () => services.catalog.serving(model.qualified));
      const unfinished = await store.countUnfinished(principal.tenant);
      if (unfinished >= config.GANTRY_MAX_BATCHES_PER_TENANT) {
        services.metrics.limitRejections.inc({ limit: 'batches_per_tenant' });
        throw new GantryError(
          ErrorCode.ResourceExhausted,
          `Tenant '${principal.tenant}' has ${unfinished} unfinished batches, the most GANTRY_MAX_BATCHES_PER_TENANT (${config.GANTRY_MAX_BATCHES_PER_TENANT}) allows; wait for one to finish or cancel one.`,
          { retryAfterSeconds: 10 },
        );
      }

      const id = randomBytes(12).toString('hex');
      const createdAt = Date.now();
      const retentionMs = retentionS * 1000;
      const deadlineMs = config.GANTRY_JOB_DEADLINE_S * 1000;
      await store.create({
        id,
        tenant: principal.tenant,
        keyId: principal.keyId,
        model: model.qualified,
        modelShown: model.shown,
        version: serving.version,
        createdAt,
        retentionMs,
        deadline: createdAt + deadlineMs,
        priority: config.GANTRY_JOB_PRIORITY,
        ...callback,
      });
      const progress = { chunks: 0 };
      let received;
      try {
        received = await receiveBatch(
          {
            // Every line is checked as /infer checks it, with the batch's own long deadline and low priority.
            prepareLine: (line) => services.inference.prepare(restInferenceCall(line), { timeoutMs: deadlineMs, priority: config.GANTRY_JOB_PRIORITY }),
            store,
            limits: { maxLineBytes: config.GANTRY_MAX_BATCH_LINE_BYTES, maxLines: config.GANTRY_MAX_BATCH_LINES, maxBytes: config.GANTRY_MAX_BATCH_BYTES },
            chunkLines: config.GANTRY_BATCH_CHUNK_LINES,
            maxBytesElements: config.GANTRY_MAX_BYTES_ELEMENTS,
          },
          {
            id,
            createdAt,
            principal,
            model: request.params.model,
            version: serving.version,
            body: request.body as Readable,
            progress,
          },
        );
      } catch (error) {
        // Refused or cut off: nothing of it was opened, so nothing runs; what was written goes now (or expires).
        await store.discard(id, principal.tenant, progress.chunks).catch(() => undefined);
        const limit = batchBodyLimitOf(error);
        if (limit !== undefined) services.metrics.limitRejections.inc({ limit });
        throw error;
      }
      // Kept until every line's deadline passed plus the retention; once finished, for the retention only.
      const ttlMs = Date.now() - createdAt + deadlineMs + retentionMs + 60_000;
      const opened = await store.open(id, received, ttlMs);
      // Metered when answered (plugins/usage-metering.ts): each queued line is an inference request.
      Object.assign((request.usage ??= {}), { model: model.qualified, version: received.version, requests: received.queuedLines });
      if (opened === 'gone') {
        throw new GantryError(
          ErrorCode.DeadlineExceeded,
          `The batch body took longer than ${receivingTimeMs / 60_000} minutes to upload; send it faster or in several batches.`,
        );
      }
      if (opened === 'finished') {
        if (callback.callbackUrl !== undefined) await queueWebhook(id);
      } else {
        const record = await store.read(id);
        if (record !== undefined) await enqueueBatchChunks(store, services.durable, record, holder, logger);
      }
      services.metrics.asyncCreated.inc({ kind: 'batch', outcome: 'created' });
      const record = await store.read(id);
      if (record === undefined) throw errors.internal('The batch disappeared right after it was created.');
      return reply
        .code(202)
        .header('location', `/v1/batches/${id}`)
        .send(await viewOf(principal, record));
    },
  );

  typed.get(
    '/v1/batches',
    {
      schema: {
        tags: ['batches'],
        summary: "The caller's batches, newest first (cursor pagination; ?state, ?model)",
        querystring: listQuerySchema,
        response: { 200: z.object({ batches: z.array(batchViewSchema), nextCursor: z.string().optional() }), ...errorResponses },
      },
    },
    async (request) => {
      const principal = request.principal;
      const { limit, cursor, tenant: askedTenant, state, model } = request.query;
      let tenant = principal.tenant;
      if (askedTenant !== undefined && askedTenant !== principal.tenant) {
        if (!isAdmin(principal) || !tenantIdPattern.test(askedTenant)) throw errors.tenantNotFound(askedTenant);
        tenant = askedTenant;
      }
      let after: { createdAt: number; id: string } | undefined;
      if (cursor !== undefined) {
        const [createdAt, id] = cursor.split('.');
        if (createdAt === undefined || id === undefined || !/^\d+$/.test(createdAt) || !batchIdPattern.test(id)) {
          throw errors.invalidArgument(`cursor '${cursor.slice(0, 80)}' is not a cursor this list gave.`);
        }
        after = { createdAt: Number(createdAt), id };
      }
      const qualified = model === undefined ? undefined : requestedModel(principal, model).qualified;
      const page = await store.list(
        tenant,
        limit,
        after,
        (record) => (state === undefined || record.state === state) && (qualified === undefined || record.model === qualified),
      );
      return {
        batches: page.batches.map((record) => batchView(shownTo(principal, record))),
        ...(page.nextCursor === undefined ? {} : { nextCursor: page.nextCursor }),
      };
    },
  );

  typed.get(
    '/v1/batches/:batchId',
    {
      schema: {
        tags: ['batches'],
        summary: "A batch's state and progress {total, succeeded, failed, running}",
        params: batchIdParamsSchema,
        response: { 200: batchViewSchema, ...errorResponses },
      },
    },
    async (request) => viewOf(request.principal, await readOwn(request.principal, request.params.batchId)),
  );

  typed.get(
    '/v1/batches/:batchId/results',
    {
      schema: {
        tags: ['batches'],
        summary: "A batch's results as JSONL in input order; while it runs, the finished prefix",
        description:
          'One line per input line: {"id", "response"} (the OIP response /infer would answer) or {"id", "error": {"error", "code"}}. ' +
          'Headers: gantry-batch-state, gantry-batch-lines (lines in this answer), gantry-batch-total.',
        params: batchIdParamsSchema,
        response: { 200: z.string().describe('application/x-ndjson'), ...errorResponses },
      },
    },
    async (request, reply) => {
      const record = await readOwn(request.principal, request.params.batchId);
      if (record.state === 'receiving') throw errors.failedPrecondition(`Batch '${record.id}' is still being uploaded; it has no results yet.`);
      const lines = await store.finishedPrefix(record);
      return reply
        .type('application/x-ndjson')
        .header('gantry-batch-state', record.state)
        .header('gantry-batch-lines', String(lines))
        .header('gantry-batch-total', String(record.total ?? 0))
        .send(Readable.from(batchResultLines(store, record, lines, renderResult), { objectMode: false }) as never);
    },
  );

  typed.delete(
    '/v1/batches/:batchId',
    {
      schema: {
        tags: ['batches'],
        summary: 'Cancel a batch: lines not started never run (their result is CANCELLED); chunks running finish',
        params: batchIdParamsSchema,
        response: { 200: batchViewSchema, ...errorResponses },
      },
    },
    async (request) => {
      const record = await readOwn(request.principal, request.params.batchId);
      if (record.state === 'receiving') throw errors.failedPrecondition(`Batch '${record.id}' is still being uploaded; cancel the upload instead.`);
      // As for a job: a batch every line of which has its result has nothing left to cancel.
      if (isFinished(record)) throw errors.failedPrecondition(`Batch '${record.id}' has already finished (${record.state}); there is nothing to cancel.`);
      const { before, finished } = await store.cancel(record.id);
      if (before === '') throw batchNotFound(record.id);
      if (finished && record.callbackUrl !== undefined) await queueWebhook(record.id);
      return viewOf(request.principal, (await store.read(record.id)) ?? record);
    },
  );
}
