import type { Redis } from 'ioredis';
import { z } from 'zod';
import { defaultExecutionSettings, type ExecutionSettings } from '../queue/job-contracts.js';
import { ErrorCode, GantryError, errors } from '../errors.js';
import { modelConfigKey } from '../redis-keys.js';
import { lowestPriority, standardDefaultPriority } from '../protocol/schedule-parameters.js';
import { publishRegistryEvent } from './registry-events.js';
import type { RegistryRecords } from './registry-records.js';
import { onnxruntimeThreadsOf } from './thread-budget.js';

/**
 * Per-model run-time configuration: how a model is batched, queued and run. It belongs to the model (all its
 * versions) and is kept in Redis as one JSON document, so every API process and worker reads the same values.
 * The Triton view of it (`GET /v2/models/{m}/config`) is built from this plus the version's signature.
 */
// The execution fields' defaults are the job contract's, so a job without settings runs like an unconfigured model.
export const modelConfigSchema = z
  .object({
    /** Largest batch a worker may form from queued requests; 0 = never batch. */
    maxBatchSize: z.number().int().min(0).max(1024).default(defaultExecutionSettings.maxBatchSize),
    /** Batch sizes the batcher should aim for (Triton's dynamic_batching.preferred_batch_size). */
    preferredBatchSizes: z.array(z.number().int().min(1).max(1024)).default(defaultExecutionSettings.preferredBatchSizes),
    /** How long a request may wait for others to join its batch. */
    maxQueueDelayMicroseconds: z.number().int().min(0).max(10_000_000).default(defaultExecutionSettings.maxQueueDelayMicroseconds),
    /** onnxruntime sessions per worker for this model. */
    instances: z.number().int().min(1).max(16).default(defaultExecutionSettings.instances),
    /** onnxruntime intra-op threads; 0 = onnxruntime's choice. */
    intraOpThreads: z.number().int().min(0).max(64).default(defaultExecutionSettings.intraOpThreads),
    /** onnxruntime inter-op threads; 0 = onnxruntime's choice. */
    interOpThreads: z.number().int().min(0).max(64).default(defaultExecutionSettings.interOpThreads),
    graphOptimizationLevel: z.enum(['disabled', 'basic', 'extended', 'all']).default(defaultExecutionSettings.graphOptimizationLevel),
    /** Keep onnxruntime's optimized model on disk so later loads skip the optimization. */
    optimizedModelCache: z.boolean().default(defaultExecutionSettings.optimizedModelCache),
    /** Let onnxruntime's pool threads spin-wait between runs (its own default): lower latency on a dedicated host, a busy core per idle session. */
    allowSpinning: z.boolean().default(defaultExecutionSettings.allowSpinning),
    /** Per-request inference timeout; absent = the server's GANTRY_INFER_TIMEOUT_MS. */
    inferTimeoutMs: z.number().int().min(1).max(3_600_000).optional(),
    /**
     * Most requests of this model one API process keeps waiting or running; 0 = no count limit (queued bytes
     * stay bounded by GANTRY_MAX_QUEUED_BYTES_PER_MODEL). Finite by default, so no model's backlog is unbounded.
     */
    maxQueueSize: z.number().int().min(0).max(1_000_000).default(1000),
    /** Priority of requests that do not name one (1 is the highest). */
    defaultPriority: z.number().int().min(1).max(lowestPriority).default(standardDefaultPriority),
    /** Class labels, index i naming class i (used by the classification extension). */
    labels: z.array(z.string()).max(100_000).optional(),
  })
  .strict();

export type ModelConfig = z.infer<typeof modelConfigSchema>;

/** The patch `update` accepts: any subset of the fields, nothing else. */
export const modelConfigPatchSchema = modelConfigSchema.partial().strict();

const configFields = Object.keys(modelConfigSchema.shape) as Array<keyof ModelConfig>;

export function defaultModelConfig(): ModelConfig {
  return modelConfigSchema.parse({});
}

/** Replaces the stored document only if nobody changed it since it was read (an optimistic update). */
const compareAndSetScript = `
local current = redis.call('GET', KEYS[1])
if (current or '') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1`;

const maxUpdateAttempts = 20;

