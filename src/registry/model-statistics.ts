import type { Redis } from 'ioredis';
import { statisticsKey } from '../redis-keys.js';

/**
 * Triton's statistics extension (extension_statistics.md, "Statistics Response JSON Object"), counted in Redis
 * so that every worker adds to the same totals and any API process can report them. One hash per version:
 *
 *   success_count/_ns, fail_count/_ns, queue_count/_ns, compute_input_count/_ns, compute_infer_count/_ns,
 *   compute_output_count/_ns, inference_count, execution_count, last_inference,
 *   batch:{size}:compute_input_count/_ns, batch:{size}:compute_infer_count/_ns, batch:{size}:compute_output_count/_ns
 *
 * How one execution (one onnxruntime run serving one or more requests) is counted, following Triton:
 * - success / fail: one per request, its ns being the request's whole time in the server (`totalNs`).
 * - queue and compute_*: counted for successful requests only (a failed request counts in `fail` alone). Each
 *   successful request is charged the execution's full compute durations, not a share of them, as Triton's
 *   backends report per-request statistics; so per-request averages add up: success.ns/count ≈
 *   (queue + compute_input + compute_infer + compute_output).ns/count. The real cost of the execution, counted
 *   once, is in batch_stats.
 * - batch_stats ("$batch_stats"): per execution, under its batch size; count 1, ns the execution's durations.
 * - inference_count: successful inferences, a request of batch size n counting n ("inference_count" in the
 *   spec); execution_count: executions with at least one successful request. inference_count/execution_count
 *   is the average batch size.
 * - last_inference: ms since the epoch of the latest execution, successful or not; kept as a maximum, since
 *   workers finish out of order.
 *
 * Counts and ns are 64-bit integers in Redis; they are reported as JSON numbers, exact up to 2^53 (about 104
 * days of cumulative nanoseconds).
 */

export interface DurationStat {
  count: number;
  ns: number;
}

export interface TritonBatchStats {
  batch_size: number;
  compute_input: DurationStat;
  compute_infer: DurationStat;
  compute_output: DurationStat;
}

export interface TritonModelStats {
  name: string;
  version: string;
  last_inference: number;
  inference_count: number;
  execution_count: number;
  inference_stats: {
    success: DurationStat;
    fail: DurationStat;
    queue: DurationStat;
    compute_input: DurationStat;
    compute_infer: DurationStat;
    compute_output: DurationStat;
  };
  batch_stats: TritonBatchStats[];
}

/** HSET the field only when the new value is larger: last_inference never goes back. */
const setIfGreaterScript = `
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > current then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 0`;

/**
 * The low-level writer: adds counters (field → amount, fields as in the hash layout above) to a version's
 * totals and raises last_inference to `lastInferenceMs` if that is later, in one round trip (a pipeline of
 * HINCRBYs and one tiny script). Workers gather the counters in memory first (worker/statistics-buffer.ts).
 */
export async function addStatistics(
  redis: Redis,
  prefix: string,
  model: string,
  version: string,
  increments: Map<string, number>,
  lastInferenceMs: number,
): Promise<void> {
  const key = statisticsKey(prefix, model, version);
  const pipeline = redis.pipeline();
  for (const [field, amount] of increments) {
    const rounded = Math.round(amount);
    if (Number.isFinite(rounded) && rounded !== 0) pipeline.hincrby(key, field, rounded);
  }
  pipeline.eval(setIfGreaterScript, 1, key, 'last_inference', String(Math.max(0, Math.round(lastInferenceMs))));
  const replies = (await pipeline.exec()) ?? [];
  const failed = replies.find(([error]) => error !== null);
  if (failed !== undefined) throw failed[0];
}

/** One version's statistics in Triton's JSON shape; all zeros when it never ran. */
export async function readStatistics(redis: Redis, prefix: string, model: string, version: string): Promise<TritonModelStats> {
  const fields = await redis.hgetall(statisticsKey(prefix, model, version));
  const number = (field: string) => Number(fields[field] ?? 0);
  const duration = (name: string): DurationStat => ({ count: number(`${name}_count`), ns: number(`${name}_ns`) });
  const batchSizes = new Set<number>();
  for (const field of Object.keys(fields)) {
    const match = /^batch:(\d+):/.exec(field);
    if (match !== null) batchSizes.add(Number(match[1]));
  }
  return {
    name: model,
    version,
    last_inference: number('last_inference'),
    inference_count: number('inference_count'),
    execution_count: number('execution_count'),
    inference_stats: {
      success: duration('success'),
      fail: duration('fail'),
      queue: duration('queue'),
      compute_input: duration('compute_input'),
      compute_infer: duration('compute_infer'),
      compute_output: duration('compute_output'),
    },
    batch_stats: [...batchSizes]
      .sort((a, b) => a - b)
      .map((size) => ({
        batch_size: size,
        compute_input: duration(`batch:${size}:compute_input`),
        compute_infer: duration(`batch:${size}:compute_infer`),
        compute_output: duration(`batch:${size}:compute_output`),
      })),
  };
}

/** Forgets a version's statistics (the version is being deleted). */
export async function deleteStatistics(redis: Redis, prefix: string, model: string, version: string): Promise<void> {
  await redis.del(statisticsKey(prefix, model, version));
}
