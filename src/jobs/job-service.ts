import { randomBytes } from 'node:crypto';
import { hasScope, isAdmin, type Principal } from '../auth/principal.js';
import type { Config } from '../config.js';
import { ErrorCode, GantryError, errors } from '../errors.js';
import type { InferenceCall } from '../inference/inference-call.js';
import type { InferenceService } from '../inference/inference-service.js';
import type { DurableProducer } from './durable-producer.js';
import type { FinishedSubjectsQueue } from './durable-writer.js';
import { finalJobStates, type JobCallback, type JobRecord } from './job-record.js';
import type { JobStore } from './job-store.js';
import { decodeStoredAnswer, type StoredAnswer } from './stored-answer.js';

export interface JobServiceDependencies {
  inference: Pick<InferenceService, 'prepare'>;
  durable: Pick<DurableProducer, 'enqueue' | 'remove'>;
  store: JobStore;
  config: Pick<
    Config,
    'GANTRY_JOB_RETENTION_S' | 'GANTRY_JOB_MAX_RETENTION_S' | 'GANTRY_JOB_DEADLINE_S' | 'GANTRY_JOB_PRIORITY' | 'GANTRY_MAX_JOBS_PER_TENANT'
  >;
  /** Where a cancelled job's webhook is queued; without one (tests), none is. */
  webhooks?: FinishedSubjectsQueue;
  /** Told when a limit refuses a creation (its label: `jobs_per_tenant`). */
  onLimitRejection?: (limit: string) => void;
  /** Told of each creation: a new job, or one an Idempotency-Key answered again. */
  onCreated?: (outcome: 'created' | 'replayed') => void;
}

/** What a creation asks for beside the inference call. */
export interface JobCreation {
  /** sha256 of the request as sent (JSON and binary part): an Idempotency-Key's body must match it. */
  bodySha256: string;
  idempotencyKey?: string;
  callback?: JobCallback;
  /** How long the result is kept once finished, seconds (at most GANTRY_JOB_MAX_RETENTION_S). */
  retentionSeconds?: number;
}

/** The outcome of a creation: a new job (201/202), or the one an Idempotency-Key already made (200). */
export interface CreatedJob {
  record: JobRecord;
  created: boolean;
}

/** Queue job ids of asynchronous jobs (BullMQ refuses ':' in custom ids). */
export function queueJobIdOf(jobId: string): string {
  return `job-${jobId}`;
}

/**
 * Asynchronous jobs, transport-neutral: the REST routes (and `Prefer: respond-async` on infer) are thin over it.
 * A job is an inference call checked exactly like a synchronous one (InferenceService.prepare), pinned to the
 * version that would have served it, queued durably at the asynchronous priority with its own long deadline,
 * and answered by a worker into the job store. Nothing about a job lives in this process's memory.
 */
export class JobService {
  constructor(private readonly dependencies: JobServiceDependencies) {}

  async create(call: InferenceCall, creation: JobCreation): Promise<CreatedJob> {
    const { config, store, inference, durable } = this.dependencies;
    const principal = call.principal;
    const retentionMs = this.retentionMs(creation.retentionSeconds);
    const id = randomBytes(12).toString('base64url');
    if (creation.idempotencyKey !== undefined) {
      const claim = await store.claimIdempotencyKey(
        principal,
        creation.idempotencyKey,
        id,
        creation.bodySha256,
        retentionMs + config.GANTRY_JOB_DEADLINE_S * 1000,
      );
      if (claim.kind === 'different')
        throw new GantryError(
          ErrorCode.AlreadyExists,
          `Idempotency-Key was already used for job '${claim.id}' with a different request body; use a new key for a different request.`,
        );
      if (claim.kind === 'same') {
        const existing = await store.get(claim.id);
        if (existing === undefined)
          throw new GantryError(ErrorCode.Unavailable, 'A job with this Idempotency-Key is being created; retry shortly.', { retryAfterSeconds: 1 });
        this.dependencies.onCreated?.('replayed');
        return { record: existing, created: false };
      }
    }
    const cap = config.GANTRY_MAX_JOBS_PER_TENANT;
    const atCap = async (prune: boolean) => (await store.unfinished(principal.tenant, { prune })).count >= cap;
    if ((await atCap(false)) && (await atCap(true))) {
      this.dependencies.onLimitRejection?.('jobs_per_tenant');
      throw new GantryError(
        ErrorCode.ResourceExhausted,
        `Tenant '${principal.tenant}' has ${cap} unfinished asynchronous jobs, the most GANTRY_MAX_JOBS_PER_TENANT allows; wait for some to finish or cancel some.`,
        { retryAfterSeconds: 5 },
      );
    }
    const prepared = await inference.prepare(call, { timeoutMs: config.GANTRY_JOB_DEADLINE_S * 1000, priority: config.GANTRY_JOB_PRIORITY });
    const record: JobRecord = {
      id,
      tenant: principal.tenant,
      keyId: principal.keyId,
      model: prepared.target.model,
      version: prepared.target.version,
      state: 'queued',
      createdAt: Date.now(),
      attempts: 0,
      rendering: prepared.rendering,
      ...(creation.callback === undefined ? {} : { callback: creation.callback }),
      retentionMs,
      deadline: prepared.submission.deadline,
    };
    await store.create(record);
    // The record first: a worker that takes the job at once finds it. A job whose queueing failed is failed.
    try {
      await durable.enqueue(
        prepared.target,
        prepared.submission.priority,
        [{ correlationId: id, submission: prepared.submission }],
        { kind: 'job', owner: { tenant: principal.tenant, keyId: principal.keyId } },
        queueJobIdOf(id),
      );
    } catch (error) {
      await store.cancel(id).catch(() => undefined);
      await store.markFinished(id, record.tenant).catch(() => undefined);
      throw error instanceof GantryError ? error : errors.queueUnavailable('Redis did not accept the job');
    }
    this.dependencies.onCreated?.('created');
    return { record, created: true };
  }

