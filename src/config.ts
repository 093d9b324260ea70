import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import { z } from 'zod';
import { parseCorsOrigins } from './cors-origins.js';
import { RedisEndpointError, parseRedisUrl, redisUrlProblem, sentinelUrlOf } from './queue/redis-endpoint.js';
import { parseModelPatterns } from './workers-view/model-patterns.js';

/** Parses "true"/"false"/"1"/"0" strictly: `z.coerce.boolean()` would turn "false" into true. */
const booleanFlag = z.enum(['true', 'false', '1', '0']).transform((value) => value === 'true' || value === '1');

const configSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  HOST: z.string().min(1).default('127.0.0.1'),
  /** Port of the Open Inference Protocol over gRPC, served by the API role on HOST; 0 turns gRPC off. */
  GANTRY_GRPC_PORT: z.coerce.number().int().min(0).max(65535).default(8081),
  /** One server (`redis://`, `rediss://` for TLS) or a Sentinel master (`redis+sentinel://h:p,h:p/name`): redis-endpoint.ts. */
  REDIS_URL: z
    .string()
    .superRefine((url, context) => {
      const problem = redisUrlProblem(url);
      if (problem !== undefined) context.addIssue({ code: 'custom', message: problem });
    })
    .optional(),
  /** The sentinels (`host:port,host:port`), with REDIS_SENTINEL_NAME: the same as a redis+sentinel:// REDIS_URL. */
  REDIS_SENTINELS: z.string().optional(),
  REDIS_SENTINEL_NAME: z.string().optional(),
  /** The sentinels' own password (their `requirepass`), when they have one; the servers' goes in the URL. */
  REDIS_SENTINEL_PASSWORD: z.string().optional(),
  /** TLS to the sentinels and servers with REDIS_SENTINELS (a URL says it with rediss+sentinel://). */
  REDIS_SENTINEL_TLS: booleanFlag.default(false),
  /** PEM file of the CA that signed the Redis servers' certificates, for rediss:// with a private CA. */
  REDIS_TLS_CA_FILE: z
    .string()
    .min(1)
    .refine((file) => isReadableFile(file), 'cannot be read: give the path of a PEM file of the CA that signed the Redis certificates')
    .optional(),
  GANTRY_DATA_DIR: z.string().min(1).default('./data'),
  // The model store (docs/operations.md "Model store: file or S3"). Credentials come from the AWS SDK's chain.
  /** `file`: blobs and records under GANTRY_DATA_DIR; `s3`: in an S3-compatible bucket (GANTRY_S3_*), no shared disk. */
  GANTRY_MODEL_STORE: z.enum(['file', 's3']).default('file'),
  GANTRY_S3_BUCKET: z
    .string()
    .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'is not an S3 bucket name (3 to 63 lower-case letters, digits, dots and hyphens)')
    .optional(),
  /** Keys under this prefix ('' = the bucket's root), so several deployments or environments can share one bucket. */
  GANTRY_S3_PREFIX: z
    .string()
    .refine((prefix) => !prefix.startsWith('/'), "must not start with '/' (S3 keys have no leading slash)")
    .transform((prefix) => prefix.replace(/\/+$/, ''))
    .default(''),
  /** An S3-compatible server (MinIO, Ceph…), `http(s)://host:port`; unset = AWS S3 of GANTRY_S3_REGION. */
  GANTRY_S3_ENDPOINT: z
    .string()
    .regex(/^https?:\/\/[^/\s]+\/?$/, 'must be http(s)://host[:port], without a path (the bucket is GANTRY_S3_BUCKET)')
    .optional(),
  GANTRY_S3_REGION: z.string().min(1).default('us-east-1'),
  /** Path-style URLs (`endpoint/bucket/key`), which MinIO and most S3-compatible servers need. */
  GANTRY_S3_FORCE_PATH_STYLE: booleanFlag.default(false),
  /**
   * `gantry start` without REDIS_URL: `auto` uses a Redis answering on 127.0.0.1:6379, else starts a private
   * redis-server under GANTRY_DATA_DIR; `private` always starts the private one (another Redis on 6379 is not
   * Gantry's to write into).
   */
  GANTRY_EMBEDDED_REDIS: z.enum(['auto', 'private']).default('auto'),
  GANTRY_MAX_UPLOAD_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(2 * 1024 ** 3),
  // A warm-up sample (multipart field `warmup` of an upload) is held in memory while it is checked: 16 MiB by default.
  GANTRY_MAX_WARMUP_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(16 * 1024 ** 2),
  // A request's inputs and outputs each cross Redis as one value, whose maximum is 512 MB: both stay under 480 MiB.
  GANTRY_MAX_REQUEST_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .max(480 * 1024 ** 2)
    .default(256 * 1024 ** 2),
  GANTRY_INFER_TIMEOUT_MS: z.coerce.number().int().positive().default(30_000),
  GANTRY_LOAD_TIMEOUT_MS: z.coerce.number().int().positive().default(120_000),
  GANTRY_QUEUE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/)
    .default('gantry'),
  GANTRY_WORKER_METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9091),
  GANTRY_WORKER_CONCURRENCY: z.coerce.number().int().positive().default(4),
  GANTRY_JOB_LOCK_MS: z.coerce.number().int().min(1000).default(5000),
  GANTRY_MAX_JOB_ATTEMPTS: z.coerce.number().int().min(1).max(10).default(2),
  /** Model queues one worker consumes at once: each costs one blocking Redis connection; idle models cost none. */
  GANTRY_MAX_ACTIVE_MODEL_QUEUES: z.coerce.number().int().positive().max(1024).default(32),
  /** How long a worker keeps consuming a model queue that gets no work (at least 3x GANTRY_JOB_LOCK_MS). */
  GANTRY_MODEL_QUEUE_IDLE_MS: z.coerce.number().int().positive().default(30_000),
  /**
   * The models this worker serves (worker pools, docs/operations.md "Worker pools"): comma-separated qualified
   * model names or globs (`*` any run of characters, `?` one). Unset or `*`: every model.
   */
  GANTRY_WORKER_MODELS: z
    .string()
    .default('*')
    .transform((text, context) => {
      const parsed = parseModelPatterns(text);
      if (typeof parsed === 'string') {
        context.addIssue({ code: 'custom', message: parsed });
        return z.NEVER;
      }
      return parsed;
    }),
  /**
   * Bytes of loaded sessions one worker keeps (each estimated as its model file's size x instances); past it the
   * least recently used idle models are released. 0: half the memory the worker may use (its cgroup limit, else
   * the machine's).
   */
  GANTRY_WORKER_SESSION_MEMORY_BYTES: z.coerce.number().int().min(0).default(0),
  /**
   * Bytes of model-file copies a worker keeps in its local cache when the model store is remote (S3); past it the
   * least recently used copies no loaded session uses are removed. 0: no bound.
   */
  GANTRY_MODEL_CACHE_BYTES: z.coerce
    .number()
    .int()
    .min(0)
    .default(10 * 1024 ** 3),
  GANTRY_MAX_EVENT_LOOP_DELAY_MS: z.coerce.number().int().min(0).default(1000),
  GANTRY_MAX_JOBS_IN_FLIGHT: z.coerce.number().int().positive().default(2),
  GANTRY_MAX_REQUESTS_PER_JOB: z.coerce.number().int().positive().max(4096).default(64),
  GANTRY_DEVICE: z.enum(['cpu', 'cuda', 'auto']).default('cpu'),
  GANTRY_SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().positive().default(15_000),
  GANTRY_HEAP_GROWTH_PERCENT: z.coerce.number().int().min(0).max(1000).default(300),
  // Limits on what one caller can make Gantry spend (README "Limits"; docs/operations.md "Limits").
  /** Largest JSON inference body, or JSON header of a binary-extension body: JSON tensors cost ~10x their bytes. */
  GANTRY_MAX_JSON_REQUEST_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(64 * 1024 ** 2),
  /** Bytes of request bodies one API process holds at once (being received or waiting for an answer). */
  GANTRY_MAX_INFLIGHT_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(1024 ** 3),
  /** Shadow copies (README "Shadow traffic") one API process keeps in flight; past it, copies are shed. 0 sends none. */
  GANTRY_MAX_SHADOW_INFLIGHT: z.coerce.number().int().min(0).default(64),
  /** Whole time a client may take to send a request, headers and body (an upload included). */
  GANTRY_REQUEST_TIMEOUT_MS: z.coerce.number().int().positive().default(300_000),
  /** Time a client may take to send its request headers. */
  GANTRY_HEADERS_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),
  /** Longest pause allowed between two pieces of a request body. */
  GANTRY_BODY_IDLE_TIMEOUT_MS: z.coerce.number().int().positive().default(30_000),
  /** Open connections one API process accepts; more are refused by the socket layer. */
  GANTRY_MAX_CONNECTIONS: z.coerce.number().int().positive().default(1024),
  /** Threads that parse JSON bodies over 1 MiB off the API's event loop; 0 parses them on it. */
  GANTRY_JSON_PARSE_THREADS: z.coerce.number().int().min(0).max(64).default(1),
  /** Most BYTES (string) elements in one request, over all its inputs. */
  GANTRY_MAX_BYTES_ELEMENTS: z.coerce.number().int().positive().default(1_000_000),
  /** Largest output, in tensor bytes, one request may produce (checked on the worker before it is sent). */
  GANTRY_MAX_RESPONSE_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .max(480 * 1024 ** 2)
    .default(256 * 1024 ** 2),
  /** Most output elements one request may have answered as JSON; past it, binary_data_output is needed. */
  GANTRY_MAX_JSON_OUTPUT_ELEMENTS: z.coerce.number().int().positive().default(4_000_000),
  /**
   * Inference answers of at least this many bytes are compressed for a caller whose Accept-Encoding asks for gzip
   * or deflate; smaller ones cost more CPU to compress than they save on a LAN. 0 compresses every answer asked for.
   */
  GANTRY_RESPONSE_COMPRESSION_MIN_BYTES: z.coerce
    .number()
    .int()
    .min(0)
    .default(64 * 1024),
  /** Input bytes one API process keeps queued or running for one model. */
  GANTRY_MAX_QUEUED_BYTES_PER_MODEL: z.coerce
    .number()
    .int()
    .positive()
    .default(512 * 1024 ** 2),
  /**
   * How long a worker may take to load and warm up a model before the load is stopped for real. Below
   * GANTRY_LOAD_TIMEOUT_MS, so an upload waiting for its load hears the stop (422) instead of giving up with 202.
   */
  GANTRY_LOAD_DEADLINE_MS: z.coerce.number().int().positive().default(100_000),
  /** How long one onnxruntime execution may run before it is stopped for real. */
  GANTRY_MAX_RUN_MS: z.coerce.number().int().positive().default(60_000),
  /** Stopped runs after which a model version becomes UNAVAILABLE. */
  GANTRY_MAX_RUN_STRIKES: z.coerce.number().int().positive().default(2),
  /** onnxruntime threads (instances x (intra + inter) over all loaded models) one worker may run. */
  GANTRY_MAX_THREADS_PER_WORKER: z.coerce.number().int().positive().default(256),
  /** Bytes the model store may hold; 0 means only the disk's own size bounds it. */
  GANTRY_MAX_STORE_BYTES: z.coerce.number().int().min(0).default(0),
  /** Free disk space an upload must leave behind on the store's filesystem. */
  GANTRY_MIN_FREE_DISK_BYTES: z.coerce
    .number()
    .int()
    .min(0)
    .default(1024 ** 3),
  /**
   * How long a model file stays in the store after its last version went (deleted or refused), before the
   * garbage collection removes it; 0 removes it at the next pass.
   */
  GANTRY_BLOB_GC_GRACE_MS: z.coerce
    .number()
    .int()
    .min(0)
    .default(5 * 60_000),
  /** Longest time between two garbage collection passes of one API process (they also run when a grace period ends). */
  GANTRY_BLOB_GC_INTERVAL_MS: z.coerce.number().int().min(10).default(60_000),
  /** How often the API checks that Redis still holds the deployment marker (a Redis that lost its data has none). */
  GANTRY_REGISTRY_CHECK_INTERVAL_MS: z.coerce.number().int().min(100).default(5000),
  // Authentication (docs/security.md).
  /** `on` (default): every route but GET /v2/health/* needs an API key. `off`: everyone is the admin; loopback HOST only. */
  GANTRY_AUTH: z.enum(['on', 'off']).default('on'),
  /** The admin key (at least 24 characters; stored hashed). Unset: one is generated on the first start and printed once. */
  GANTRY_ADMIN_KEY: z.string().min(24, 'the admin key must be at least 24 characters long').optional(),
  /** Whether /metrics answers without a key. Default: true when HOST is a loopback address, else false. */
  GANTRY_METRICS_PUBLIC: booleanFlag.optional(),
  /** How long an API process trusts a cached key or tenant without asking Redis (revocations also arrive by pub/sub at once). */
  GANTRY_AUTH_CACHE_TTL_MS: z.coerce.number().int().min(0).max(60_000).default(5000),
  /** Keys (and, separately, unknown key ids) one API process keeps cached. */
  GANTRY_AUTH_CACHE_ENTRIES: z.coerce.number().int().positive().default(10_000),
  /** Most tenants (the default tenant included). */
  GANTRY_MAX_TENANTS: z.coerce.number().int().positive().default(1000),
  /** Most API keys per tenant (revoked keys count until their record expires, 30 days after the revocation). */
  GANTRY_MAX_KEYS_PER_TENANT: z.coerce.number().int().positive().default(1000),
  // Limits per tenant and key, and usage metering (README "Limits per tenant and key", "Usage").
  /** How often each API process adds the usage it metered to Redis (also at shutdown). */
  GANTRY_USAGE_FLUSH_INTERVAL_MS: z.coerce.number().int().min(50).max(60_000).default(1000),
  /** How long hourly usage stays in Redis before it expires. */
  GANTRY_USAGE_RETENTION_DAYS: z.coerce.number().int().min(1).max(3660).default(400),
  /** Longest span one GET /v1/usage may cover, in hours (31 days by default: a month's bill). */
  GANTRY_MAX_USAGE_QUERY_HOURS: z.coerce
    .number()
    .int()
    .min(1)
    .max(24 * 400)
    .default(31 * 24),
  /**
   * Inference requests of one tenant one API process runs at once; more wait (before their bodies are read) for
   * the tenant's earlier ones, so one flooding tenant cannot crowd out the others. 0: no share. The admin is exempt.
   */
  GANTRY_TENANT_MAX_INFLIGHT: z.coerce.number().int().min(0).max(100_000).default(16),
  /** Most aliases one model may have (PUT /v1/models/{m}/aliases/{alias} past it: 409, limit `aliases_per_model`). */
  GANTRY_MAX_ALIASES_PER_MODEL: z.coerce.number().int().min(1).max(10_000).default(32),
  /** Tenants that get their own label on the per-tenant metrics; the rest are counted under tenant="_other". */
  GANTRY_MAX_TENANT_METRICS: z.coerce.number().int().min(0).max(10_000).default(100),
  // ----- Asynchronous jobs and batch files (docs/jobs.md) -----
  /** How long a finished job's or batch's result is kept (a job may ask for less, or more up to the maximum). */
  GANTRY_JOB_RETENTION_S: z.coerce
    .number()
    .int()
    .positive()
    .default(24 * 3600),
  GANTRY_JOB_MAX_RETENTION_S: z.coerce
    .number()
    .int()
    .positive()
    .default(7 * 24 * 3600),
  /** How long an asynchronous job or batch line may wait and run before it ends `expired` (its own long deadline). */
  GANTRY_JOB_DEADLINE_S: z.coerce
    .number()
    .int()
    .positive()
    .default(24 * 3600),
  /**
   * Queue jobs of asynchronous work (a job, a batch chunk) one worker runs at once per model, in slots apart from
   * GANTRY_WORKER_CONCURRENCY's: however large a batch, synchronous requests keep theirs.
   */
  GANTRY_ASYNC_WORKER_CONCURRENCY: z.coerce.number().int().positive().max(64).default(1),
  /** The queue priority of asynchronous work (1 is the highest; synchronous requests default to their model's, 10). */
  GANTRY_JOB_PRIORITY: z.coerce.number().int().min(1).max(2_097_151).default(1000),
  /** Unfinished asynchronous jobs one tenant may have at once (past it: 429, limit `jobs_per_tenant`). */
  GANTRY_MAX_JOBS_PER_TENANT: z.coerce.number().int().positive().max(10_000_000).default(10_000),
  /** Most lines of one batch file. */
  GANTRY_MAX_BATCH_LINES: z.coerce.number().int().positive().max(10_000_000).default(100_000),
  /** Most bytes of one line of a batch file (one OIP JSON request). */
  GANTRY_MAX_BATCH_LINE_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(4 * 1024 ** 2),
  /** Most bytes of one batch file in all. */
  GANTRY_MAX_BATCH_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(1024 ** 3),
  /** Lines packed into one queue job of a batch. */
  GANTRY_BATCH_CHUNK_LINES: z.coerce.number().int().positive().max(1024).default(64),
  /** Unfinished batches one tenant may have at once. */
  GANTRY_MAX_BATCHES_PER_TENANT: z.coerce.number().int().positive().max(100_000).default(16),
  // ----- Webhooks (docs/jobs.md "Webhooks") -----
  /**
   * Hosts, addresses or CIDR ranges a callback may reach although they are not public (loopback, private,
   * link-local, metadata): comma-separated. Empty: public unicast addresses only.
   */
  GANTRY_WEBHOOK_ALLOW: z.string().default(''),
  /** One delivery attempt (connect, send, answer) ends after this. */
  GANTRY_WEBHOOK_TIMEOUT_MS: z.coerce.number().int().positive().max(60_000).default(5000),
  /** Delivery attempts in all, the first included. */
  GANTRY_WEBHOOK_ATTEMPTS: z.coerce.number().int().min(1).max(30).default(8),
  /** Wait before the second attempt; each later wait doubles, up to GANTRY_WEBHOOK_MAX_DELAY_MS. */
  GANTRY_WEBHOOK_BASE_DELAY_MS: z.coerce.number().int().positive().default(1000),
  GANTRY_WEBHOOK_MAX_DELAY_MS: z.coerce
    .number()
    .int()
    .positive()
    .default(10 * 60_000),
  /** A receiver's answer is read at most this far. */
  GANTRY_WEBHOOK_MAX_RESPONSE_BYTES: z.coerce
    .number()
    .int()
    .min(0)
    .max(1024 ** 2)
    .default(4096),
  /** A job's outputs go in its webhook (`includeResult`) only up to this many bytes of JSON response. */
  GANTRY_WEBHOOK_MAX_RESULT_BYTES: z.coerce
    .number()
    .int()
    .min(0)
    .max(16 * 1024 ** 2)
    .default(64 * 1024),
  /** Deliveries one API process makes at once. */
  GANTRY_WEBHOOK_CONCURRENCY: z.coerce.number().int().positive().max(1000).default(8),
  GANTRY_PRETTY_LOGS: booleanFlag.default(false),
  // Developer experience (issue 17): the access log, CORS, the web console and the per-model API docs.
  /** `on`: one info line per answered request (method, route, model, version, status, duration, requestId, bytes). */
  GANTRY_ACCESS_LOG: z.enum(['on', 'off']).default('on'),
  /**
   * Comma-separated exact origins a browser app may call the API from (`https://app.example.com`), or `*` for any;
   * empty: CORS off (cors-origins.ts). Parsed to the list, `['*']` or `[]`.
   */
  GANTRY_CORS_ORIGINS: z
    .string()
    .default('')
    .transform((text, context) => {
      const parsed = parseCorsOrigins(text);
      if (typeof parsed === 'string') {
        context.addIssue({ code: 'custom', message: parsed });
        return z.NEVER;
      }
      return parsed;
    }),
  /** `on`: the web console is served at /console (it still needs a key for everything it shows). */
  GANTRY_CONSOLE: z.enum(['on', 'off']).default('on'),
  /** Open live-stats streams (the console's Live view) per API process; past it 503 with Retry-After. */
  GANTRY_MAX_CONSOLE_STREAMS: z.coerce.number().int().min(1).max(10_000).default(32),
  /** The OpenAPI document (/docs) describes an infer operation for at most this many READY models. */
  GANTRY_OPENAPI_MAX_MODELS: z.coerce.number().int().min(0).max(10_000).default(100),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type Config = z.infer<typeof configSchema>;

