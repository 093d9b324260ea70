/**
 * A version's lifecycle, in Triton's vocabulary. A version is READY only after a worker has loaded it and
 * tried a warm-up inference; UNAVAILABLE always comes with a reason.
 */
export const modelStates = ['LOADING', 'READY', 'UNAVAILABLE', 'UNLOADING'] as const;
export type ModelState = (typeof modelStates)[number];
