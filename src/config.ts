import { z } from 'zod';

/** Parses "true"/"false"/"1"/"0" strictly: `z.coerce.boolean()` would turn "false" into true. */
const booleanFlag = z.enum(['true', 'false', '1', '0']).transform((value) => value === 'true' || value === '1');

const configSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  HOST: z.string().min(1).default('127.0.0.1'),
  REDIS_URL: z.string().url().optional(),
  GANTRY_DATA_DIR: z.string().min(1).default('./data'),
  GANTRY_MAX_UPLOAD_BYTES: z.coerce.number().int().positive().default(2 * 1024 ** 3),
  GANTRY_MAX_REQUEST_BYTES: z.coerce.number().int().positive().default(256 * 1024 ** 2),
  GANTRY_INFER_TIMEOUT_MS: z.coerce.number().int().positive().default(30_000),
  GANTRY_LOAD_TIMEOUT_MS: z.coerce.number().int().positive().default(120_000),
  GANTRY_QUEUE_PREFIX: z.string().regex(/^[A-Za-z0-9_-]+$/).default('gantry'),
  GANTRY_WORKER_METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9091),
  GANTRY_WORKER_CONCURRENCY: z.coerce.number().int().positive().default(4),
  GANTRY_JOB_LOCK_MS: z.coerce.number().int().min(1000).default(5000),
  GANTRY_MAX_JOB_ATTEMPTS: z.coerce.number().int().min(1).max(10).default(2),
  GANTRY_MAX_EVENT_LOOP_DELAY_MS: z.coerce.number().int().min(0).default(1000),
  GANTRY_MAX_JOBS_IN_FLIGHT: z.coerce.number().int().positive().default(2),
  GANTRY_MAX_REQUESTS_PER_JOB: z.coerce.number().int().positive().max(4096).default(64),
  GANTRY_DEVICE: z.enum(['cpu', 'cuda', 'auto']).default('cpu'),
  GANTRY_SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().positive().default(15_000),
  GANTRY_HEAP_GROWTH_PERCENT: z.coerce.number().int().min(0).max(1000).default(300),
  GANTRY_PRETTY_LOGS: booleanFlag.default(false),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type Config = z.infer<typeof configSchema>;
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
  return parsed.data;
}