/** Every environment variable the configuration reads (the README's configuration tables list exactly these; a test checks). */
export const configVariableNames: readonly string[] = Object.keys(configSchema.shape);
export type ConfigInput = Partial<Record<keyof Config, string | number | boolean | undefined>>;

export class ConfigError extends Error {}

/**
 * Builds the configuration from an environment-like record. Start-up passes `process.env`; tests pass a
 * literal record and never mutate process.env. A bad value throws a ConfigError naming the variable.
 */
export function loadConfig(environment: ConfigInput | NodeJS.ProcessEnv = process.env): Config {
  const known: Record<string, unknown> = {};
  for (const key of Object.keys(configSchema.shape)) {
    const value = (environment as Record<string, unknown>)[key];
    // An empty variable (`REDIS_URL=`) means "not set", as shells and compose files produce it.
    if (value !== undefined && value !== '') known[key] = typeof value === 'string' ? value : String(value);
  }
  const parsed = configSchema.safeParse(known);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`Invalid configuration: ${problems.join('; ')}`);
  }
  const config = { ...parsed.data, REDIS_URL: resolvedRedisUrl(parsed.data) };
  if (config.GANTRY_MODEL_STORE === 's3' && config.GANTRY_S3_BUCKET === undefined) {
    throw new ConfigError(
      'Invalid configuration: GANTRY_MODEL_STORE=s3 needs GANTRY_S3_BUCKET, the bucket that holds the models (and GANTRY_S3_ENDPOINT for a server other than AWS S3).',
    );
  }
  if (config.GANTRY_AUTH === 'off' && !isLoopbackHost(config.HOST)) {
    throw new ConfigError(
      `Invalid configuration: GANTRY_AUTH=off is refused with HOST=${parsed.data.HOST}: without authentication anyone who reaches the port can upload, replace and delete every model. ` +
        'Turn it off only on a loopback address (HOST=127.0.0.1), or keep GANTRY_AUTH=on and send the admin key.',
    );
  }
  return config;
}