  /** The job, when the caller may see it: its own key's, its tenant's for a keys:write key, any for the admin. */
  async find(principal: Principal, id: string): Promise<JobRecord> {
    const record = /^[A-Za-z0-9_-]{1,64}$/.test(id) ? await this.dependencies.store.get(id) : undefined;
    if (record === undefined || !mayAccess(principal, record)) throw jobNotFound(id);
    return record;
  }

  /**
   * The job's answer once it finished: its outputs, or the error it ended with (answered as the synchronous call
   * would have been). @throws 409 while it is queued or running, or when it was cancelled (no answer).
   */
  async result(principal: Principal, id: string): Promise<{ record: JobRecord; answer: StoredAnswer }> {
    const record = await this.find(principal, id);
    if (!finalJobStates.has(record.state))
      throw errors.failedPrecondition(`Job '${id}' is ${record.state}; its result is available once it has finished (GET /v1/jobs/${id} shows its state).`);
    if (record.state === 'cancelled') throw errors.failedPrecondition(`Job '${id}' was cancelled before it was answered; it has no result.`);
    const stored = await this.dependencies.store.result(id);
    if (stored === undefined) throw errors.failedPrecondition(`The result of job '${id}' is no longer kept (its retention has passed).`);
    return { record, answer: decodeStoredAnswer(stored) };
  }

  /** Cancels a job that has not finished: queued, it never runs; running, its answer is discarded. */
  async cancel(principal: Principal, id: string): Promise<JobRecord> {
    const { store, durable, webhooks } = this.dependencies;
    const record = await this.find(principal, id);
    if (finalJobStates.has(record.state)) throw errors.failedPrecondition(`Job '${id}' has already finished (${record.state}); there is nothing to cancel.`);
    const was = await store.cancel(id);
    if (was === undefined) throw jobNotFound(id);
    await store.markFinished(id, record.tenant);
    if (was === 'queued') await durable.remove(record.model, queueJobIdOf(id));
    const cancelled = (await store.get(id)) ?? record;
    if (cancelled.state === 'cancelled' && record.callback !== undefined) await webhooks?.add([{ kind: 'job', id }]);
    return cancelled;
  }

  /** A page of the jobs the caller may see, newest first, optionally of one state or (qualified) model. */
  async list(principal: Principal, options: { limit: number; cursor?: string; state?: string; model?: string }) {
    const cursor = decodeCursor(options.cursor);
    const jobs: JobRecord[] = [];
    let next = cursor;
    // Filters are applied to pages of the tenant's listing; a few pages at most are read per call.
    for (let page = 0; page < 10 && jobs.length < options.limit; page += 1) {
      const found = await this.dependencies.store.list(principal.tenant, options.limit, next);
      for (const record of found) {
        next = { createdAt: record.createdAt, id: record.id };
        if (!mayAccess(principal, record)) continue;
        if (options.state !== undefined && record.state !== options.state) continue;
        if (options.model !== undefined && record.model !== options.model) continue;
        if (jobs.length < options.limit) jobs.push(record);
      }
      if (found.length < options.limit) {
        next = undefined;
        break;
      }
    }
    return { jobs, nextCursor: next === undefined ? undefined : encodeCursor(next) };
  }

  private retentionMs(requestedSeconds: number | undefined): number {
    const { GANTRY_JOB_RETENTION_S, GANTRY_JOB_MAX_RETENTION_S } = this.dependencies.config;
    if (requestedSeconds === undefined) return GANTRY_JOB_RETENTION_S * 1000;
    if (!Number.isSafeInteger(requestedSeconds) || requestedSeconds < 1 || requestedSeconds > GANTRY_JOB_MAX_RETENTION_S)
      throw errors.invalidArgument(`retention must be a whole number of seconds from 1 to ${GANTRY_JOB_MAX_RETENTION_S} (GANTRY_JOB_MAX_RETENTION_S).`);
    return requestedSeconds * 1000;
  }
}

function mayAccess(principal: Principal, record: JobRecord): boolean {
  if (isAdmin(principal)) return true;
  if (record.tenant !== principal.tenant) return false;
  return record.keyId === principal.keyId || hasScope(principal, 'keys:write');
}

function jobNotFound(id: string): GantryError {
  return new GantryError(ErrorCode.NotFound, `Unknown job '${id.slice(0, 64)}' (or its retention has passed).`);
}

function encodeCursor(cursor: { createdAt: number; id: string }): string {
  return Buffer.from(`${cursor.createdAt}.${cursor.id}`).toString('base64url');
}

function decodeCursor(text: string | undefined): { createdAt: number; id: string } | undefined {
  if (text === undefined || text === '') return undefined;
  const match = /^(\d{1,16})\.([A-Za-z0-9_-]{1,64})$/.exec(Buffer.from(text, 'base64url').toString('utf8'));
  if (match === null) throw errors.invalidArgument('cursor is not one this API gave out; pass the nextCursor of the previous page.');
  return { createdAt: Number(match[1]), id: match[2]! };
}
