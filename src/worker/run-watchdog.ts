/**
 * The watchdog of a worker's instance threads: it notices a run or a load that has gone on too long and stops
 * it. onnxruntime-node's `session.run` and `InferenceSession.create` are native calls that nothing can interrupt
 * (measured: `Worker.terminate()` of a thread inside a never-ending run never resolves and the thread keeps a
 * core busy; even `process.exit()` hangs, because Node joins its worker threads before exiting). So "stopping"
 * means: the callers are answered at once, the thread is never used again, and the worker process is restarted
 * (see worker-restart.ts), which is the only thing that really ends the native call.
 *
 * Costs nothing per request: threads note when they sent their work (a timestamp they keep anyway), and the
 * watchdog reads those timestamps on a timer.
 */
import type { GantryError } from '../errors.js';

/** Who asked for a run: the model versions whose requests were in it (a batch may hold several). */
export interface RunRequester {
  model?: string;
  version?: string;
}

export interface CurrentWork {
  kind: 'run' | 'load';
  /** performance.now() when the work began (for a load: when the whole load began). */
  startedAt: number;
  /** The requests in a run, for strikes and logs; empty for loads. */
  requesters: readonly RunRequester[];
}

/** What the watchdog needs from an instance thread. */
export interface WatchedThread {
  /** The work the thread is inside now (the oldest it has not answered), or undefined when idle. */
  currentWork(): CurrentWork | undefined;
  /** Answers the current work with `error` at once and retires the thread: it is never sent work again. */
  abandon(error: GantryError): void;
  /** The model (blob) the thread holds, for logs. */
  readonly label: string;
}

export interface StoppedWork extends CurrentWork {
  label: string;
  elapsedMs: number;
}

export interface WatchdogLimits {
  /** GANTRY_MAX_RUN_MS: longest one onnxruntime execution may take. */
  maxRunMs: number;
  /** GANTRY_LOAD_DEADLINE_MS: longest the loads and warm-up of one model version may take together. */
  loadDeadlineMs: number;
}

export interface WatchdogErrors {
  runStopped: (limitMs: number) => GantryError;
  loadStopped: (limitMs: number) => GantryError;
}

/**
 * Checks every watched thread on a timer; work past its limit is abandoned with the limit's error and reported
 * to `onStopped` (which restarts the worker).
 */
export class RunWatchdog {
  private readonly threads = new Set<WatchedThread>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly limits: WatchdogLimits,
    private readonly errorsFor: WatchdogErrors,
    private readonly onStopped: (stopped: StoppedWork) => void,
  ) {}

  /**
   * How often the timer looks, in ms: a tenth of the shorter limit, between 50 ms and 1 s, so a run is stopped
   * at most ~10% (or 1 s) after its limit.
   */
  get intervalMs(): number {
    return Math.min(1000, Math.max(50, Math.floor(Math.min(this.limits.maxRunMs, this.limits.loadDeadlineMs) / 10)));
  }

  /** Starts watching a thread; returns the function that stops watching it (call it when the thread exits). */
  watch(thread: WatchedThread): () => void {
    this.threads.add(thread);
    return () => this.threads.delete(thread);
  }

  start(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => this.check(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Looks at every thread once (the timer calls this; tests may too). Returns what it stopped. */
  check(now = performance.now()): StoppedWork[] {
    const stopped: StoppedWork[] = [];
    for (const thread of this.threads) {
      const work = thread.currentWork();
      if (work === undefined) continue;
      const limitMs = work.kind === 'run' ? this.limits.maxRunMs : this.limits.loadDeadlineMs;
      const elapsedMs = now - work.startedAt;
      if (elapsedMs <= limitMs) continue;
      thread.abandon(work.kind === 'run' ? this.errorsFor.runStopped(limitMs) : this.errorsFor.loadStopped(limitMs));
      this.threads.delete(thread);
      stopped.push({ ...work, label: thread.label, elapsedMs });
    }
    for (const work of stopped) this.onStopped(work);
    return stopped;
  }
}
