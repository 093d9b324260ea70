import { z } from 'zod';
import type { WireError } from '../errors.js';
import type { ResultRendering } from '../inference/result-rendering.js';
import type { DeliveryAttempt } from '../webhooks/webhook-delivery.js';

/** An asynchronous job's states: queued → running → succeeded | failed; cancelled or expired instead of running. */
export const jobStates = ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'expired'] as const;
export type JobState = (typeof jobStates)[number];

/** States a job never leaves: its answer (or its absence) is final. */
export const finalJobStates: ReadonlySet<JobState> = new Set(['succeeded', 'failed', 'cancelled', 'expired']);

/** `callback` of a job or batch: where its webhook goes, and how. */
export const callbackSchema = z
  .object({
    url: z.string().min(1).max(2048),
    /** Signs the webhook (HMAC-SHA256, `gantry-signature`); kept with the job, never shown. */
    secret: z.string().min(16).max(256).optional(),
    /** Puts the job's outputs in its webhook when its JSON response is small (GANTRY_WEBHOOK_MAX_RESULT_BYTES). */
    includeResult: z.boolean().optional(),
  })
  .strict();
export type JobCallback = z.infer<typeof callbackSchema>;

/** What the job store keeps for one job (a Redis hash; JSON fields where noted). */
export interface JobRecord {
  id: string;
  tenant: string;
  keyId: string;
  /** Qualified model name, and the version the job runs on (pinned when it was created). */
  model: string;
  version: string;
  state: JobState;
  /** ms since the epoch. */
  createdAt: number;
  startedAt?: number;
  finishedAt?: number;
  /** Times a worker started it (more than one after a worker crashed while running it). */
  attempts: number;
  error?: WireError;
  /** How its answer is written back (JSON). */
  rendering: ResultRendering;
  callback?: JobCallback;
  /** How long its result is kept once it finished, ms. */
  retentionMs: number;
  /** Past this (ms since the epoch) it is not run any more: it ends `expired`. */
  deadline: number;
  /** For a cancelled job: the state it was in when the cancel came (a running one finished its run anyway). */
  cancelledWhile?: 'queued' | 'running';
}

/** A record as Redis hash fields. */
export function recordFields(record: JobRecord): Record<string, string> {
  const fields: Record<string, string> = {
    id: record.id,
    tenant: record.tenant,
    keyId: record.keyId,
    model: record.model,
    version: record.version,
    state: record.state,
    createdAt: String(record.createdAt),
    attempts: String(record.attempts),
    rendering: JSON.stringify(record.rendering),
    retentionMs: String(record.retentionMs),
    deadline: String(record.deadline),
  };
  if (record.callback !== undefined) fields.callback = JSON.stringify(record.callback);
  return fields;
}

/** Reads a record back from its hash fields; undefined when the hash is gone (expired) or not a job. */
export function recordFromFields(fields: Record<string, string>): JobRecord | undefined {
  if (fields.id === undefined || fields.state === undefined || !(jobStates as readonly string[]).includes(fields.state)) return undefined;
  const number = (value: string | undefined) => (value === undefined || value === '' ? undefined : Number(value));
  return {
    id: fields.id,
    tenant: fields.tenant ?? '',
    keyId: fields.keyId ?? '',
    model: fields.model ?? '',
    version: fields.version ?? '',
    state: fields.state as JobState,
    createdAt: number(fields.createdAt) ?? 0,
    ...(number(fields.startedAt) === undefined ? {} : { startedAt: number(fields.startedAt)! }),
    ...(number(fields.finishedAt) === undefined ? {} : { finishedAt: number(fields.finishedAt)! }),
    attempts: number(fields.attempts) ?? 0,
    ...(fields.error === undefined || fields.error === '' ? {} : { error: JSON.parse(fields.error) as WireError }),
    rendering: JSON.parse(fields.rendering ?? '{}') as ResultRendering,
    ...(fields.callback === undefined ? {} : { callback: JSON.parse(fields.callback) as JobCallback }),
    retentionMs: number(fields.retentionMs) ?? 0,
    deadline: number(fields.deadline) ?? 0,
    ...(fields.cancelledWhile === 'queued' || fields.cancelledWhile === 'running' ? { cancelledWhile: fields.cancelledWhile } : {}),
  };
}

/** What GET /v1/jobs/{id} answers: the record without what only Gantry needs (the secret, the rendering). */
export function jobView(record: JobRecord, deliveries: readonly DeliveryAttempt[] | undefined) {
  const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
  return {
    id: record.id,
    model: record.rendering.modelName,
    version: record.version,
    state: record.state,
    createdAt: iso(record.createdAt)!,
    ...(record.startedAt === undefined ? {} : { startedAt: iso(record.startedAt)! }),
    ...(record.finishedAt === undefined ? {} : { finishedAt: iso(record.finishedAt)! }),
    attempts: record.attempts,
    ...(record.error === undefined ? {} : { error: { error: record.error.message, code: record.error.code } }),
    ...(record.cancelledWhile === undefined ? {} : { cancelledWhile: record.cancelledWhile }),
    expiresAt: iso((record.finishedAt ?? record.deadline) + record.retentionMs)!,
    ...(record.callback === undefined ? {} : { callback: { url: record.callback.url, signed: record.callback.secret !== undefined } }),
    ...(deliveries === undefined || record.callback === undefined ? {} : { deliveries: [...deliveries] }),
  };
}
export type JobView = ReturnType<typeof jobView>;
