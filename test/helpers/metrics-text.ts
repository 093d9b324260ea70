/** Reading Prometheus text expositions (GET /metrics) in tests. */

/** The value of the sample `name` whose labels are exactly `labels` (any order); 0 when absent. */
export function sampleValue(exposition: string, name: string, labels: Record<string, string>): number {
  const wanted = Object.entries(labels)
    .map(([label, value]) => `${label}="${value}"`)
    .sort()
    .join(',');
  for (const line of exposition.split('\n')) {
    const match = /^([a-z_]+)\{([^}]*)\} (\S+)$/.exec(line);
    if (match?.[1] === name && match[2]!.split(',').sort().join(',') === wanted) return Number(match[3]);
  }
  return 0;
}
