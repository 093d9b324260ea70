import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { Worker as BullWorker, WaitingError, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../config.js';
import { errors } from '../errors.js';
import type { Logger } from '../logger.js';
import { createWorkerMetrics, type WorkerMetrics } from '../metrics/worker-metrics.js';
import { asyncInferenceQueueName, controlQueueName, inferenceQueueName, type WorkKind } from '../redis-keys.js';
import { loadJobName } from '../queue/model-loader.js';
import { createRedis, redisEndpointSettings } from '../queue/redis-connection.js';
import { DoorbellListener } from '../queue/work-doorbell.js';
import { ModelRegistry } from '../registry/model-registry.js';
import { followRegistryEvents, type RegistryEvent } from '../registry/registry-events.js';
import { addStatistics } from '../registry/model-statistics.js';
import { createModelStore } from '../registry/model-store-factory.js';
import type { ModelStore } from '../registry/model-store.js';
import { WarmupSampleStore } from '../registry/warmup-samples.js';
import { patternsMatch, servesAllModels } from '../workers-view/model-patterns.js';
import { WorkerAnnouncer } from '../workers-view/worker-announcement.js';
import { VersionWarmupSamples } from './version-warmup-samples.js';
import { resolveExecutionProviders } from './execution-device.js';
import { handleInferenceJob } from './inference-job-handler.js';
import { handleLoadJob } from './load-job-handler.js';
import { ModelConsumerPool } from './model-consumer-pool.js';
import { modelsWithQueuedWork } from './queued-work-scan.js';
import { sessionMemoryBudget } from './session-memory-budget.js';
import { hasUnendedThreads } from './model-instances.js';
import { recordRunStrikes } from './run-strikes.js';
import { RunWatchdog, type StoppedWork } from './run-watchdog.js';
import { BlobCache } from './blob-cache.js';
import { SessionCache } from './session-cache.js';
import { shedQueuedJobs } from './shed-queued-jobs.js';
import { StatisticsBuffer } from './statistics-buffer.js';
import { CompletionGatedStatistics } from './completion-gated-statistics.js';
import { DurableResults } from '../jobs/durable-writer.js';
import { jobResultsWriter } from '../jobs/job-results.js';
import { batchResultsWriter } from '../jobs/batch-results.js';
import { WebhookQueue } from '../webhooks/webhook-queue.js';
import { UsageMeter } from '../usage/usage-meter.js';
import type { ComputeUsage } from './inference-processor.js';
import { endWorkerProcess } from './worker-exit.js';
import { WorkerRestart } from './worker-restart.js';
import { startWorkerHttpServer, type WorkerHttpServer } from './worker-http-server.js';

/** A model queue's consumer is kept at least this long before it may give its slot to a waiting model. */
const consumerMinHoldMs = 2000;
/** How long a new model queue consumer may take to connect before its queued requests are answered 503. */
const consumerConnectTimeoutMs = 5000;

/**
 * Load jobs one worker runs at once. Loads wait on instance threads, not on this thread, so many fit; and since
 * each is bounded by GANTRY_LOAD_DEADLINE_MS, models that never finish loading cannot hold every slot for
 * long: other callers' uploads still load (they used to share GANTRY_WORKER_CONCURRENCY's 4 slots).
 */
const controlConcurrency = 32;

/**
 * Most models kept loaded whatever their size. GANTRY_WORKER_SESSION_MEMORY_BYTES and GANTRY_MAX_THREADS_PER_WORKER
 * (every model holds at least one thread) bound them first; this only bounds the bookkeeping.
 */
const maxLoadedModels = 1024;

/**
 * The worker role: BullMQ consumers for the model queues that have work (announced on the work doorbell; see
 * model-consumer-pool.ts) plus, on a worker serving every model, one for the shared load queue. A worker pool
 * (GANTRY_WORKER_MODELS) consumes only its models' queues, inference and load jobs alike, and announces its
 * patterns (workers-view/worker-announcement.ts) so the API can tell a model no live worker serves. Its Redis connections are bounded by
 * GANTRY_MAX_ACTIVE_MODEL_QUEUES, whatever the number of models. The main thread only talks to Redis and hands
 * tensors to instance threads; onnxruntime never runs here.
 */
export class WorkerRole {
  private readonly connection: Redis;
  private readonly commands: Redis;
  private readonly subscriber: Redis;
  /** The one blocking connection that reads the work doorbell. */
  private readonly doorbellConnection: Redis;
  private readonly doorbell: DoorbellListener;
  /** The consumers of each model's synchronous queue, and of its asynchronous one (slots of their own). */
  private readonly consumers: Record<WorkKind, ModelConsumerPool>;
  private readonly registry: ModelRegistry;
  /** Opened by start() (the S3 store's SDK is imported only when asked for). */
  private store!: ModelStore;
  private readonly metrics: WorkerMetrics;
  private readonly statistics: StatisticsBuffer;
  /** Inference statistics and asynchronous usage wait here until BullMQ has completed their job (completion-gated-statistics.ts). */
  private readonly completionGate: CompletionGatedStatistics;
  /** Where asynchronous jobs' and batch lines' answers are written (src/jobs/). */
  private readonly durableResults: DurableResults;
  /** Where the webhooks of jobs and batches this worker finished are queued (API processes deliver them). */
  private readonly webhookQueue: WebhookQueue;
  /** Meters the compute of asynchronous work (synchronous requests are metered by the API that answered them). */
  private readonly usage: UsageMeter;
  private sessions!: SessionCache;
  private blobs: BlobCache | undefined;
  private readonly warmupSamples: VersionWarmupSamples;
  private controlConsumer: BullWorker | undefined;
  private httpServer: WorkerHttpServer | undefined;
  private ready = false;
  private closing: Promise<void> | undefined;
  private readonly watchdog: RunWatchdog;
  private readonly restart: WorkerRestart;
  private readonly announcer: WorkerAnnouncer;
  /** GANTRY_WORKER_MODELS: the models this worker serves. */
  private readonly patterns: readonly string[];
  /** Jobs taken and not yet completed or failed in Redis (what a restart waits for), as queue/id. */
  private readonly activeJobs = new Set<string>();

  constructor(
    private readonly config: Config & { REDIS_URL: string },
    private readonly logger: Logger,
  ) {
    this.connection = createRedis(config.REDIS_URL, 'consumer', 'worker-bullmq', redisEndpointSettings(config));
    this.commands = createRedis(config.REDIS_URL, 'consumer', 'worker-commands', redisEndpointSettings(config));
    this.subscriber = createRedis(config.REDIS_URL, 'consumer', 'worker-events', redisEndpointSettings(config));
    this.doorbellConnection = createRedis(config.REDIS_URL, 'consumer', 'worker-doorbell', redisEndpointSettings(config));
    for (const client of [this.connection, this.commands, this.subscriber, this.doorbellConnection]) {
      client.on('error', (error) => this.logger.warn({ connection: client.options.connectionName, err: error.message }, 'redis connection error'));
    }
    this.registry = new ModelRegistry(this.commands, config.GANTRY_QUEUE_PREFIX);
    this.patterns = config.GANTRY_WORKER_MODELS;
    this.announcer = new WorkerAnnouncer(this.commands, config.GANTRY_QUEUE_PREFIX, logger);
    this.warmupSamples = new VersionWarmupSamples(this.registry);
    this.metrics = createWorkerMetrics();
    this.commands.on('ready', () => this.metrics.redisUp.set(1));
    this.commands.on('close', () => this.metrics.redisUp.set(0));
    // A consumer's idle period must outlast a few lock periods, so the jobs of a worker that died are found
    // stalled (and re-run) by a consumer still open here.
    const idleMs = Math.max(config.GANTRY_MODEL_QUEUE_IDLE_MS, 3 * config.GANTRY_JOB_LOCK_MS);
    const pool = (kind: WorkKind) =>
      new ModelConsumerPool(
        { maxActive: config.GANTRY_MAX_ACTIVE_MODEL_QUEUES, idleMs, minHoldMs: consumerMinHoldMs, connectTimeoutMs: consumerConnectTimeoutMs },
        {
          open: (model) => this.openModelConsumer(model, kind),
          unserveable: (model, reason) => this.onUnserveable(model, reason),
          sizes: (active, waiting) => {
            this.metrics.activeModelQueues.set({ kind }, active);
            this.metrics.waitingModelQueues.set({ kind }, waiting);
          },
        },
        logger,
      );
    this.consumers = { sync: pool('sync'), async: pool('async') };
    this.doorbell = new DoorbellListener(this.doorbellConnection, config.GANTRY_QUEUE_PREFIX, (models, kind) => void this.onRung(models, kind), logger, idleMs);
    const statisticsRedis = this.commands;
    this.statistics = new StatisticsBuffer(
      (model, version, increments, lastInferenceMs) => addStatistics(statisticsRedis, config.GANTRY_QUEUE_PREFIX, model, version, increments, lastInferenceMs),
      logger,
    );
    this.completionGate = new CompletionGatedStatistics(this.statistics);
    this.webhookQueue = new WebhookQueue(this.connection, config.GANTRY_QUEUE_PREFIX, logger);
    this.usage = new UsageMeter(this.commands, {
      prefix: config.GANTRY_QUEUE_PREFIX,
      flushIntervalMs: config.GANTRY_USAGE_FLUSH_INTERVAL_MS,
      retentionDays: config.GANTRY_USAGE_RETENTION_DAYS,
      logger,
    });
    this.durableResults = new DurableResults(
      { job: jobResultsWriter(this.commands, config.GANTRY_QUEUE_PREFIX), batch: batchResultsWriter(this.commands, config.GANTRY_QUEUE_PREFIX) },
      this.webhookQueue,
    );
    this.watchdog = new RunWatchdog(
      { maxRunMs: config.GANTRY_MAX_RUN_MS, loadDeadlineMs: config.GANTRY_LOAD_DEADLINE_MS },
      { runStopped: errors.runStopped, loadStopped: errors.loadStopped },
      (stopped) => this.onStopped(stopped),
    );
    this.restart = new WorkerRestart(
      {
        stopTakingJobs: () => this.stopTakingJobs(),
        activeJobs: () => this.activeJobs.size,
        failStranded: () =>
          this.sessions.rejectQueuedOfUnhealthy(errors.serverBusy('the worker is restarting to stop a model that ran past its limit', 'GANTRY_MAX_RUN_MS')),
        flush: async () => {
          await this.statistics.flush();
          await this.usage.flush();
        },
        exit: (reason) => endWorkerProcess(reason, { restart: true }),
      },
      logger,
    );
  }

  /** A run or load the watchdog stopped: its callers have their answer; strikes are counted; the worker restarts. */
  private onStopped(stopped: StoppedWork): void {
    const limit = stopped.kind === 'run' ? 'run_deadline' : 'load_deadline';
    this.metrics.limitTrips.inc({ limit });
    const requesters = stopped.requesters.map(({ model, version }) => ({ model, version }));
    this.logger.error(
      { model: requesters[0]?.model, version: requesters[0]?.version, requesters, sha256: stopped.label, elapsedMs: Math.round(stopped.elapsedMs), limit },
      stopped.kind === 'run' ? 'run stopped: it ran past GANTRY_MAX_RUN_MS' : 'load stopped: it ran past GANTRY_LOAD_DEADLINE_MS',
    );
    if (stopped.kind === 'run') {
      this.restart.keep(
        recordRunStrikes(this.registry, stopped.requesters, {
          maxStrikes: this.config.GANTRY_MAX_RUN_STRIKES,
          limitMs: this.config.GANTRY_MAX_RUN_MS,
          logger: this.logger,
        }),
      );
    }
    this.restartWorker(`a ${stopped.kind} of blob ${stopped.label} ran past its limit`);
  }

  private restartWorker(reason: string): void {
    // A shutdown under way ends the process itself (close() sees the stuck thread).
    if (this.closing !== undefined) return;
    this.ready = false;
    this.restart.begin(reason);
  }

  private async stopTakingJobs(): Promise<void> {
    await Promise.allSettled([this.consumers.sync.pauseAll(), this.consumers.async.pauseAll(), this.controlConsumer?.pause(true)]);
  }

  async start(): Promise<void> {
    this.store = await createModelStore(this.config);
    await this.store.init();
    const device = await resolveExecutionProviders(this.config.GANTRY_DEVICE, this.logger);
    this.metrics.workerInfo.set({ device: device.name }, 1);
    const memoryBudget = sessionMemoryBudget(this.config.GANTRY_WORKER_SESSION_MEMORY_BYTES);
    this.metrics.sessionMemoryBudget.set(memoryBudget);
    const optimizedDirectory = path.join(this.config.GANTRY_DATA_DIR, 'cache', 'optimized', hostKind());
    this.blobs = new BlobCache(this.store, {
      directory: path.join(this.config.GANTRY_DATA_DIR, 'cache', 'blobs'),
      maxBytes: this.config.GANTRY_MODEL_CACHE_BYTES,
      // Assigned just below, before any blob is asked for.
      isInUse: (sha256) => this.sessions.usesBlob(sha256),
      derivedDirectory: optimizedDirectory,
      onVerification: (outcome) => this.metrics.blobVerifications.inc({ outcome }),
      onFetch: (bytes) => {
        this.metrics.blobFetchedBytes.inc(bytes);
        this.metrics.modelCacheBytes.set(this.blobs!.cachedBytes);
      },
      onEviction: () => {
        this.metrics.modelCacheEvictions.inc();
        this.metrics.modelCacheBytes.set(this.blobs!.cachedBytes);
      },
      logger: this.logger,
    });
    this.sessions = new SessionCache(
      this.blobs,
      {
        maxLoadedModels,
        maxSessionBytes: memoryBudget,
        onEviction: (reason) => this.metrics.sessionEvictions.inc({ reason }),
        onMemoryChange: (bytes) => this.metrics.sessionMemory.set(bytes),
        onMemoryBudgetRefused: () => this.metrics.limitTrips.inc({ limit: 'session_memory' }),
        onWarmup: (input, report, seconds) => {
          this.metrics.warmups.inc({ input, status: report.status });
          this.metrics.warmupDuration.observe({ input }, seconds);
        },
        executionProviders: device.executionProviders,
        // Optimized graphs can hold CPU-specific kernels, and the data dir may be shared by hosts with different
        // CPUs: each kind of host gets its own folder.
        cacheDirectory: optimizedDirectory,
        isolationDirectory: path.join(this.config.GANTRY_DATA_DIR, 'blobs', 'loading'),
        maxThreads: this.config.GANTRY_MAX_THREADS_PER_WORKER,
        watchdog: this.watchdog,
        onStuckUnload: (sha256) => this.restartWorker(`a deleted or unloaded model (blob ${sha256}) was still running`),
        onThreadBudgetRefused: () => this.metrics.limitTrips.inc({ limit: 'thread_budget' }),
        warmupSamples: new WarmupSampleStore(this.store.warmupSamples),
      },
      this.logger,
    );
    await this.sessions.removeStaleLoads();
    this.httpServer = await startWorkerHttpServer({
      host: this.config.HOST,
      port: this.config.GANTRY_WORKER_METRICS_PORT,
      metrics: this.metrics,
      isReady: () => this.ready && this.commands.status === 'ready',
      isRedisUp: () => this.commands.status === 'ready',
    });
    this.logger.info({ port: this.httpServer.port }, 'worker metrics and health listening');

    this.watchdog.start();
    // The shared load queue carries loads of any model: only a worker serving every model may take them. A pool
    // gets its models' loads on their own queues (queue/model-loader.ts).
    if (servesAllModels(this.patterns)) this.controlConsumer = this.createConsumer(controlQueueName, (job) => this.handleLoad(job), controlConcurrency);
    await followRegistryEvents(this.subscriber, this.config.GANTRY_QUEUE_PREFIX, (event) => {
      // An unreadable event changes nothing here: sessions are keyed by sha256 and age out of the LRU anyway.
      if (event !== undefined) this.onRegistryEvent(event);
    });
    this.consumers.sync.start();
    this.consumers.async.start();
    this.doorbell.start();
    this.usage.start();
    await this.announcer.start(this.patterns, device.name);
    void this.consumeQueuedWork();
    this.ready = true;
    this.logger.info({ device: device.name, models: this.patterns, workerId: this.announcer.id }, 'worker started');
  }

  /** Opens the queues of served models that already hold jobs (older than the doorbell's look-back: queued-work-scan.ts). */
  private async consumeQueuedWork(): Promise<void> {
    try {
      for (const kind of ['sync', 'async'] as const) {
        const models = await modelsWithQueuedWork(this.commands, this.config.GANTRY_QUEUE_PREFIX, this.registry, this.patterns, kind);
        if (models.size > 0 && this.closing === undefined) this.consumers[kind].rung(models);
      }
    } catch (error) {
      // Their next job rings the doorbell anyway; only work queued long ago waits for it.
      this.logger.warn({ err: (error as Error).message }, 'could not look for jobs queued before this worker started');
    }
  }

  /** The compute of asynchronous work, metered to its owner (its request counted when it was made). */
  private meterCompute(usage: ComputeUsage): void {
    this.usage.record(
      {
        tenant: usage.tenant,
        keyId: usage.keyId,
        model: usage.model,
        version: usage.version,
        outcome: 'success',
        rows: usage.rows,
        computeNs: usage.computeNs,
        bytesIn: 0,
        bytesOut: 0,
      },
      Date.now(),
      0,
    );
  }

  private handleLoad(job: Job): Promise<void> {
    return handleLoadJob(job, this.dependencies(), { lockDurationMs: this.config.GANTRY_JOB_LOCK_MS });
  }

  private dependencies() {
    return {
      prefix: this.config.GANTRY_QUEUE_PREFIX,
      redis: this.commands,
      sessions: this.sessions,
      registry: this.registry,
      warmupSamples: this.warmupSamples,
      metrics: this.metrics,
      statistics: this.statistics,
      logger: this.logger,
      durable: this.durableResults,
    };
  }

  private createConsumer(queueName: string, processor: (job: Job) => Promise<void>, concurrency = this.config.GANTRY_WORKER_CONCURRENCY): BullWorker {
    const counted = async (job: Job) => {
      const key = `${queueName}/${job.id}`;
      this.activeJobs.add(key);
      try {
        return await processor(job);
      } catch (error) {
        // A job fenced off (another worker holds its lock now) is neither completed nor failed by this worker, so
        // no event would ever take it off the list a restart waits for.
        if (error instanceof WaitingError) this.activeJobs.delete(key);
        throw error;
      }
    };
    // The main connection is shared; BullMQ gives each consumer a blocking connection of its own.
    const consumer = new BullWorker(queueName, counted, {
      connection: this.connection,
      prefix: this.config.GANTRY_QUEUE_PREFIX,
      concurrency,
      // How long (seconds) an idle consumer blocks waiting for a job. Short, because closing waits for the
      // blocking call to return: BullMQ's 5 s default made every shutdown last that long.
      drainDelay: 1,
      // onnxruntime never runs on this thread, so locks are renewed on time and can be short: the jobs of a
      // worker that died are found and re-run by another within a lock period or two, not after 30 s.
      lockDuration: this.config.GANTRY_JOB_LOCK_MS,
      stalledInterval: this.config.GANTRY_JOB_LOCK_MS,
      // A job is re-run after each crash of its worker; processInferenceJob stops it (with an answer) once it has
      // started GANTRY_MAX_JOB_ATTEMPTS times, so BullMQ must not give up silently before that.
      maxStalledCount: this.config.GANTRY_MAX_JOB_ATTEMPTS,
    });
    consumer.on('error', (error) => this.logger.warn({ queue: queueName, err: error.message }, 'queue consumer error'));
    // BullMQ also reports jobs it failed itself (stalled too often), which this process may never have taken.
    consumer.on('failed', (job, error) => {
      this.activeJobs.delete(`${queueName}/${job?.id}`);
      if (job !== undefined) this.completionGate.discard(job);
      this.logger.warn({ queue: queueName, jobId: job?.id, err: error.message }, 'job failed');
    });
    // Emitted once the job is recorded as completed in Redis: from then on it is never re-run.
    consumer.on('completed', (job) => {
      this.activeJobs.delete(`${queueName}/${job.id}`);
      this.completionGate.commit(job);
    });
    return consumer;
  }

  private onRegistryEvent(event: RegistryEvent): void {
    // A version's warm-up sample is read again after any change to it (a reload may come with a new one).
    if (event.type === 'version-changed' || event.type === 'version-deleted' || event.type === 'version-created')
      this.warmupSamples.forget(event.name, event.version);
    if (event.type === 'model-deleted') this.warmupSamples.forget(event.name);
    if (event.type === 'model-deleted') for (const kind of ['sync', 'async'] as const) this.consumers[kind].forget(event.name);
    // Sessions of deleted or unloaded versions are released at once instead of waiting for the LRU.
    if (event.type === 'version-deleted' && event.sha256 !== undefined) {
      this.sessions.evict(event.sha256);
      void this.blobs?.discard(event.sha256);
    }
    if (event.type === 'model-unloaded') void this.evictModel(event.name);
  }

  private async evictModel(name: string): Promise<void> {
    try {
      for (const version of await this.registry.listVersions(name)) this.sessions.evict(version.sha256);
    } catch (error) {
      this.logger.warn({ model: name, err: (error as Error).message }, 'could not release the sessions of an unloaded model');
    }
  }

  /** Models announced with work: consumed if this worker serves them and they are registered (a ring for a deleted model opens nothing). */
  private async onRung(rung: Set<string>, kind: WorkKind): Promise<void> {
    if (this.closing !== undefined || this.restart.restarting) return;
    const models = new Set([...rung].filter((model) => patternsMatch(this.patterns, model)));
    if (models.size === 0) return;
    const unknown = [...models].filter((model) => !this.consumers[kind].isOpen(model));
    try {
      const registered = await Promise.all(unknown.map((model) => this.registry.modelExists(model)));
      unknown.forEach((model, index) => {
        if (!registered[index]) models.delete(model);
      });
    } catch (error) {
      // Redis is away: the consumers opened anyway wait for it like every other consumer.
      this.logger.warn({ err: (error as Error).message }, 'could not check announced models against the registry');
    }
    this.consumers[kind].rung(models);
  }

  /**
   * A consumer for one of a model's queues, opened when it has work (model-consumer-pool.ts). The synchronous
   * queue carries the model's inference jobs and, where a worker pool serves it, its load jobs (named 'load'); the
   * asynchronous one its jobs and batch chunks, in GANTRY_ASYNC_WORKER_CONCURRENCY slots of their own.
   */
  private openModelConsumer(model: string, kind: WorkKind): BullWorker {
    this.logger.debug({ model, kind }, 'consuming model queue');
    const queueName = kind === 'sync' ? inferenceQueueName(model) : asyncInferenceQueueName(model);
    const concurrency = kind === 'sync' ? this.config.GANTRY_WORKER_CONCURRENCY : this.config.GANTRY_ASYNC_WORKER_CONCURRENCY;
    return this.createConsumer(
      queueName,
      (job) =>
        this.consumers[kind].track(model, () =>
          job.name === loadJobName
            ? this.handleLoad(job)
            : handleInferenceJob(
                job,
                {
                  ...this.dependencies(),
                  statistics: this.completionGate.collectorFor(job),
                  meterCompute: (usage) => this.completionGate.hold(job, () => this.meterCompute(usage)),
                },
                { maxAttempts: this.config.GANTRY_MAX_JOB_ATTEMPTS, lockDurationMs: this.config.GANTRY_JOB_LOCK_MS },
              ),
        ),
      concurrency,
    );
  }

  /** No connection for the model's consumer: its queued requests are answered now rather than at their timeout. */
  private onUnserveable(model: string, reason: string): void {
    this.metrics.consumerConnectionFailures.inc();
    const error = errors.queueUnavailable(`no worker could get a Redis connection to serve model '${model}'`);
    void shedQueuedJobs(this.commands, this.config.GANTRY_QUEUE_PREFIX, model, error, this.logger).then((answered) => {
      if (answered > 0) this.logger.error({ model, answered, err: reason }, 'answered queued requests 503: no Redis connection to consume their queue');
    });
  }

  /** Stops taking jobs, lets the ones in progress finish (BullMQ's close waits for them), then releases all. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.ready = false;
      // Withdrawn first: from now on the API processes stop counting this worker among those serving its models.
      await this.announcer.withdraw();
      await this.doorbell.close();
      // BullMQ's close waits for the jobs in progress; a run inside onnxruntime that will not end in time (it
      // is stopped only at GANTRY_MAX_RUN_MS) must not hold the shutdown, and Node could not even exit meanwhile.
      const drained = await settlesWithin(
        Promise.allSettled([this.consumers.sync.closeAll(), this.consumers.async.closeAll(), this.controlConsumer?.close()]),
        this.config.GANTRY_SHUTDOWN_TIMEOUT_MS,
      );
      if (!drained) {
        this.logger.warn(
          { timeoutMs: this.config.GANTRY_SHUTDOWN_TIMEOUT_MS },
          'jobs still running at GANTRY_SHUTDOWN_TIMEOUT_MS; ending the worker, they are re-run after their lock expires',
        );
        await this.statistics.flush();
        await endWorkerProcess('shutdown timeout with jobs still running', { restart: false });
      }
      await this.statistics.flush();
      await this.usage.close();
      await this.webhookQueue.close();
      this.watchdog.stop();
      await this.sessions?.close();
      await this.httpServer?.close();
      for (const client of [this.subscriber, this.commands, this.connection, this.doorbellConnection]) client.disconnect();
      // A thread stuck inside onnxruntime would make Node's exit hang forever (it joins every thread).
      if (hasUnendedThreads()) await endWorkerProcess('shutdown with a thread stuck inside onnxruntime', { restart: false });
    })();
    return this.closing;
  }
}

/** True when `work` settled within `ms`. */
async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = await Promise.race([work.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)))]);
  clearTimeout(timer);
  return settled;
}

/** A short name for this host's CPU and architecture, so optimized graphs are only reused where they fit. */
function hostKind(): string {
  const description = `${process.arch}|${os.cpus()[0]?.model ?? 'unknown'}`;
  return createHash('sha256').update(description).digest('hex').slice(0, 16);
}