/**
 * REDIS_URL, or the redis+sentinel:// URL that REDIS_SENTINELS and REDIS_SENTINEL_NAME stand for: the rest of
 * Gantry, and the workers `gantry start` forks with REDIS_URL set, know that one variable only. Both may be set
 * when they name the same sentinels and master (a forked worker inherits both); otherwise that is refused.
 */
function resolvedRedisUrl(config: Config): string | undefined {
  const { REDIS_URL: url, REDIS_SENTINELS: sentinels, REDIS_SENTINEL_NAME: masterName } = config;
  if (sentinels === undefined && masterName === undefined) return url;
  if (sentinels === undefined || masterName === undefined) {
    throw new ConfigError(
      `Invalid configuration: ${sentinels === undefined ? 'REDIS_SENTINEL_NAME is set without REDIS_SENTINELS' : 'REDIS_SENTINELS is set without REDIS_SENTINEL_NAME'}: ` +
        'set both (REDIS_SENTINELS=host:port,host:port and REDIS_SENTINEL_NAME=the name in `sentinel monitor <name> …`), or neither.',
    );
  }
  let composed: string;
  try {
    composed = sentinelUrlOf(sentinels, masterName, config.REDIS_SENTINEL_TLS);
  } catch (error) {
    if (error instanceof RedisEndpointError) throw new ConfigError(`Invalid configuration: REDIS_SENTINELS / REDIS_SENTINEL_NAME: ${error.message}`);
    throw error;
  }
  if (url === undefined) return composed;
  const given = parseRedisUrl(url);
  const wanted = parseRedisUrl(composed);
  const same =
    given.kind === 'sentinel' &&
    wanted.kind === 'sentinel' &&
    given.masterName === wanted.masterName &&
    given.tls === wanted.tls &&
    JSON.stringify(given.sentinels) === JSON.stringify(wanted.sentinels);
  if (!same) {
    throw new ConfigError(
      'Invalid configuration: REDIS_URL and REDIS_SENTINELS/REDIS_SENTINEL_NAME name different Redis deployments: set one of them (a redis+sentinel:// REDIS_URL says the same as the two variables).',
    );
  }
  return url;
}

function isReadableFile(file: string): boolean {
  try {
    accessSync(file, fsConstants.R_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1 and `localhost`. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return bare === 'localhost' || bare === '::1' || bare === '0:0:0:0:0:0:0:1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare) || /^::ffff:127\./.test(bare);
}

/** Whether /metrics answers without a key: GANTRY_METRICS_PUBLIC, or by default only on a loopback bind. */
export function metricsArePublic(config: Pick<Config, 'GANTRY_METRICS_PUBLIC' | 'HOST'>): boolean {
  return config.GANTRY_METRICS_PUBLIC ?? isLoopbackHost(config.HOST);
}
