export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'expired';

/** A webhook delivery attempt of a job or batch. */
export interface Delivery {
  at: string;
  status?: number;
  error?: string;
}

/** An asynchronous job as GET /v1/jobs/{id} shows it. */
export interface Job {
  id: string;
  model: string;
  version: string;
  state: JobState;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  attempts: number;
  /** Why a failed or expired job failed. */
  error?: { error: string; code: string };
  cancelledWhile?: 'queued' | 'running';
  expiresAt: string;
  callback?: { url: string; signed: boolean };
  deliveries?: Delivery[];
}

/** Where a job's or batch's webhook goes once it has finished. */
export interface Callback {
  url: string;
  /** Signs the webhook (HMAC-SHA256, `gantry-signature`); 16 to 256 characters. */
  secret?: string;
  /** Puts the job's outputs in its webhook when they are small (jobs only). */
  includeResult?: boolean;
}

export type BatchState = 'receiving' | 'queued' | 'running' | 'succeeded' | 'cancelled' | 'expired';

/** A batch file's state and progress (GET /v1/batches/{id}). */
export interface Batch {
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
  retention: number;
  expiresAt?: string;
  callback?: { url: string };
  deliveries?: Delivery[];
}

/** States a job or batch never leaves. */
export const finalJobStates: ReadonlySet<string> = new Set(['succeeded', 'failed', 'cancelled', 'expired']);
export const finalBatchStates: ReadonlySet<string> = new Set(['succeeded', 'cancelled', 'expired']);
