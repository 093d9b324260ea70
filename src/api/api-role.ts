import { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { Config } from '../config.js';
import { defaultTenant } from '../auth/principal.js';
import { loggerOptions, type Logger } from '../logger.js';
import { createApiMetrics, type ApiMetrics, type ApiMetricSources } from '../metrics/api-metrics.js';
import { InferenceProducer } from '../queue/inference-producer.js';
import { DurableProducer } from '../jobs/durable-producer.js';
import { JobService } from '../jobs/job-service.js';
import { JobStore } from '../jobs/job-store.js';
import { parseWebhookAllowList } from '../webhooks/webhook-target.js';
import { WebhookQueue } from '../webhooks/webhook-queue.js';
import { WebhookDispatcher, webhookDispatcherOptions } from '../webhooks/webhook-dispatcher.js';
import type { WebhookSource } from '../webhooks/webhook-source.js';
import { createWebhookMetrics } from '../metrics/webhook-metrics.js';
import { describeJobWebhook } from '../jobs/job-webhook.js';
import { BatchStore, describeBatchWebhook } from '../jobs/batch-store.js';
import { asyncInferenceQueueName, inferenceQueueName, tenantIndexKey, type WorkKind } from '../redis-keys.js';
import { createRedis, redisEndpointSettings, waitForReady } from '../queue/redis-connection.js';
import { ReplyListener } from '../queue/reply-listener.js';
import { BlobCollector } from '../registry/blob-collector.js';
import { ModelConfigStore } from '../registry/model-config.js';
import { ModelRegistry } from '../registry/model-registry.js';
import { modelStates } from '../registry/model-state.js';
import { ModelAliases } from '../registry/model-aliases.js';
import { RoutingRecorder } from '../registry/routing-records.js';
import { ModelTraffic } from '../registry/model-traffic.js';
import { createModelStore } from '../registry/model-store-factory.js';
import { loadRestoredVersions } from '../registry/registry-rebuild.js';
import { RegistryGuardian } from '../registry/registry-guardian.js';
import { warnAboutRedisPersistence } from '../registry/redis-persistence.js';
import { errors } from '../errors.js';
import type { AdminKeyOutcome } from '../auth/admin-key.js';
import { logAdminKey } from '../auth/admin-key-notice.js';
import { startControlPlane } from '../auth/control-plane.js';
import { LimitStore } from '../limits/limit-store.js';
import { UsageMeter } from '../usage/usage-meter.js';
import { buildApp } from './app.js';
import { ModelCatalog } from '../inference/model-catalog.js';
import { InferenceService } from '../inference/inference-service.js';
import { LiveWorkers } from '../workers-view/live-workers.js';
import { InflightBytes } from '../limits/inflight-bytes.js';
import type { ApiServices } from './services.js';
import { startGrpcEndpoint, type GrpcEndpoint } from '../grpc/grpc-endpoint.js';

/**
 * The API role: the HTTP server, its Redis connections (a fail-fast producer and a subscriber for replies
 * and registry events), and an orderly shutdown.
 */
export class ApiRole {
  readonly app: FastifyInstance;
  /** The data plane every transport calls (the REST routes through `app`; tests call it directly). */
  readonly inference: InferenceService;
  private readonly redis: Redis;
  private readonly subscriber: Redis;
  private readonly replies: ReplyListener;
  private readonly producer: InferenceProducer;
  private readonly guardian: RegistryGuardian;
  private readonly blobCollector: BlobCollector;
  private accepting = true;
  private stopControlPlane: () => void = () => undefined;
  /** Delivers the webhooks of finished jobs and batches (started by listen, closed by close). */
  private webhooks: StartableWebhooks | undefined;
  private closing: Promise<void> | undefined;
  private readonly services: ApiServices;
  private readonly logger: Logger;
  private grpc: GrpcEndpoint | undefined;

  private constructor(app: FastifyInstance, services: ApiServices, subscriber: Redis, replies: ReplyListener, logger: Logger) {
    this.app = app;
    this.services = services;
    this.logger = logger;
    this.inference = services.inference;
    this.redis = services.redis;
    this.subscriber = subscriber;
    this.replies = replies;
    this.producer = services.producer;
    this.guardian = services.guardian;
    this.blobCollector = services.blobCollector;
  }

  /**
   * @param onAdminKey told what start-up did about the admin key (a generated key is shown once: the CLI prints
   *   it); by default a generated key goes to the log.
   */
  static async create(
    config: Config & { REDIS_URL: string },
    logger: Logger,
    onAdminKey: (outcome: AdminKeyOutcome) => void = (outcome) => logAdminKey(outcome, logger),
  ): Promise<ApiRole> {
    const prefix = config.GANTRY_QUEUE_PREFIX;
    const redis = createRedis(config.REDIS_URL, 'producer', 'api', redisEndpointSettings(config));
    const subscriber = createRedis(config.REDIS_URL, 'consumer', 'api-subscriber', redisEndpointSettings(config));
    for (const client of [redis, subscriber]) client.on('error', (error) => logger.warn({ err: error.message }, 'redis connection error'));
    const store = await createModelStore(config, {
      maxStoreBytes: config.GANTRY_MAX_STORE_BYTES,
      minFreeDiskBytes: config.GANTRY_MIN_FREE_DISK_BYTES,
      // Called only once uploads run, by when `metrics` exists.
      onLimitRejection: (limit) => metrics.limitRejections.inc({ limit }),
    });
    await store.init();
    const records = store.registryRecords(prefix);
    // Assigned just below; version numbers are handed out only while the guardian says the registry is intact.
    let guardian: RegistryGuardian | undefined;
    const registry = new ModelRegistry(redis, prefix, { records, deploymentId: () => guardian?.deploymentId() });
    const modelConfigs = new ModelConfigStore(redis, prefix, records);
    const routingRecorder = new RoutingRecorder(redis, prefix, records);
    const recordRouting = (model: string) => routingRecorder.record(model);
    const aliases = new ModelAliases(redis, prefix, recordRouting);
    const traffic = new ModelTraffic(redis, prefix, recordRouting);
    const catalog = new ModelCatalog(registry, modelConfigs, prefix, aliases, traffic);
    const replies = new ReplyListener(subscriber, redis, prefix, logger);
    await replies.start();
    await catalog.follow(subscriber);
    const metrics = createApiMetrics(scrapeSources(redis, registry, prefix));
    const liveWorkers = new LiveWorkers(redis, prefix, logger, (model) => metrics.unservedModelRequests.inc({ model }));
    const producer = new InferenceProducer(
      redis,
      replies,
      {
        prefix,
        maxRequestsPerJob: config.GANTRY_MAX_REQUESTS_PER_JOB,
        maxJobsInFlight: config.GANTRY_MAX_JOBS_IN_FLIGHT,
        maxQueuedBytesPerModel: config.GANTRY_MAX_QUEUED_BYTES_PER_MODEL,
        onLimitRejection: (limit) => metrics.limitRejections.inc({ limit }),
        liveWorkers,
      },
      logger,
    );
    // A deleted model (by any API process) leaves no per-model state here.
    catalog.onModelDeleted((name) => producer.dropModel(name));

    await waitForRedis(redis, logger);
    if (redis.status === 'ready') await warnAboutRedisPersistence(redis, logger);
    else redis.once('ready', () => void warnAboutRedisPersistence(redis, logger));
    guardian = new RegistryGuardian({
      redis,
      prefix,
      registry,
      records,
      store,
      logger,
      checkIntervalMs: config.GANTRY_REGISTRY_CHECK_INTERVAL_MS,
      loadRestored: (restored) =>
        loadRestoredVersions(restored, {
          modelConfigs,
          logger,
          requestLoad: (target) =>
            producer
              .requestLoad(target, config.GANTRY_LOAD_TIMEOUT_MS)
              .then((signature) => registry.recordSignature(target.model, target.version, signature).catch(() => undefined)),
        }),
      onLoss: () => metrics.registryLosses.inc(),
      onRestored: (count) => metrics.registryRestoredVersions.inc(count),
      onUnusableChange: (unusable) => metrics.registryLost.set(unusable ? 1 : 0),
    });
    await guardian.start();
    const registryGuardian = guardian;
    const blobCollector = new BlobCollector(redis, prefix, store, registry.blobReferences, {
      graceMs: config.GANTRY_BLOB_GC_GRACE_MS,
      intervalMs: config.GANTRY_BLOB_GC_INTERVAL_MS,
      isRegistryTrusted: () => registryGuardian.isTrusted(),
      onCollected: (blob) => {
        metrics.blobsCollected.inc();
        metrics.blobBytesCollected.inc(blob.size);
      },
      logger,
    });
    blobCollector.start();

    const controlPlane = await startControlPlane({ redis, subscriber, config, logger, onAdminKey });

    const usage = new UsageMeter(redis, {
      prefix,
      flushIntervalMs: config.GANTRY_USAGE_FLUSH_INTERVAL_MS,
      retentionDays: config.GANTRY_USAGE_RETENTION_DAYS,
      logger,
    });
    // Flushed once more when the app closes (plugins/usage-metering.ts), after the last request was answered.
    usage.start();

    let role: ApiRole | undefined;
    const isAcceptingWork = () => role?.accepting ?? false;
    const inference = new InferenceService({ catalog, producer, config, metrics, isAcceptingWork, liveWorkers });
    const durable = new DurableProducer(redis, prefix, logger);
    const jobStore = new JobStore(redis, prefix);
    const webhookQueue = new WebhookQueue(redis, prefix, logger);
    const jobs = new JobService({
      webhooks: webhookQueue,
      inference,
      durable,
      store: jobStore,
      config,
      onLimitRejection: (limit) => metrics.limitRejections.inc({ limit }),
      onCreated: (outcome) => metrics.asyncCreated.inc({ kind: 'job', outcome }),
    });
    const services: ApiServices = {
      config,
      redis,
      registry,
      catalog,
      aliases,
      traffic,
      modelConfigs,
      store,
      producer,
      durable,
      jobs,
      jobStore,
      webhooks: webhookQueue,
      webhookAllowList: parseWebhookAllowList(config.GANTRY_WEBHOOK_ALLOW),
      inference,
      liveWorkers,
      metrics,
      inflightBytes: new InflightBytes(config.GANTRY_MAX_INFLIGHT_BYTES),
      limits: new LimitStore(redis, prefix, { onRefreshError: (error) => logger.debug({ err: (error as Error).message }, 'could not refresh cached limits') }),
      usage,
      guardian,
      blobCollector,
      tenants: controlPlane.tenants,
      keys: controlPlane.keys,
      authenticator: controlPlane.authenticator,
      isAcceptingWork,
    };
    const app = await buildApp(services, { ...loggerOptions(config, 'api') });
    role = new ApiRole(app, services, subscriber, replies, logger);
    role.stopControlPlane = controlPlane.stop;
    role.webhooks = startableWebhooks(config, jobStore, metrics, logger, webhookQueue);
    return role;
  }

  async listen(host: string, port: number): Promise<string> {
    const address = await this.app.listen({ host, port });
    // Webhooks of finished jobs are delivered by API processes (egress from where the API runs), once it serves.
    await this.webhooks?.start();
    return address;
  }

  /**
   * Starts the Open Inference Protocol over gRPC on HOST:GANTRY_GRPC_PORT (nothing when it is 0), sharing the REST
   * plugins' limits and usage recorder. @returns the bound port, or undefined when gRPC is off.
   */
  async listenGrpc(): Promise<number | undefined> {
    this.grpc = await startGrpcEndpoint(this.services, this.app.requestAdmission, this.app.usageRecorder, this.logger);
    return this.grpc?.port;
  }

  /**
   * Shutdown: readiness goes false and new inferences are refused at once; requests already accepted get their
   * answers (bounded by the shutdown timeout); then connections close.
   */
  close(timeoutMs: number): Promise<void> {
    this.closing ??= (async () => {
      this.accepting = false;
      // gRPC takes no new calls from here; its calls in flight drain with the HTTP requests below.
      const grpcClosed = this.grpc?.close(timeoutMs);
      const deadline = Date.now() + timeoutMs;
      while (this.replies.pendingInferenceCount > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      this.replies.rejectAll(errors.shuttingDown());
      await grpcClosed;
      await this.guardian.stop();
      await this.blobCollector.stop();
      await this.app.close();
      this.stopControlPlane();
      await this.webhooks?.close();
      await this.producer.close();
      await this.services.durable.close();
      this.subscriber.disconnect();
      this.redis.disconnect();
    })();
    return this.closing;
  }
}

interface StartableWebhooks {
  start: () => Promise<void>;
  close: () => Promise<void>;
}

/**
 * The webhook dispatcher of this API process, on a connection of its own (BullMQ's consumer settings), with the
 * job and batch stores as its source of what to deliver. Made only when the API starts serving: an API that
 * never listens (tests, `gantry repair`) opens no connection for it.
 */
function startableWebhooks(
  config: Config & { REDIS_URL: string },
  jobStore: JobStore,
  metrics: ApiMetrics,
  logger: Logger,
  queue: WebhookQueue,
): StartableWebhooks {
  let started: { connection: Redis; dispatcher: WebhookDispatcher } | undefined;
  return {
    start: async () => {
      if (started !== undefined) return;
      const connection = createRedis(config.REDIS_URL, 'consumer', 'api-webhooks', redisEndpointSettings(config));
      connection.on('error', (error) => logger.warn({ connection: 'api-webhooks', err: error.message }, 'redis connection error'));
      const source: WebhookSource = {
        describe: (subject) =>
          subject.kind === 'job'
            ? describeJobWebhook(jobStore, subject.id, config.GANTRY_WEBHOOK_MAX_RESULT_BYTES)
            : describeBatchWebhook(connection, config.GANTRY_QUEUE_PREFIX, subject.id),
      };
      const dispatcher = new WebhookDispatcher(
        connection,
        source,
        { ...webhookDispatcherOptions(config), metrics: createWebhookMetrics(metrics.registry) },
        logger,
      );
      started = { connection, dispatcher };
      await dispatcher.start();
    },
    close: async () => {
      await started?.dispatcher.close();
      await queue.close();
      started?.connection.disconnect();
    },
  };
}

/** How long start-up waits for Redis before going on unready (the registry is then checked once it connects). */
const startupRedisWaitMs = 10_000;

/**
 * Waits (bounded) for the first connection, so the persistence and registry checks at start-up see Redis; an
 * API started before its Redis comes up still starts, unready, and checks once Redis is there.
 */
async function waitForRedis(redis: Redis, logger: Logger): Promise<void> {
  try {
    await waitForReady(redis, startupRedisWaitMs);
  } catch {
    logger.error(`Redis did not answer within ${startupRedisWaitMs} ms of start-up; the API stays unready until it does`);
  }
}

/**
 * Queue depths and model states, read from Redis when Prometheus scrapes rather than on a timer. The Queue
 * objects of models no longer listed are closed at the next scrape, so the map follows the registry.
 */
function scrapeSources(redis: Redis, registry: ModelRegistry, prefix: string): ApiMetricSources {
  const queues = new Map<string, Queue>();
  const queueFor = (model: string, kind: WorkKind) => {
    const name = kind === 'sync' ? inferenceQueueName(model) : asyncInferenceQueueName(model);
    let queue = queues.get(name);
    if (queue === undefined) {
      queue = new Queue(name, { connection: redis, prefix });
      queue.on('error', () => undefined);
      queues.set(name, queue);
    }
    return queue;
  };
  return {
    isRedisUp: () => redis.status === 'ready',
    pendingByModel: async () => {
      const pending = new Map<string, number>();
      const models = await registry.listModelNames();
      const listed = new Set(models.flatMap((model) => [inferenceQueueName(model), asyncInferenceQueueName(model)]));
      for (const [name, queue] of queues) {
        if (listed.has(name)) continue;
        queues.delete(name);
        queue.close().catch(() => undefined);
      }
      // Both queues of a model: asynchronous work waiting is work an autoscaler should see too.
      for (const model of models) {
        let total = 0;
        for (const kind of ['sync', 'async'] as const) {
          const counts = await queueFor(model, kind).getJobCounts('waiting', 'prioritized', 'active');
          total += (counts.waiting ?? 0) + (counts.prioritized ?? 0) + (counts.active ?? 0);
        }
        pending.set(model, total);
      }
      return pending;
    },
    unfinishedWork: async () => {
      const jobs = await new JobStore(redis, prefix).unfinished(undefined, { prune: true });
      // Batches are few per tenant (GANTRY_MAX_BATCHES_PER_TENANT unfinished, the finished for their retention).
      const tenants = [defaultTenant, ...(await redis.smembers(tenantIndexKey(prefix))).filter((tenant) => tenant !== defaultTenant)];
      const batches = await new BatchStore(redis, prefix).unfinishedAcross(tenants);
      return new Map([
        ['job', jobs],
        ['batch', batches],
      ]);
    },
    versionsByState: async () => {
      const states = new Map<string, number>(modelStates.map((state) => [state, 0]));
      for (const model of await registry.listModelNames()) {
        for (const version of await registry.listVersions(model)) states.set(version.state, (states.get(version.state) ?? 0) + 1);
      }
      return states;
    },
  };
}