export class ModelConfigStore {
  /**
   * @param records where the API also keeps each change durably (beside the blobs), so a registry rebuilt after
   *   Redis lost its data comes back with it; absent in processes that only read configurations.
   */
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly records?: RegistryRecords,
  ) {}

  /** The effective configuration: defaults under whatever is stored. A model never configured gets the defaults. */
  async get(name: string): Promise<ModelConfig> {
    return parseStored(await this.redis.get(modelConfigKey(this.prefix, name)));
  }

  /**
   * Applies a partial configuration and returns the new effective one. A field set to `null` goes back to its
   * default. Concurrent updates of different fields do not lose each other (compare-and-set, retried).
   * @param limits.maxThreadsPerWorker GANTRY_MAX_THREADS_PER_WORKER: a configuration whose own onnxruntime threads
   *   exceed it is refused (a worker could never load it).
   * @throws INVALID_ARGUMENT naming the field and the problem, or the thread budget.
   */
  async update(name: string, patch: unknown, limits: { maxThreadsPerWorker?: number } = {}): Promise<ModelConfig> {
    const { set, reset } = validatePatch(patch);
    const key = modelConfigKey(this.prefix, name);
    for (let attempt = 0; attempt < maxUpdateAttempts; attempt++) {
      const stored = await this.redis.get(key);
      const merged: Record<string, unknown> = { ...parseStored(stored), ...set };
      for (const field of reset) delete merged[field];
      const next = modelConfigSchema.parse(merged);
      checkThreadBudget(next, limits.maxThreadsPerWorker);
      const written = await this.redis.eval(compareAndSetScript, 1, key, stored ?? '', JSON.stringify(next));
      if (written === 1) {
        await this.records?.writeModelConfig(name, next);
        await publishRegistryEvent(this.redis, this.prefix, { type: 'config-changed', name });
        return next;
      }
    }
    // Only reachable under a storm of concurrent writers; a retry will get through.
    throw new GantryError(ErrorCode.Unavailable, `The configuration of model '${name}' is being changed concurrently; retry.`, { retryAfterSeconds: 1 });
  }

  async delete(name: string): Promise<void> {
    await this.redis.del(modelConfigKey(this.prefix, name));
    await this.records?.writeModelConfig(name, undefined);
  }
}

/**
 * Refuses a configuration that alone needs more onnxruntime threads than a worker may run (intra 0 counts as
 * this host's cores, which is what onnxruntime starts on a worker like it).
 */
function checkThreadBudget(config: ModelConfig, maxThreadsPerWorker: number | undefined): void {
  if (maxThreadsPerWorker === undefined) return;
  const threads = onnxruntimeThreadsOf(config);
  if (threads > maxThreadsPerWorker) throw errors.threadBudget(threads, maxThreadsPerWorker);
}

/** Checks a patch; returns the fields to set and those to reset to their defaults (given as null). */
function validatePatch(patch: unknown): { set: Partial<ModelConfig>; reset: Array<keyof ModelConfig> } {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) {
    throw errors.invalidArgument('The configuration must be a JSON object of config fields, e.g. {"maxBatchSize": 8}.');
  }
  const input = patch as Record<string, unknown>;
  const reset: Array<keyof ModelConfig> = [];
  const toValidate: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(input)) {
    if (value === null && (configFields as string[]).includes(field)) reset.push(field as keyof ModelConfig);
    else toValidate[field] = value;
  }
  const parsed = modelConfigPatchSchema.safeParse(toValidate);
  if (!parsed.success) throw errors.invalidArgument(parsed.error.issues.map(describeIssue).join('; '));
  // `.partial()` still fills in the defaults of absent fields; only the fields the patch names are applied.
  const set: Record<string, unknown> = {};
  for (const field of Object.keys(toValidate)) set[field] = (parsed.data as Record<string, unknown>)[field];
  return { set: set as Partial<ModelConfig>, reset };
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return issue.keys.map((key) => `unknown config field '${key}'`).join('; ');
  const [field, ...rest] = issue.path;
  const where = `config field '${String(field ?? '')}'${rest.length > 0 ? ` (element ${rest.map(String).join('.')})` : ''}`;
  return `${where}: ${problem(issue)}`;
}

function problem(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'too_big':
      return issue.origin === 'array' ? `must have at most ${String(issue.maximum)} elements` : `must be at most ${String(issue.maximum)}`;
    case 'too_small':
      return issue.origin === 'array' ? `must have at least ${String(issue.minimum)} elements` : `must be at least ${String(issue.minimum)}`;
    case 'invalid_type':
      return issue.expected === 'int' ? 'must be an integer' : `must be ${article(issue.expected)}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map((value) => `'${String(value)}'`).join(', ')}`;
    default:
      return issue.message;
  }
}

function article(expected: string): string {
  return /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`;
}

/**
 * Reads a stored document leniently: a field that no longer validates (a schema changed under stored data)
 * falls back to its default rather than making the model unusable.
 */
function parseStored(stored: string | null): ModelConfig {
  if (stored === null || stored === '') return defaultModelConfig();
  let document: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(stored);
    document = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
  } catch {
    document = {};
  }
  const kept: Record<string, unknown> = {};
  for (const field of configFields) {
    if (!(field in document)) continue;
    const checked = modelConfigSchema.shape[field].safeParse(document[field]);
    if (checked.success && checked.data !== undefined) kept[field] = checked.data;
  }
  return modelConfigSchema.parse(kept);
}

/** The fields a worker needs to run a model, in the form every load and inference job carries. */
export function executionConfigOf(config: ModelConfig): ExecutionSettings {
  return {
    maxBatchSize: config.maxBatchSize,
    preferredBatchSizes: config.preferredBatchSizes,
    maxQueueDelayMicroseconds: config.maxQueueDelayMicroseconds,
    instances: config.instances,
    intraOpThreads: config.intraOpThreads,
    interOpThreads: config.interOpThreads,
    graphOptimizationLevel: config.graphOptimizationLevel,
    optimizedModelCache: config.optimizedModelCache,
    allowSpinning: config.allowSpinning,
  };
}
