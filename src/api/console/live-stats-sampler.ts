import type { ApiMetrics } from '../../metrics/api-metrics.js';
import { latencyBucketsSeconds } from '../../metrics/buckets.js';
import { histogramQuantile } from './histogram-quantile.js';

/** What the console's Live view draws for one model (qualified name), from this API process's own metrics. */
export interface ModelLiveStats {
  model: string;
  /** Inference requests this API process answered for the model since it started, every outcome. */
  requestsTotal: number;
  /** Of those, the ones that did not succeed. */
  errorsTotal: number;
  /** Requests answered per second over the last interval; null on the first sample (nothing to compare with). */
  requestsPerSecond: number | null;
  errorsPerSecond: number | null;
  /** Latency percentiles of the successful requests answered in the last window (seconds); null when none were. */
  latencySeconds: { p50: number; p90: number; p99: number } | null;
  /** Jobs waiting or running in the model's queues (every API process's: read from Redis); null while Redis is down. */
  queueDepth: number | null;
}

export interface LiveStatsSample {
  /** When the sample was taken (ms since the epoch). */
  at: number;
  intervalMs: number;
  /** The span the latency percentiles cover. */
  windowSeconds: number;
  models: ModelLiveStats[];
}

/** Cumulative counts of one model at one sample: what the next sample subtracts. */
interface ModelCounts {
  total: number;
  errors: number;
  /** Cumulative latency bucket counts of successful requests, one per bound of latencyBucketsSeconds, then +Inf. */
  buckets: number[];
}

interface Reading {
  at: number;
  counts: Map<string, ModelCounts>;
}

export interface LiveStatsSamplerOptions {
  /** How often a sample is taken while someone listens (ms). */
  intervalMs: number;
  /** How many intervals the latency percentiles cover. */
  windowIntervals: number;
}

/**
 * One sampler per API process, shared by every open Live view: while at least one listens, it reads the
 * in-process prom-client metrics (request counters and the latency histogram) and the queue-depth gauge (one
 * Redis read per model queue) on a fixed interval, turns the cumulative counts into rates and windowed
 * percentiles, and hands every listener the same sample. With no listener it reads nothing.
 */
export class LiveStatsSampler {
  private readonly listeners = new Set<(sample: LiveStatsSample) => void>();
  private readonly readings: Reading[] = [];
  private timer: NodeJS.Timeout | undefined;
  private sampling = false;
  private latest: LiveStatsSample | undefined;
  private closed = false;

  constructor(
    private readonly metrics: Pick<ApiMetrics, 'inferenceRequests' | 'inferenceDuration' | 'pendingRequests'>,
    private readonly options: LiveStatsSamplerOptions,
  ) {}

  /**
   * Calls `listener` with every sample from now on: at once with the latest one when sampling is already under
   * way, else as soon as the first is read. @returns the unsubscribe function.
   */
  subscribe(listener: (sample: LiveStatsSample) => void): () => void {
    if (this.closed) return () => undefined;
    this.listeners.add(listener);
    if (this.timer === undefined) {
      this.timer = setInterval(() => void this.sample(), this.options.intervalMs);
      this.timer.unref();
      void this.sample();
    } else if (this.latest !== undefined) {
      listener(this.latest);
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stop();
    };
  }

  /** Stops sampling for good and forgets every listener (shutdown). */
  close(): void {
    this.closed = true;
    this.listeners.clear();
    this.stop();
  }

