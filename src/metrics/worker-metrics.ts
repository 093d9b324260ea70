import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { batchSizeBuckets, latencyBucketsSeconds } from './buckets.js';

/**
 * Metrics a worker process exports on its own /metrics. Labels are bounded: model and version names, never
 * request, job or key ids.
 */
export function createWorkerMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const labelNames = ['model', 'version'] as const;
  return {
    registry,
    queueDuration: new Histogram({
      name: 'gantry_inference_queue_duration_seconds',
      help: 'Time an inference job (the requests the API sent together) waited between being queued by the API and starting on a worker; one observation per job.',
      labelNames,
      buckets: latencyBucketsSeconds,
      registers: [registry],
    }),
    computeDuration: new Histogram({
      name: 'gantry_inference_compute_duration_seconds',
      help: 'Time onnxruntime spent on one execution, input preparation and output copying included.',
      labelNames,
      buckets: latencyBucketsSeconds,
      registers: [registry],
    }),
    batchSize: new Histogram({
      name: 'gantry_batch_size',
      help: 'Batch size (rows along the batch dimension, summed over the requests) of each onnxruntime execution.',
      labelNames,
      buckets: batchSizeBuckets,
      registers: [registry],
    }),
    executions: new Counter({
      name: 'gantry_inference_executions_total',
      help: 'onnxruntime executions (one per batch).',
      labelNames,
      registers: [registry],
    }),
    workerRequests: new Counter({
      name: 'gantry_worker_requests_total',
      help: 'Requests a worker finished, by outcome.',
      labelNames: ['model', 'version', 'outcome'] as const,
      registers: [registry],
    }),
    modelLoadDuration: new Histogram({
      name: 'gantry_model_load_duration_seconds',
      help: 'Time to verify, load and warm up a model version.',
      labelNames: ['model'] as const,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers: [registry],
    }),
    workerInfo: new Gauge({
      name: 'gantry_worker_info',
      help: 'Always 1; labels say which execution device this worker uses.',
      labelNames: ['device'] as const,
      registers: [registry],
    }),
    limitTrips: new Counter({
      name: 'gantry_worker_limit_trips_total',
      help: 'Times a worker stopped or refused work at a limit (run_deadline, load_deadline, output_bytes, json_output, thread_budget, session_memory), by limit.',
      labelNames: ['limit'] as const,
      registers: [registry],
    }),
    redisUp: new Gauge({ name: 'gantry_redis_up', help: '1 while Redis answers, else 0.', registers: [registry] }),
    unreadableJobs: new Counter({
      name: 'gantry_worker_unreadable_jobs_total',
      help: 'Jobs that did not match the job contract, by kind (inference, load), reason (contract_version, malformed) and outcome (answered: their callers got an error at once; unanswered: no reply address could be read).',
      labelNames: ['kind', 'reason', 'outcome'] as const,
      registers: [registry],
    }),
    fencedJobs: new Counter({
      name: 'gantry_worker_fenced_jobs_total',
      help: 'Jobs this worker dropped because it had lost their lock (its event loop stalled past GANTRY_JOB_LOCK_MS) and another worker may run them: not run, counted or answered here. By kind and stage (before_run, before_answer).',
      labelNames: ['kind', 'stage'] as const,
      registers: [registry],
    }),
    jobLockChecks: new Counter({
      name: 'gantry_worker_job_lock_checks_total',
      help: 'Redis round trips made to confirm a job lock is still held; only jobs older than half of GANTRY_JOB_LOCK_MS need one, so it stays 0 while jobs are short.',
      registers: [registry],
    }),
    activeModelQueues: new Gauge({
      name: 'gantry_worker_active_model_queues',
      help: 'Model queues this worker consumes now, by kind (sync; async: jobs and batches), each holding one blocking Redis connection; at most GANTRY_MAX_ACTIVE_MODEL_QUEUES of each kind.',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    waitingModelQueues: new Gauge({
      name: 'gantry_worker_waiting_model_queues',
      help: 'Models announced with work that wait for a free consumer slot (all GANTRY_MAX_ACTIVE_MODEL_QUEUES in use), by kind (sync, async).',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    consumerConnectionFailures: new Counter({
      name: 'gantry_worker_consumer_connection_failures_total',
      help: 'Model queue consumers that could not get a Redis connection (Redis maxclients reached, Redis away); their queued requests are answered 503.',
      registers: [registry],
    }),
    blobVerifications: new Counter({
      name: 'gantry_worker_blob_verifications_total',
      help: 'Model files this worker hashed against their sha256 (once per blob per worker process, and again after an unload), by outcome: ok, mismatch (corrupted in the store), missing.',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    blobFetchedBytes: new Counter({
      name: 'gantry_worker_blob_fetched_bytes_total',
      help: 'Bytes of model files this worker copied from a remote model store (S3) into its local cache.',
      registers: [registry],
    }),
    modelCacheBytes: new Gauge({
      name: 'gantry_worker_model_cache_bytes',
      help: "Bytes of model-file copies in this worker's local cache (remote stores only), bounded by GANTRY_MODEL_CACHE_BYTES.",
      registers: [registry],
    }),
    modelCacheEvictions: new Counter({
      name: 'gantry_worker_model_cache_evictions_total',
      help: 'Model-file copies this worker removed from its local cache to stay within GANTRY_MODEL_CACHE_BYTES (only copies no loaded session used).',
      registers: [registry],
    }),
    warmups: new Counter({
      name: 'gantry_worker_warmups_total',
      help: "Warm-ups this worker ran (once per loaded sessions and sample), by input (the version's sample, or zero-filled inputs) and status: ok; skipped (zero-filled inputs failed, the version serves); failed (the sample failed, the version is UNAVAILABLE).",
      labelNames: ['input', 'status'] as const,
      registers: [registry],
    }),
    warmupDuration: new Histogram({
      name: 'gantry_worker_warmup_duration_seconds',
      help: 'Time one warm-up took on all instances of a model, by input (sample or zero-filled).',
      labelNames: ['input'] as const,
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    sessionEvictions: new Counter({
      name: 'gantry_worker_session_evictions_total',
      help: 'Loaded models this worker released to make room for another, by reason: memory (GANTRY_WORKER_SESSION_MEMORY_BYTES), threads (GANTRY_MAX_THREADS_PER_WORKER), count (the most models kept loaded).',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    sessionMemory: new Gauge({
      name: 'gantry_worker_session_memory_bytes',
      help: "Estimated bytes this worker's loaded sessions hold (each model file's size x its instances), counted against GANTRY_WORKER_SESSION_MEMORY_BYTES.",
      registers: [registry],
    }),
    sessionMemoryBudget: new Gauge({
      name: 'gantry_worker_session_memory_budget_bytes',
      help: 'GANTRY_WORKER_SESSION_MEMORY_BYTES as this worker applies it (its default resolved).',
      registers: [registry],
    }),
  };
}

export type WorkerMetrics = ReturnType<typeof createWorkerMetrics>;
