/**
 * The one seeded pseudo-random generator of the tests, fixtures and benchmarks, so every build and run sees the
 * same weights and inputs.
 */

/**
 * mulberry32: a tiny, well-known 32-bit seeded PRNG, used instead of Math.random so fixture builds are
 * byte-identical and a plain-JS reference can recompute the same values. Returns numbers in [0, 1).
 */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `count` numbers uniform in [low, high) from mulberry32(seed), already rounded to float32 (every side sees the same bits). */
export function randomFloats(seed: number, count: number, low = -1, high = 1): number[] {
  const next = mulberry32(seed);
  return Array.from(Float32Array.from({ length: count }, () => low + (high - low) * next()));
}
