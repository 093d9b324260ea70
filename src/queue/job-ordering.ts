import type { JobsOptions } from 'bullmq';

/**
 * Where a job goes in its BullMQ queue. BullMQ keeps two structures per queue: a wait list (a job added with one
 * LPUSH, taken with one RPOPLPUSH) and a sorted set for jobs with a priority, which costs Redis several times more per
 * job (measured here: ~150 µs for a prioritized add against a plain one; issue 18). A worker takes from the wait list
 * first and from the sorted set only when the list is empty. So:
 * - a job at its model's default priority (nearly every job) goes to the back of the wait list: the cheap path;
 * - a job above the default (a smaller number) goes to the front of the wait list (`lifo`), ahead of every queued
 *   default and lower job. Among such urgent jobs the newest is taken first; once taken, the worker's batcher orders
 *   the requests it holds by priority (model-batcher.ts), so a queue that is kept short loses nothing;
 * - a job below the default (a larger number: shadow copies, callers who asked to yield) goes to the sorted set,
 *   ordered by priority, and runs only when no default or urgent job waits.
 */
export function jobOrdering(priority: number, defaultPriority: number): Pick<JobsOptions, 'priority' | 'lifo'> {
  if (priority === defaultPriority) return {};
  if (priority < defaultPriority) return { lifo: true };
  return { priority };
}
