import type { ExecutionStatistics, RequestStatistics, StatisticsSink } from './inference-processor.js';

type Recording = (sink: StatisticsSink) => void;

/**
 * Holds a job's statistics until BullMQ has recorded the job as completed by this worker, so that each request
 * is counted exactly once although delivery is at-least-once.
 *
 * Why: a worker can stall (its event loop stopped, the host paused) after it has answered a job and before
 * BullMQ's moveToCompleted. Its lock then expires, another worker runs the job again and counts it. The job
 * fence cannot close that window: no check made before the statistics can prove that the completion which
 * follows will still hold the lock. moveToCompleted itself can (it refuses a lock this worker no longer holds),
 * so the statistics wait for it: only the worker whose completion succeeded adds them.
 *
 * Kept per Job object in a WeakMap: a job whose completion never comes (its lock was lost, the worker is
 * closing) takes its pending statistics with it when it is collected, with no clean-up to forget.
 */
export class CompletionGatedStatistics {
  private readonly pending = new WeakMap<object, Recording[]>();

  constructor(private readonly sink: StatisticsSink) {}

  /** A sink for one job's statistics; nothing reaches the shared sink before commit(job). */
  collectorFor(job: object): StatisticsSink {
    const recordings = this.recordingsOf(job);
    return {
      recordRequest: (model: string, version: string, request: RequestStatistics) => recordings.push((sink) => sink.recordRequest(model, version, request)),
      recordExecution: (model: string, version: string, execution: ExecutionStatistics) =>
        recordings.push((sink) => sink.recordExecution(model, version, execution)),
    };
  }

  /** Holds anything else that must count once per job (the usage of asynchronous work) until commit(job). */
  hold(job: object, action: () => void): void {
    this.recordingsOf(job).push(() => action());
  }

  private recordingsOf(job: object): Recording[] {
    let recordings = this.pending.get(job);
    if (recordings === undefined) {
      recordings = [];
      this.pending.set(job, recordings);
    }
    return recordings;
  }

  /** The job is completed in Redis by this worker: its statistics count. */
  commit(job: object): void {
    const recordings = this.pending.get(job);
    if (recordings === undefined) return;
    this.pending.delete(job);
    for (const recording of recordings) recording(this.sink);
  }

  /** The job will not be completed by this worker (fenced off, failed): its statistics are dropped. */
  discard(job: object): void {
    this.pending.delete(job);
  }
}
