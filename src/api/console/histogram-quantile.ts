/**
 * A quantile from cumulative histogram bucket counts, estimated as Prometheus's histogram_quantile() does: find
 * the bucket the rank falls in and interpolate linearly inside it (the first bucket from 0). A rank in the +Inf
 * bucket answers the largest finite bound, since nothing is known above it.
 *
 * @param quantile from 0 to 1 (0.5 is the median).
 * @param upperBounds the finite bucket bounds, ascending (seconds for latency).
 * @param cumulativeCounts one count per bound, cumulative, then the +Inf bucket's (the total) last.
 * @returns the estimate in the bounds' unit, or undefined when the histogram counted nothing.
 */
export function histogramQuantile(quantile: number, upperBounds: readonly number[], cumulativeCounts: readonly number[]): number | undefined {
  const total = cumulativeCounts[cumulativeCounts.length - 1] ?? 0;
  if (total <= 0) return undefined;
  const rank = quantile * total;
  for (let index = 0; index < upperBounds.length; index++) {
    const count = cumulativeCounts[index] ?? 0;
    if (count < rank) continue;
    const lowerBound = index === 0 ? 0 : upperBounds[index - 1]!;
    const countBelow = index === 0 ? 0 : (cumulativeCounts[index - 1] ?? 0);
    const inBucket = count - countBelow;
    if (inBucket <= 0) return upperBounds[index];
    return lowerBound + (upperBounds[index]! - lowerBound) * ((rank - countBelow) / inBucket);
  }
  return upperBounds[upperBounds.length - 1];
}
