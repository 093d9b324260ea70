import { setFlagsFromString } from 'node:v8';

/**
 * Lets V8's old generation grow to (1 + percent/100) times its live size before the next full collection.
 *
 * Why: every large tensor passes through Gantry's processes as multi-megabyte buffers. V8 answers that external
 * memory with frequent young-generation collections, which promote whatever a request holds at that moment
 * (its HTTP objects, its Redis commands, its promises) into the old generation; with V8's default growth the old
 * generation then fills after about one 4 MiB request and a full mark-compact (15–40 ms here) follows nearly
 * every request, in the API and in the worker alike. At 300 % the full collections were 2.5× fewer for the
 * same requests (docs/performance.md), for a heap that may hold up to four times its live size between them.
 *
 * The flag is read by V8 each time it sets the next collection limit, so setting it once at start-up is enough.
 * `0` keeps V8's own dynamic growth factor.
 */
export function applyHeapGrowth(percent: number): void {
  if (percent > 0) setFlagsFromString(`--heap-growing-percent=${percent}`);
}