  private stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.readings.length = 0;
    this.latest = undefined;
  }

  private async sample(): Promise<void> {
    // A slow Redis must not pile reads up: a tick that finds the last one still reading is skipped.
    if (this.sampling) return;
    this.sampling = true;
    try {
      const reading = await this.read();
      const queueDepths = await this.readQueueDepths();
      if (this.timer === undefined) return;
      this.readings.push(reading);
      if (this.readings.length > this.options.windowIntervals + 1) this.readings.shift();
      this.latest = this.summarize(reading, queueDepths);
      for (const listener of this.listeners) listener(this.latest);
    } finally {
      this.sampling = false;
    }
  }

  private async read(): Promise<Reading> {
    const counts = new Map<string, ModelCounts>();
    const countsOf = (model: string) => {
      let entry = counts.get(model);
      if (entry === undefined) {
        entry = { total: 0, errors: 0, buckets: new Array<number>(latencyBucketsSeconds.length + 1).fill(0) };
        counts.set(model, entry);
      }
      return entry;
    };
    for (const { labels, value } of (await this.metrics.inferenceRequests.get()).values) {
      // Requests refused before a model was known carry model="".
      if (typeof labels.model !== 'string' || labels.model === '') continue;
      const entry = countsOf(labels.model);
      entry.total += value;
      if (labels.outcome !== 'success') entry.errors += value;
    }
    for (const { labels, value, metricName } of (await this.metrics.inferenceDuration.get()).values) {
      if (metricName === undefined || !metricName.endsWith('_bucket') || typeof labels.model !== 'string' || labels.model === '') continue;
      // Bucket values carry `le` beside the declared labels.
      const le = (labels as Record<string, string | number | undefined>).le;
      const bound = le === '+Inf' ? latencyBucketsSeconds.length : latencyBucketsSeconds.indexOf(Number(le));
      if (bound < 0) continue;
      const buckets = countsOf(labels.model).buckets;
      buckets[bound] = (buckets[bound] ?? 0) + value;
    }
    return { at: Date.now(), counts };
  }

  /** Queue depth per model, or undefined while Redis cannot be read (the gauge then has no values). */
  private async readQueueDepths(): Promise<Map<string, number> | undefined> {
    try {
      const values = (await this.metrics.pendingRequests.get()).values;
      if (values.length === 0) return undefined;
      return new Map(values.filter(({ labels }) => typeof labels.model === 'string').map(({ labels, value }) => [String(labels.model), value]));
    } catch {
      return undefined;
    }
  }

  private summarize(reading: Reading, queueDepths: Map<string, number> | undefined): LiveStatsSample {
    const previous = this.readings.length >= 2 ? this.readings[this.readings.length - 2] : undefined;
    const windowStart = this.readings[0]!;
    const seconds = previous === undefined ? 0 : Math.max(0.001, (reading.at - previous.at) / 1000);
    const models = new Set([...reading.counts.keys(), ...(queueDepths?.keys() ?? [])]);
    const stats: ModelLiveStats[] = [];
    for (const model of [...models].sort()) {
      const now = reading.counts.get(model) ?? emptyCounts;
      const before = previous?.counts.get(model) ?? emptyCounts;
      const windowBefore = windowStart === reading ? undefined : (windowStart.counts.get(model) ?? emptyCounts);
      stats.push({
        model,
        requestsTotal: now.total,
        errorsTotal: now.errors,
        requestsPerSecond: previous === undefined ? null : Math.max(0, now.total - before.total) / seconds,
        errorsPerSecond: previous === undefined ? null : Math.max(0, now.errors - before.errors) / seconds,
        latencySeconds: windowBefore === undefined ? null : percentiles(now.buckets.map((count, index) => count - (windowBefore.buckets[index] ?? 0))),
        queueDepth: queueDepths === undefined ? null : (queueDepths.get(model) ?? 0),
      });
    }
    return {
      at: reading.at,
      intervalMs: this.options.intervalMs,
      windowSeconds: (this.options.intervalMs * this.options.windowIntervals) / 1000,
      models: stats,
    };
  }
}

const emptyCounts: ModelCounts = { total: 0, errors: 0, buckets: [] };

function percentiles(windowBuckets: number[]): ModelLiveStats['latencySeconds'] {
  const p50 = histogramQuantile(0.5, latencyBucketsSeconds, windowBuckets);
  if (p50 === undefined) return null;
  return {
    p50,
    p90: histogramQuantile(0.9, latencyBucketsSeconds, windowBuckets)!,
    p99: histogramQuantile(0.99, latencyBucketsSeconds, windowBuckets)!,
  };
}
