/**
 * Every Redis key, channel and BullMQ queue name Gantry uses: the one place they are spelled.
 *
 * All live under the deployment's prefix (GANTRY_QUEUE_PREFIX). Each carries a Redis Cluster hash tag (the part in
 * braces) chosen so that whatever one script or transaction touches lands on one shard: `{<model>}` for a model's
 * queue, payloads, versions, configuration and statistics (models spread over shards), `{gantry}` for
 * deployment-wide state, `{<tenant>}` for a tenant's rate counters and `{usage}` for the usage meter. Names that
 * go into a key are validated before they get here (model names: queue/names.ts; tenant and key ids:
 * auth/api-key-format.ts), so they cannot break out of the braces or the separators. Keys without a tag are read
 * and written alone (pub/sub channels, single keys).
 */

// ----- The queues (BullMQ prepends `<prefix>:` to these names itself) -------------------------------------------

/** The BullMQ queue of one model's inference jobs (all its versions): API processes add, workers consume. */
export function inferenceQueueName(model: string): string {
  return `infer{${model}}`;
}

/**
 * The BullMQ queue of one model's asynchronous work (jobs, batch chunks): kept apart from the synchronous queue so
 * that it is consumed with slots of its own (GANTRY_ASYNC_WORKER_CONCURRENCY) and never holds a synchronous
 * request's slot for the length of a chunk.
 */
export function asyncInferenceQueueName(model: string): string {
  return `infer-async{${model}}`;
}

/** One of BullMQ's own keys of a model's inference queue (`active`, `wait`, a job id…): for tests and repair. */
export function inferenceQueueKey(prefix: string, model: string, part: string, kind: WorkKind = 'sync'): string {
  return `${prefix}:${kind === 'sync' ? inferenceQueueName(model) : asyncInferenceQueueName(model)}:${part}`;
}

/** Which of a model's two queues: synchronous requests, or asynchronous work. */
export type WorkKind = 'sync' | 'async';

/** The queue of model load requests: API processes add, any worker consumes. */
export const controlQueueName = 'control{gantry}';

/**
 * Stream: producers (API processes) announce "model X has work"; every worker reads it and consumes only the model
 * queues announced lately (queue/work-doorbell.ts).
 */
export function workDoorbellKey(prefix: string): string {
  return `${prefix}:work-doorbell{gantry}`;
}

/** String: one large job's input bytes, written by the API before the job, read and deleted by the worker. */
export function payloadKey(prefix: string, model: string, jobId: string): string {
  return `${payloadKeyPrefix(prefix, model)}${jobId}`;
}

/** What every payload key of a model starts with (a worker deletes only keys that are payloads of that model). */
export function payloadKeyPrefix(prefix: string, model?: string): string {
  return model === undefined ? `${prefix}:payload{` : `${prefix}:payload{${model}}:`;
}

/** String: a large reply's output bytes, written by the worker before it publishes the header, read and deleted by the API. */
export function replyBodyKey(prefix: string, model: string, id: string): string {
  return `${prefix}:reply-body{${model}}:${id}`;
}

/** Pub/sub: the replies for the jobs one API process queued (workers publish, that process's ReplyListener reads). */
export function replyChannel(prefix: string, processId: string): string {
  return `${prefix}:reply:${processId}`;
}

/** Pub/sub: registry changes (registry/registry-events.ts), published by the registry, read by catalogs and workers. */
export function registryEventsChannel(prefix: string): string {
  return `${prefix}:registry-events`;
}

// ----- The registry (registry/model-registry.ts writes; API and workers read) --------------------------------------

/** String: the deployment id this registry belongs to; the model store keeps the same id (registry-guardian.ts). */
export function deploymentMarkerKey(prefix: string): string {
  return `${prefix}:deployment`;
}

/** Set: every model's qualified name. */
export function modelsKey(prefix: string): string {
  return `${prefix}:models`;
}

/** Set: the qualified names of one tenant's models (a tenant's list never reads another tenant's names). */
export function tenantModelsKey(prefix: string, tenant: string): string {
  return `${prefix}:tenant:${tenant}:models`;
}

/** String: set once every model of modelsKey is also in its tenant's set. */
export function tenantModelsIndexedKey(prefix: string): string {
  return `${prefix}:tenant-index`;
}

/** Hash: what one tenant's live versions hold (`versions`, `bytes`), changed with every version created or deleted. */
export function tenantHoldingsKey(prefix: string, tenant: string): string {
  return `${prefix}:tenant:${tenant}:holdings`;
}

/** Lock: held while a capped tenant's version is checked against its caps and created. */
export function tenantCapsLockKey(prefix: string, tenant: string): string {
  return `${prefix}:tenant:${tenant}:caps-lock`;
}

/** Sorted set: a model's version numbers. */
export function modelVersionsKey(prefix: string, model: string): string {
  return `${prefix}:model:{${model}}:versions`;
}

/** Counter: the next version number of a model. */
export function nextVersionKey(prefix: string, model: string): string {
  return `${prefix}:model:{${model}}:next-version`;
}

