/**
 * A version's lifecycle, in Triton's vocabulary. A version is READY only after a worker has loaded it and
 * tried a warm-up inference; UNAVAILABLE always comes with a reason. Every transition is made by
 * model-lifecycle.ts. There is no UNLOADING: an unload is one atomic step to UNAVAILABLE ("unloaded") that requests
 * already queued for the version answer as unavailable, rather than a state that drains them first.
 */
export const modelStates = ['LOADING', 'READY', 'UNAVAILABLE'] as const;
export type ModelState = (typeof modelStates)[number];
