import type { Redis } from 'ioredis';
import type { Config } from '../config.js';
import type { InferenceProducer } from '../queue/inference-producer.js';
import type { ModelConfigStore } from '../registry/model-config.js';
import type { BlobCollector } from '../registry/blob-collector.js';
import type { ModelRegistry } from '../registry/model-registry.js';
import type { ModelAliases } from '../registry/model-aliases.js';
import type { ModelTraffic } from '../registry/model-traffic.js';
import type { ModelStore } from '../registry/model-store.js';
import type { RegistryGuardian } from '../registry/registry-guardian.js';
import type { ApiMetrics } from '../metrics/api-metrics.js';
import type { InflightBytes } from '../limits/inflight-bytes.js';
import type { KeyStore } from '../auth/key-store.js';
import type { TenantStore } from '../auth/tenant-store.js';
import type { Authenticator } from '../auth/authenticator.js';
import type { LimitStore } from '../limits/limit-store.js';
import type { UsageMeter } from '../usage/usage-meter.js';
import type { ModelCatalog } from '../inference/model-catalog.js';
import type { InferenceService } from '../inference/inference-service.js';
import type { LiveWorkers } from '../workers-view/live-workers.js';
import type { DurableProducer } from '../jobs/durable-producer.js';
import type { JobService } from '../jobs/job-service.js';
import type { JobStore } from '../jobs/job-store.js';
import type { WebhookAllowList } from '../webhooks/webhook-target.js';
import type { WebhookQueue } from '../webhooks/webhook-queue.js';

/** What the routes need, built once by the API role and handed to each route plugin. */
export interface ApiServices {
  config: Config;
  redis: Redis;
  registry: ModelRegistry;
  catalog: ModelCatalog;
  /** Version aliases (`production`, `canary`, …), one store for the routes and the catalog. */
  aliases: ModelAliases;
  /** Traffic policies (canary splits, shadow), one store for the routes and the catalog. */
  traffic: ModelTraffic;
  /** Per-model run-time configuration (batching, instances, threads, …). */
  modelConfigs: ModelConfigStore;
  store: ModelStore;
  producer: InferenceProducer;
  /** The data plane: every inference call, whichever transport it came on, runs through it. */
  inference: InferenceService;
  /** Queues asynchronous work (jobs, batch chunks) that survives every process: nothing waits for it here. */
  durable: DurableProducer;
  /** Asynchronous jobs: created, read, cancelled (src/jobs/job-service.ts). */
  jobs: JobService;
  /** The jobs' records in Redis (what the routes read beside the service: webhook deliveries). */
  jobStore: JobStore;
  /** Queues the webhooks of jobs and batches this process finishes (a cancel); the dispatcher delivers them. */
  webhooks: WebhookQueue;
  /** GANTRY_WEBHOOK_ALLOW, parsed once: which non-public callback addresses are allowed. */
  webhookAllowList: WebhookAllowList;
  /** The live workers and the models they serve (worker pools), read about once a second. */
  liveWorkers: LiveWorkers;
  metrics: ApiMetrics;
  /** Bytes of inference requests this process holds (GANTRY_MAX_INFLIGHT_BYTES): one budget for REST bodies and gRPC messages. */
  inflightBytes: InflightBytes;
  /** Tenants' and keys' limits (rates, quotas, caps), cached per process. */
  limits: LimitStore;
  /** Meters inference requests per tenant, key and model; flushed to Redis about every second and at close. */
  usage: UsageMeter;
  /** Whether the registry in Redis is this store's and intact (readiness says why not). */
  guardian: RegistryGuardian;
  /** The only remover of model files; told of deletions so it runs when their grace period ends. */
  blobCollector: BlobCollector;
  /** Tenants and API keys in Redis (the control plane's routes). */
  tenants: TenantStore;
  keys: KeyStore;
  /** Resolves API keys to principals; undefined when GANTRY_AUTH=off. */
  authenticator: Authenticator | undefined;
  /** False once shutdown began: readiness turns false and new work is refused. */
  isAcceptingWork: () => boolean;
}