/** Hash: one version's record (state, sha256, signature…). */
export function versionKey(prefix: string, model: string, version: string): string {
  return `${prefix}:model:{${model}}:v:${version}`;
}

/**
 * Hash: a model's identical-upload index, sha256 → a live version with those bytes, plus the field `*built` once
 * the index covers every version (registry/identical-versions.ts).
 */
export function modelBlobIndexKey(prefix: string, model: string): string {
  return `${prefix}:model:{${model}}:sha256s`;
}

/** Lock: held while an upload of one model looks for an identical version and creates its own. */
export function modelCreationLockKey(prefix: string, model: string): string {
  return `${prefix}:model:{${model}}:creating`;
}

/** String (JSON): a model's configuration (registry/model-config.ts). */
export function modelConfigKey(prefix: string, model: string): string {
  return `${prefix}:model:{${model}}:config`;
}

/** Hash: a model's aliases, alias name → JSON `{version, updatedAt}` (registry/model-aliases.ts). */
export function modelAliasesKey(prefix: string, model: string): string {
  return `${prefix}:model:{${model}}:aliases`;
}

/** String (JSON): a model's traffic policy, splits and shadow (registry/model-traffic.ts). */
export function modelTrafficKey(prefix: string, model: string): string {
  return `${prefix}:model:{${model}}:traffic`;
}

/** Lock: held while a model's aliases and traffic policy are written to the store's records (registry/routing-records.ts). */
export function modelRoutingLockKey(prefix: string, model: string): string {
  return `${prefix}:model:{${model}}:routing-lock`;
}

/** String (TTL): why a load refused an upload's bytes, for identical uploads that waited on it (registry/refused-uploads.ts). */
export function refusedUploadKey(prefix: string, model: string, sha256: string): string {
  return `${prefix}:model:{${model}}:refused:${sha256}`;
}

/** Hash: one version's statistics, flushed by workers (worker/statistics-buffer.ts), read by the API. */
export function statisticsKey(prefix: string, model: string, version: string): string {
  return `${prefix}:stats:{${model}}:${version}`;
}

/** Lock: held by the one process rebuilding the registry from the model store (registry-rebuild.ts). */
export function registryRebuildLockKey(prefix: string): string {
  return `${prefix}:registry:rebuild-lock`;
}

// ----- Blobs (registry/blob-references.ts, registry/blob-collector.ts) ---------------------------------------------

/** Set: the versions referencing one blob. */
export function blobReferencesKey(prefix: string, sha256: string): string {
  return `${prefix}:blob:${sha256}:refs`;
}

/** Set: uploads of one blob not yet recorded as versions. */
export function blobPendingKey(prefix: string, sha256: string): string {
  return `${prefix}:blob:${sha256}:pending`;
}

/** String: marks one blob as being collected (deleted from disk). */
export function blobCollectingKey(prefix: string, sha256: string): string {
  return `${prefix}:blob:${sha256}:collecting`;
}

/** Sorted set: blobs no version references any more, by when they became so. */
export function unreferencedBlobsKey(prefix: string): string {
  return `${prefix}:blobs:unreferenced`;
}

/** Lock: held by the one process collecting unreferenced blobs. */
export function blobCollectorLockKey(prefix: string): string {
  return `${prefix}:blob-gc:lock`;
}

// ----- The control plane (auth/: tenants, API keys, the admin key), all under `{gantry}` ---------------------------
// One transaction over a tenant and its keys stays on one shard.

/** Hash: one tenant's record (name, createdAt, disabled, limits). */
export function tenantKey(prefix: string, tenant: string): string {
  return `${prefix}:auth{gantry}:tenant:${tenant}`;
}

/** Set: the ids of every tenant. */
export function tenantIndexKey(prefix: string): string {
  return `${prefix}:auth{gantry}:tenants`;
}

/** Hash: one API key's record (its hash, tenant, scopes, models, dates); never the key itself. */
export function apiKeyKey(prefix: string, keyId: string): string {
  return `${prefix}:auth{gantry}:key:${keyId}`;
}

/** Set: the ids of one tenant's keys. */
export function tenantKeyIndexKey(prefix: string, tenant: string): string {
  return `${prefix}:auth{gantry}:tenant-keys:${tenant}`;
}

/** Hash: the admin key's hash and where it came from. */
export function adminKeyKey(prefix: string): string {
  return `${prefix}:auth{gantry}:admin-key`;
}

/** Pub/sub: "forget what you cached about key X / tenant Y / the admin key", to every API process at once. */
export function authEventsChannel(prefix: string): string {
  return `${prefix}:auth-events`;
}

// ----- Limits (limits/) ----------------------------------------------------------------------------------------------

/** String (JSON): one API key's limits, beside the key's record (a tenant's are a field of its record). */
export function keyLimitsKey(prefix: string, keyId: string): string {
  return `${prefix}:limits:key:${keyId}`;
}

