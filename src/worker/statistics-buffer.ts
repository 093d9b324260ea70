import type { Logger } from '../logger.js';
import type { ExecutionStatistics, RequestStatistics, StatisticsSink } from './inference-processor.js';

/** Writes accumulated counters for one model version (Redis, in one round trip). */
export type StatisticsWriter = (model: string, version: string, increments: Map<string, number>, lastInferenceMs: number) => Promise<void>;

/** How long counters gather in memory before they are written: at high load, one write covers many requests. */
const flushDelayMs = 20;

const computePhases = ['compute_input', 'compute_infer', 'compute_output'] as const;

/**
 * Triton's statistics, counted per worker in memory and added to the shared totals in Redis shortly after.
 * Per request: success/fail, queue and compute times, inference_count. Per execution: execution_count and the
 * batch_stats of its batch size, so inference_count / execution_count is the real average batch size.
 */
export class StatisticsBuffer implements StatisticsSink {
  private readonly pending = new Map<string, { model: string; version: string; increments: Map<string, number>; lastInferenceMs: number }>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly write: StatisticsWriter,
    private readonly logger: Logger,
  ) {}

  private entry(model: string, version: string) {
    const key = `${model}\u0000${version}`;
    let entry = this.pending.get(key);
    if (entry === undefined) {
      entry = { model, version, increments: new Map(), lastInferenceMs: 0 };
      this.pending.set(key, entry);
    }
    this.timer ??= setTimeout(() => void this.flush(), flushDelayMs);
    return entry;
  }

  recordRequest(model: string, version: string, request: RequestStatistics): void {
    const entry = this.entry(model, version);
    const add = (field: string, amount: number) => entry.increments.set(field, (entry.increments.get(field) ?? 0) + Math.round(amount));
    entry.lastInferenceMs = Math.max(entry.lastInferenceMs, request.finishedAtMs);
    if (!request.ok) {
      add('fail_count', 1);
      add('fail_ns', request.totalNs);
      return;
    }
    add('success_count', 1);
    add('success_ns', request.totalNs);
    add('queue_count', 1);
    add('queue_ns', request.queueNs);
    const computeNs = { compute_input: request.computeInputNs, compute_infer: request.computeInferNs, compute_output: request.computeOutputNs };
    for (const phase of computePhases) {
      add(`${phase}_count`, 1);
      add(`${phase}_ns`, computeNs[phase]);
    }
    // Triton counts inferences in batch rows: a request of shape [2, …] is two inferences.
    add('inference_count', request.rows);
  }

  recordExecution(model: string, version: string, execution: ExecutionStatistics): void {
    const entry = this.entry(model, version);
    const add = (field: string, amount: number) => entry.increments.set(field, (entry.increments.get(field) ?? 0) + Math.round(amount));
    add('execution_count', 1);
    const computeNs = { compute_input: execution.computeInputNs, compute_infer: execution.computeInferNs, compute_output: execution.computeOutputNs };
    for (const phase of computePhases) {
      add(`batch:${execution.batchSize}:${phase}_count`, 1);
      add(`batch:${execution.batchSize}:${phase}_ns`, computeNs[phase]);
    }
  }

  /** Writes everything gathered so far; resolves when it is in Redis (or logged as lost). */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const entries = [...this.pending.values()];
    this.pending.clear();
    this.flushing = this.flushing.then(async () => {
      for (const entry of entries) {
        try {
          await this.write(entry.model, entry.version, entry.increments, entry.lastInferenceMs);
        } catch (error) {
          // Statistics are best effort: losing a few counts while Redis is away must not fail inferences.
          this.logger.warn({ model: entry.model, version: entry.version, err: (error as Error).message }, 'statistics not recorded');
        }
      }
    });
    return this.flushing;
  }
}
