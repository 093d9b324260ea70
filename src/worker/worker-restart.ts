import type { Logger } from '../logger.js';

export interface WorkerRestartSteps {
  /** Stops fetching new jobs (every consumer); jobs in progress carry on. */
  stopTakingJobs: () => Promise<void>;
  /** Jobs this process has taken and not yet completed or failed in Redis. */
  activeJobs: () => number;
  /** Answers requests that can no longer run here (queued behind a stopped instance). */
  failStranded: () => void;
  /** Last writes before the end (statistics). */
  flush: () => Promise<void>;
  /** Ends the process (worker-exit.ts). */
  exit: (reason: string) => Promise<never>;
}

/**
 * The worker's restart after a stopped run or load (or an unloaded model still running): the stuck native call
 * only ends with the process. It stops taking jobs, gives the jobs in progress (and writes that must land, such
 * as strikes) up to `boundMs` to finish, then ends the process; jobs still unfinished then are re-run by BullMQ's
 * stalled-job recovery on this worker's successor or another worker.
 */
export class WorkerRestart {
  private reason: string | undefined;
  private readonly mustFinish = new Set<Promise<unknown>>();

  /** @param boundMs how long jobs in progress may take before the process ends anyway; default 2000 ms. */
  constructor(
    private readonly steps: WorkerRestartSteps,
    private readonly logger: Logger,
    private readonly boundMs = 2000,
  ) {}

  get restarting(): boolean {
    return this.reason !== undefined;
  }

  /** Work that must be done before the process ends (awaited within the bound). */
  keep(work: Promise<unknown>): void {
    const tracked = work.catch(() => undefined).finally(() => this.mustFinish.delete(tracked));
    this.mustFinish.add(tracked);
  }

  /** Starts the restart; later calls only log their reason. */
  begin(reason: string): void {
    if (this.reason !== undefined) {
      this.logger.warn({ reason }, 'worker already restarting');
      return;
    }
    this.reason = reason;
    this.logger.error({ reason, boundMs: this.boundMs }, 'worker restarting: a model is stuck inside onnxruntime and only the end of this process stops it');
    void this.run(reason);
  }

  private async run(reason: string): Promise<void> {
    const until = Date.now() + this.boundMs;
    const remaining = () => Math.max(0, until - Date.now());
    try {
      await withinMs(this.steps.stopTakingJobs(), remaining());
      this.steps.failStranded();
      while (Date.now() < until && (this.steps.activeJobs() > 0 || this.mustFinish.size > 0)) await sleep(20);
      await withinMs(this.steps.flush(), Math.max(300, remaining()));
      this.logger.warn({ reason, unfinishedJobs: this.steps.activeJobs() }, 'worker ending itself; unfinished jobs are re-run after their lock expires');
    } finally {
      await this.steps.exit(reason);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits for `work`, but no longer than `ms`; its failure is ignored (the restart goes on regardless). */
async function withinMs(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([work.catch(() => undefined), new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
