/** Latency buckets from 1 ms to 60 s, in seconds (Prometheus base units). */
export const latencyBucketsSeconds = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** Batch-size buckets: powers of two up to the largest batch a job can carry. */
export const batchSizeBuckets = [1, 2, 4, 8, 16, 32, 64, 128, 256];
