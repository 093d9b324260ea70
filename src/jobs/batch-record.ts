import type { DeliveryAttempt } from '../webhooks/webhook-delivery.js';
import type { ResultRendering } from '../inference/result-rendering.js';
import type { ModelTarget } from '../queue/inference-submission.js';

/**
 * A batch's states. `receiving`: the body is being read (nothing runs; the record expires unless the upload
 * finishes). `queued`: every chunk is (being) queued, none started. `running`: a chunk started. The final ones
 * are set when the last line got its result: `succeeded` (every line answered; a line's failure is its own),
 * `expired` (every line answered, some only with DEADLINE_EXCEEDED because GANTRY_JOB_DEADLINE_S passed before
 * they ran), `cancelled` (set at the cancel already; `finishedAt` comes once the chunks running then finished).
 */
export const batchStates = ['receiving', 'queued', 'running', 'succeeded', 'cancelled', 'expired'] as const;
export type BatchState = (typeof batchStates)[number];

/** A batch's record as the store reads it (the hash batchKey). */
export interface BatchRecord {
  id: string;
  tenant: string;
  keyId: string;
  /** The model's qualified name (queues, keys). */
  model: string;
  /** The model's name as its caller sees it. */
  modelShown: string;
  /** The version every line runs on, resolved once when the batch was submitted. */
  version: string;
  state: BatchState;
  createdAt: number;
  startedAt?: number;
  finishedAt?: number;
  cancelledAt?: number;
  /** Lines in all (blank lines are not lines); undefined while receiving. */
  total?: number;
  chunks: number;
  chunkLines: number;
  /** Lines that were queued (the others failed when the body was read). */
  queuedLines: number;
  succeeded: number;
  failed: number;
  /** Lines that never ran because the batch was cancelled first. */
  cancelledLines: number;
  /** Lines that ended DEADLINE_EXCEEDED without running (counted in `failed` too). */
  expiredLines: number;
  /** Lines that failed when the body was read (counted in `failed` too). */
  invalidLines: number;
  /** Lines of chunks a worker started. */
  startedLines: number;
  /** Results written by workers (each line once). */
  ranLines: number;
  /** Chunk starts, re-runs after a crash included. */
  attempts: number;
  /** Chunks already in the queue. */
  enqueued: number;
  retentionMs: number;
  /** When every line's own deadline passes (ms since the epoch). */
  deadline: number;
  callbackUrl?: string;
  callbackSecret?: string;
  /** Where the chunks run, and the priority they run at. */
  target?: ModelTarget;
  priority: number;
  /** The rendering most lines share (without the request id); a line with another keeps its own. */
  rendering?: ResultRendering;
}

/** Reads a record from its hash fields; undefined when the hash is gone. */
export function batchRecordFromFields(id: string, fields: Record<string, string>): BatchRecord | undefined {
  if (fields.state === undefined || fields.tenant === undefined) return undefined;
  const count = (name: string) => Number(fields[name] ?? '0');
  const optionalNumber = (name: string) => (fields[name] === undefined ? undefined : Number(fields[name]));
  return {
    id,
    tenant: fields.tenant,
    keyId: fields.keyId ?? '',
    model: fields.model ?? '',
    modelShown: fields.modelShown ?? '',
    version: fields.version ?? '',
    state: fields.state as BatchState,
    createdAt: count('createdAt'),
    ...(optionalNumber('startedAt') === undefined ? {} : { startedAt: count('startedAt') }),
    ...(optionalNumber('finishedAt') === undefined ? {} : { finishedAt: count('finishedAt') }),
    ...(optionalNumber('cancelledAt') === undefined ? {} : { cancelledAt: count('cancelledAt') }),
    ...(optionalNumber('total') === undefined ? {} : { total: count('total') }),
    chunks: count('chunks'),
    chunkLines: count('chunkLines'),
    queuedLines: count('queuedLines'),
    succeeded: count('succeeded'),
    failed: count('failed'),
    cancelledLines: count('cancelledLines'),
    expiredLines: count('expiredLines'),
    invalidLines: count('invalidLines'),
    startedLines: count('startedLines'),
    ranLines: count('ranLines'),
    attempts: count('attempts'),
    enqueued: count('enqueued'),
    retentionMs: count('retentionMs'),
    deadline: count('deadline'),
    ...(fields.callbackUrl === undefined ? {} : { callbackUrl: fields.callbackUrl }),
    ...(fields.callbackSecret === undefined ? {} : { callbackSecret: fields.callbackSecret }),
    ...(fields.target === undefined ? {} : { target: JSON.parse(fields.target) as ModelTarget }),
    priority: count('priority'),
    ...(fields.rendering === undefined ? {} : { rendering: JSON.parse(fields.rendering) as ResultRendering }),
  };
}

/** True once every line has its result. */
export function isFinished(record: BatchRecord): boolean {
  return record.finishedAt !== undefined;
}

/** What GET /v1/batches/{id} answers (and a batch webhook carries). */
export interface BatchView {
  id: string;
  model: string;
  version: string;
  state: BatchState;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  cancelledAt?: string;
  total: number;
  succeeded: number;
  failed: number;
  running: number;
  queued: number;
  cancelled: number;
  expired: number;
  invalid: number;
  attempts: number;
  /** Seconds the results are kept once the batch finished. */
  retention: number;
  /** When the results expire (set once finished). */
  expiresAt?: string;
  callback?: { url: string };
  deliveries?: DeliveryAttempt[];
}

/** The public view of a record: progress `{total, succeeded, failed, running}` and the rest. */
export function batchView(record: BatchRecord, deliveries: readonly DeliveryAttempt[] = []): BatchView {
  const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
  const total = record.total ?? 0;
  // Lines of started chunks without a result yet (never negative, even in a record read mid-change).
  const running = isFinished(record) ? 0 : Math.max(0, record.startedLines - record.ranLines);
  const answered = record.succeeded + record.failed + record.cancelledLines;
  const view: BatchView = {
    id: record.id,
    model: record.modelShown,
    version: record.version,
    state: record.state,
    createdAt: iso(record.createdAt)!,
    total,
    succeeded: record.succeeded,
    failed: record.failed,
    running,
    queued: Math.max(0, total - answered - running),
    cancelled: record.cancelledLines,
    expired: record.expiredLines,
    invalid: record.invalidLines,
    attempts: record.attempts,
    retention: Math.round(record.retentionMs / 1000),
  };
  if (record.startedAt !== undefined) view.startedAt = iso(record.startedAt)!;
  if (record.finishedAt !== undefined) {
    view.finishedAt = iso(record.finishedAt)!;
    view.expiresAt = iso(record.finishedAt + record.retentionMs)!;
  }
  if (record.cancelledAt !== undefined) view.cancelledAt = iso(record.cancelledAt)!;
  if (record.callbackUrl !== undefined) view.callback = { url: record.callbackUrl };
  if (deliveries.length > 0) view.deliveries = [...deliveries];
  return view;
}
