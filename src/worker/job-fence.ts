import { WaitingError, type Job } from 'bullmq';
import type { Logger } from '../logger.js';
import type { WorkerMetrics } from '../metrics/worker-metrics.js';

/** The points at which a processor asks whether the job is still its own. */
export type FenceStage = 'before_run' | 'before_answer';

/**
 * Thrown by a processor when its job's lock is no longer this worker's: another worker may be running the job
 * already, so nothing more is done with it here (no run, no statistics, no reply, no completion in BullMQ).
 */
export class FencedOffError extends Error {
  constructor(readonly stage: FenceStage) {
    super(`this worker lost the job's lock (${stage.replace('_', ' ')})`);
    this.name = 'FencedOffError';
  }
}

/** What processors call before the work that must happen once per job: running it, counting it, answering it. */
export interface JobFence {
  /** Resolves while this worker holds the job's lock; rejects with FencedOffError once it may not. */
  check(stage: FenceStage): Promise<void>;
}

/**
 * A lock set or extended at time t lasts until t + lockDuration. Within this fraction of a lock period of a
 * known setting the lock is trusted without asking Redis: at least half a period then remains for the step
 * that follows (recording and publishing take milliseconds). BullMQ renews locks every half period too.
 */
const trustedFraction = 0.5;

/**
 * The job fence: tells a worker whose event loop stalled past its job lock (BullMQ renews locks from the event
 * loop, so a stalled loop lets them expire and another worker takes the job) that the job is no longer its own.
 *
 * It costs nothing on the normal path: the lock was set when the job was taken (at `job.processedOn`, a
 * timestamp taken before the Redis call, so never later than the lock's real start), and as long as less than
 * half a lock period has passed since then, it is still held. Only an older job is checked, with BullMQ's own
 * extendLock script (SET if the lock still holds this worker's token, one round trip); a successful check
 * restarts the trusted period.
 */
export class LockFence implements JobFence {
  /** performance.now() (ms) no later than the last time the lock was set for a full period. */
  private confirmedAt: number;
  private readonly trustedMs: number;
  private lost: FenceStage | undefined;

  constructor(
    private readonly job: Pick<Job, 'token' | 'processedOn' | 'extendLock'>,
    private readonly lockDurationMs: number,
    private readonly metrics: Pick<WorkerMetrics, 'jobLockChecks'>,
  ) {
    // From the wall clock once, then the monotonic clock: a clock step later on cannot stretch the trust.
    const sinceTakenMs = job.processedOn === undefined ? Infinity : Math.max(0, Date.now() - job.processedOn);
    this.confirmedAt = performance.now() - sinceTakenMs;
    this.trustedMs = lockDurationMs * trustedFraction;
  }

  async check(stage: FenceStage): Promise<void> {
    if (this.lost !== undefined) throw new FencedOffError(this.lost);
    const askedAt = performance.now();
    if (askedAt - this.confirmedAt < this.trustedMs) return;
    this.metrics.jobLockChecks.inc();
    let held = false;
    try {
      held = this.job.token !== undefined && (await this.job.extendLock(this.job.token, this.lockDurationMs)) === 1;
    } catch {
      // Redis cannot confirm the lock: the job may be taken over once the lock expires, so it is not ours to
      // finish. It stays active in Redis and is re-run by whoever holds it next (at-least-once is kept).
    }
    if (!held) {
      this.lost = stage;
      throw new FencedOffError(stage);
    }
    this.confirmedAt = askedAt;
  }
}

/**
 * What a consumer hands back to BullMQ for a job it was fenced off: a WaitingError, which BullMQ takes to mean
 * "the processor has moved this job itself" and so neither completes nor fails it (its new owner will). Counts
 * and logs the event first.
 */
export function leaveToItsOwner(
  job: Pick<Job, 'id' | 'queueName'>,
  kind: 'inference' | 'load',
  fenced: FencedOffError,
  { metrics, logger }: { metrics: Pick<WorkerMetrics, 'fencedJobs'>; logger: Logger },
): WaitingError {
  metrics.fencedJobs.inc({ kind, stage: fenced.stage });
  logger.warn(
    { queue: job.queueName, jobId: job.id, kind, stage: fenced.stage },
    'job left to the worker that took it over: this worker lost its lock (event loop stalled past GANTRY_JOB_LOCK_MS)',
  );
  return new WaitingError(fenced.message);
}