/**
 * Counter: one rate rule's count in one window. The `{<tenant>}` tag keeps a tenant's and its keys' counters on
 * one shard (one script touches them).
 */
export function rateCounterKey(prefix: string, tenant: string, counter: string, windowMs: number, window: number): string {
  return `${prefix}:rate{${tenant}}:${counter}:${windowMs}:${window}`;
}

// ----- Usage (usage/usage-meter.ts writes, usage/usage-report.ts and limits/quota-checker.ts read), all `{usage}` ---
// One flush (one script over every tenant's counters) runs on one shard.

/** Hash: one tenant's usage in one UTC hour (fields: usage-record.ts usageField). */
export function hourlyUsageKey(prefix: string, tenant: string, hour: string): string {
  return `${prefix}:usage{usage}:hour:${tenant}:${hour}`;
}

/** Hash: a tenant's requests and compute_ns in one UTC day (`day`, 2025-01-31) or month (`month`, 2025-01), for quotas. */
export function usageTotalKey(prefix: string, tenant: string, period: 'day' | 'month', when: string): string {
  return `${prefix}:usage{usage}:total:${tenant}:${period}:${when}`;
}

/** Set: every tenant that has metered usage (so the admin's report finds them without scanning). */
export function usageTenantsKey(prefix: string): string {
  return `${prefix}:usage{usage}:tenants`;
}

/** String: marks one flush as applied, so a flush retried after a lost reply is not counted twice. */
export function usageFlushKey(prefix: string, flushId: string): string {
  return `${prefix}:usage{usage}:flush:${flushId}`;
}

// ----- Worker pools (workers-view/): which live workers serve which models, all under `{gantry}` ---------------------

/** String (JSON, with a TTL): one worker's announcement, the models it serves and its device, renewed while it runs. */
export function workerAnnouncementKey(prefix: string, workerId: string): string {
  return `${prefix}:workers{gantry}:${workerId}`;
}

/** Set: the ids of the workers that announced themselves (an id whose announcement expired is removed by readers). */
export function workerAnnouncementsKey(prefix: string): string {
  return `${prefix}:workers{gantry}`;
}

// ----- Asynchronous jobs and batch files (src/jobs/) ---------------------------------------------------------------
// Each job's and each batch's keys share the tag `{<id>}`, so the worker's write-once scripts touch one shard.

/** Hash: an asynchronous job's record (state, times, attempts, error, what rendering its result needs). */
export function asyncJobKey(prefix: string, id: string): string {
  return `${prefix}:job{${id}}`;
}

/** String: an asynchronous job's answer as the worker wrote it (reply-codec.ts framing, one result). */
export function asyncJobResultKey(prefix: string, id: string): string {
  return `${prefix}:job{${id}}:result`;
}

/** List: the webhook deliveries of one asynchronous job or batch, oldest first (JSON each). */
export function webhookDeliveriesKey(prefix: string, subject: { kind: 'job' | 'batch'; id: string }): string {
  return `${prefix}:${subject.kind}{${subject.id}}:deliveries`;
}

/** Sorted set: one tenant's asynchronous jobs by creation time (ms), for listing. */
export function tenantJobsKey(prefix: string, tenant: string): string {
  return `${prefix}:jobs{${tenant}}`;
}

/**
 * Sorted set: unfinished asynchronous jobs by creation time (ms), of one tenant (its cap) or, with no tenant, of
 * the whole deployment (the jobs gauges). Entries a crash left behind are pruned when they are met.
 */
export function unfinishedJobsKey(prefix: string, tenant?: string): string {
  return tenant === undefined ? `${prefix}:jobs-unfinished{gantry}` : `${prefix}:jobs-unfinished{${tenant}}`;
}

/** Sorted set: asynchronous jobs a worker is running now, by when it started them (for the jobs gauges). */
export function runningJobsKey(prefix: string): string {
  return `${prefix}:jobs-running{gantry}`;
}

/** String: the job an Idempotency-Key made (`<job id> <body sha256>`), by tenant, key id and the key's sha256. */
export function jobIdempotencyKey(prefix: string, tenant: string, keyId: string, idempotencyKeySha256: string): string {
  return `${prefix}:job-idempotency{${tenant}}:${keyId}:${idempotencyKeySha256}`;
}

/** Hash: a batch's record (state, counts, model, version, callback, retention). */
export function batchKey(prefix: string, id: string): string {
  return `${prefix}:batch{${id}}`;
}

/** A key of one batch beside its record (`lines:<chunk>`, `results`, …): the batch store names the parts. */
export function batchPartKey(prefix: string, id: string, part: string): string {
  return `${prefix}:batch{${id}}:${part}`;
}

/** Sorted set: one tenant's batches by creation time (ms), for listing. */
export function tenantBatchesKey(prefix: string, tenant: string): string {
  return `${prefix}:batches{${tenant}}`;
}

/** The BullMQ queue of webhook deliveries: whoever finishes a job or batch adds, API processes deliver. */
export const webhookQueueName = 'webhooks{gantry}';
