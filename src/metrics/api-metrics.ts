import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { latencyBucketsSeconds } from './buckets.js';

/**
 * Buckets of gantry_shadow_max_abs_difference: exactly equal (0), rounding noise of FP32 (1e-7) and of the
 * comparison's tolerance (1e-5), then differences a change of model makes (1e-3 and up).
 */
export const shadowDifferenceBuckets = [0, 1e-7, 1e-5, 1e-3, 0.1, 10];

/** Where the gauges read from at scrape time (Redis, through BullMQ and the registry). */
export interface ApiMetricSources {
  isRedisUp: () => boolean;
  /** Waiting + prioritized + active jobs per model queue. */
  pendingByModel: () => Promise<Map<string, number>>;
  versionsByState: () => Promise<Map<string, number>>;
  /** Unfinished asynchronous work by kind (`job`, `batch`): how many, and when the oldest was created (ms). */
  unfinishedWork: () => Promise<Map<string, { count: number; running: number; oldestCreatedAt: number | undefined }>>;
}

/** Metrics the API process exports on /metrics. Labels are bounded: never request, job or key ids. */
export function createApiMetrics(sources: ApiMetricSources) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    inferenceRequests: new Counter({
      name: 'gantry_inference_requests_total',
      help: 'Inference requests answered by the API, by outcome (success, client_error, timeout, unavailable, error) and protocol (rest, grpc).',
      labelNames: ['model', 'version', 'outcome', 'protocol'] as const,
      registers: [registry],
    }),
    inferenceDuration: new Histogram({
      name: 'gantry_inference_request_duration_seconds',
      help: 'End-to-end inference latency seen by the API, from request to response, by protocol (rest, grpc).',
      labelNames: ['model', 'version', 'protocol'] as const,
      buckets: latencyBucketsSeconds,
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'gantry_http_request_duration_seconds',
      help: 'HTTP request duration by route template.',
      labelNames: ['method', 'route', 'status_code'] as const,
      buckets: latencyBucketsSeconds,
      registers: [registry],
    }),
    pendingRequests: new Gauge({
      name: 'gantry_pending_requests',
      help: "Jobs waiting, prioritized or active in each model's queues, synchronous and asynchronous (from BullMQ).",
      labelNames: ['model'] as const,
      registers: [registry],
      async collect() {
        this.reset();
        if (!sources.isRedisUp()) return;
        for (const [model, count] of await sources.pendingByModel().catch(() => new Map<string, number>())) this.set({ model }, count);
      },
    }),
    models: new Gauge({
      name: 'gantry_models',
      help: 'Model versions by state.',
      labelNames: ['state'] as const,
      registers: [registry],
      async collect() {
        this.reset();
        if (!sources.isRedisUp()) return;
        for (const [state, count] of await sources.versionsByState().catch(() => new Map<string, number>())) this.set({ state }, count);
      },
    }),
    limitRejections: new Counter({
      name: 'gantry_limit_rejections_total',
      help: 'Requests refused because they hit a limit (README "Limits"), by limit.',
      labelNames: ['limit'] as const,
      registers: [registry],
    }),
    tenantRequests: new Counter({
      name: 'gantry_tenant_requests_total',
      help: 'Inference requests metered per tenant (the first GANTRY_MAX_TENANT_METRICS tenants this process saw; the rest under tenant="_other").',
      labelNames: ['tenant'] as const,
      registers: [registry],
    }),
    tenantComputeSeconds: new Counter({
      name: 'gantry_tenant_compute_seconds_total',
      help: 'Model compute seconds (on the workers) metered per tenant (same tenant bound as gantry_tenant_requests_total).',
      labelNames: ['tenant'] as const,
      registers: [registry],
    }),
    registryLost: new Gauge({
      name: 'gantry_registry_lost',
      help: "1 while the model registry in Redis is lost, being rebuilt, reloading or another deployment's; else 0.",
      registers: [registry],
    }),
    registryLosses: new Counter({
      name: 'gantry_registry_losses_total',
      help: "Times this API found the model registry in Redis lost (no deployment marker) or another deployment's.",
      registers: [registry],
    }),
    registryRestoredVersions: new Counter({
      name: 'gantry_registry_restored_versions_total',
      help: 'Model versions this API put back into Redis from the model store after a loss.',
      registers: [registry],
    }),
    blobsCollected: new Counter({
      name: 'gantry_blob_gc_collected_blobs_total',
      help: 'Model files removed by the garbage collection (unreferenced for GANTRY_BLOB_GC_GRACE_MS).',
      registers: [registry],
    }),
    blobBytesCollected: new Counter({
      name: 'gantry_blob_gc_collected_bytes_total',
      help: 'Bytes of model files removed by the garbage collection.',
      registers: [registry],
    }),
    shadowRequests: new Counter({
      name: 'gantry_shadow_requests_total',
      help: 'Copies of primary requests sent to a shadow version (README "Shadow traffic"), by outcome: success, error, timeout, or shed (skipped or refused under load, not READY, or at shutdown). model and version are the shadow\'s.',
      labelNames: ['model', 'version', 'outcome'] as const,
      registers: [registry],
    }),
    shadowDuration: new Histogram({
      name: 'gantry_shadow_request_duration_seconds',
      help: 'Latency of answered shadow requests, from submission to the shadow answer (they queue at the lowest priority).',
      labelNames: ['model', 'version'] as const,
      buckets: latencyBucketsSeconds,
      registers: [registry],
    }),
    shadowMismatches: new Counter({
      name: 'gantry_shadow_mismatches_total',
      help: "Answered shadow requests whose outputs differ from the primary's: another datatype or shape, or an element past the tolerance (1e-5 absolute + 1e-5 relative for floats, exact otherwise).",
      labelNames: ['model', 'version'] as const,
      registers: [registry],
    }),
    shadowMaxAbsDifference: new Histogram({
      name: 'gantry_shadow_max_abs_difference',
      help: "Per answered shadow request, the largest absolute element difference from the primary's numeric outputs of the same datatype and shape.",
      labelNames: ['model', 'version'] as const,
      buckets: shadowDifferenceBuckets,
      registers: [registry],
    }),
    redisUp: new Gauge({
      name: 'gantry_redis_up',
      help: '1 while Redis answers, else 0.',
      registers: [registry],
      collect() {
        this.set(sources.isRedisUp() ? 1 : 0);
      },
    }),
    asyncCreated: new Counter({
      name: 'gantry_async_created_total',
      help: 'Asynchronous jobs and batches made, by kind (job, batch) and outcome (created; replayed: an Idempotency-Key answered an earlier one).',
      labelNames: ['kind', 'outcome'] as const,
      registers: [registry],
    }),
    asyncUnfinished: new Gauge({
      name: 'gantry_async_unfinished',
      help: 'Asynchronous jobs and batches not finished, by kind (job, batch) and state (queued; running: a worker has started it).',
      labelNames: ['kind', 'state'] as const,
      registers: [registry],
      async collect() {
        this.reset();
        if (!sources.isRedisUp()) return;
        for (const [kind, { count, running }] of await sources.unfinishedWork().catch(() => new Map())) {
          this.set({ kind, state: 'running' }, running);
          this.set({ kind, state: 'queued' }, Math.max(0, count - running));
        }
      },
    }),
    asyncOldestAge: new Gauge({
      name: 'gantry_async_oldest_unfinished_age_seconds',
      help: 'Age of the oldest asynchronous job or batch still queued or running, by kind (0 when there is none).',
      labelNames: ['kind'] as const,
      registers: [registry],
      async collect() {
        this.reset();
        if (!sources.isRedisUp()) return;
        for (const [kind, { oldestCreatedAt }] of await sources.unfinishedWork().catch(() => new Map())) {
          this.set({ kind }, oldestCreatedAt === undefined ? 0 : Math.max(0, (Date.now() - oldestCreatedAt) / 1000));
        }
      },
    }),
    unservedModelRequests: new Counter({
      name: 'gantry_unserved_model_requests_total',
      help: 'Inference requests refused (503) because workers are running but none serves the model (GANTRY_WORKER_MODELS), by model.',
      labelNames: ['model'] as const,
      registers: [registry],
    }),
  };
}

export type ApiMetrics = ReturnType<typeof createApiMetrics>;
