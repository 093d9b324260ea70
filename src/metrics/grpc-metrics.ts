import { Counter, Histogram, type Registry } from 'prom-client';
import { latencyBucketsSeconds } from './buckets.js';

/**
 * The gRPC transport's own metrics, on the API's registry (the inference metrics carry `protocol` themselves).
 * Labels are bounded: `method` is one of the served services' method names, `code` a gRPC status name.
 */
export function createGrpcMetrics(registry: Registry) {
  return {
    requests: new Counter({
      name: 'gantry_grpc_requests_total',
      help: 'gRPC calls answered, by method and gRPC status code (OK, NOT_FOUND, RESOURCE_EXHAUSTED, ...).',
      labelNames: ['method', 'code'] as const,
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'gantry_grpc_request_duration_seconds',
      help: 'Time from a gRPC call arriving to its answer, by method.',
      labelNames: ['method'] as const,
      buckets: latencyBucketsSeconds,
      registers: [registry],
    }),
  };
}

export type GrpcMetrics = ReturnType<typeof createGrpcMetrics>;
