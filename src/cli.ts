#!/usr/bin/env node
import closeWithGrace from 'close-with-grace';
import { ApiRole } from './api/api-role.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { createLogger, type Logger } from './logger.js';
import { RedisNotFoundError, resolveRedis } from './runtime/embedded-redis.js';
import { applyHeapGrowth } from './runtime/heap-growth.js';
import { runRepairCommand } from './runtime/repair-command.js';
import { WorkerSupervisor } from './runtime/worker-supervisor.js';
import { WorkerRole } from './worker/worker-role.js';

const usage = `Usage: gantry <command>

Commands:
  start    the API and one worker (the embedded default; starts a private redis-server when needed)
  api      the HTTP API only
  worker   a worker only (runs models; serves /metrics, /health, /ready on GANTRY_WORKER_METRICS_PORT)
  repair   rebuilds the model registry in Redis from the model store (after Redis lost its data)

Configuration comes from environment variables; see README.md.`;

/** Registers the shutdown path: the first SIGTERM/SIGINT drains, a second one forces exit. */
function onShutdown(config: Config, logger: Logger, close: () => Promise<void>): void {
  closeWithGrace({ delay: config.GANTRY_SHUTDOWN_TIMEOUT_MS + 5000 }, async ({ signal, err }) => {
    if (err !== undefined) logger.fatal({ err }, 'uncaught error; exiting');
    else logger.info({ signal }, 'shutting down');
    await close();
  });
}

async function runApi(config: Config, logger: Logger, redisUrl: string): Promise<ApiRole> {
  const api = await ApiRole.create({ ...config, REDIS_URL: redisUrl }, logger);
  const address = await api.listen(config.HOST, config.PORT);
  logger.info({ address }, 'Gantry API listening');
  return api;
}

async function main(): Promise<void> {
  const command = process.argv[2] ?? 'start';
  if (command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(`${usage}\n`);
    return;
  }
  if (!['start', 'api', 'worker', 'repair'].includes(command)) {
    process.stderr.write(`Unknown command '${command}'.\n\n${usage}\n`);
    process.exitCode = 2;
    return;
  }

  let config: Config;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger(config, command);
  applyHeapGrowth(config.GANTRY_HEAP_GROWTH_PERCENT);

  if (command === 'worker') {
    const worker = new WorkerRole({ ...config, REDIS_URL: config.REDIS_URL ?? 'redis://127.0.0.1:6379' }, logger);
    onShutdown(config, logger, () => worker.close());
    // A worker forked by `gantry start` goes with its parent: the IPC channel closes when the parent ends, even
    // by SIGKILL or the OOM killer, and an orphan would go on taking jobs beside the next start's worker.
    if (process.send !== undefined) {
      process.once('disconnect', () => {
        logger.error('the gantry start process supervising this worker is gone; shutting down');
        void worker.close().finally(() => process.exit(0));
      });
    }
    await worker.start();
    return;
  }
  if (command === 'repair') {
    process.exitCode = await runRepairCommand(config, logger);
    return;
  }
  if (command === 'api') {
    const api = await runApi(config, logger, config.REDIS_URL ?? 'redis://127.0.0.1:6379');
    onShutdown(config, logger, () => api.close(config.GANTRY_SHUTDOWN_TIMEOUT_MS));
    return;
  }

  let redis;
  try {
    redis = await resolveRedis({ redisUrl: config.REDIS_URL, dataDirectory: config.GANTRY_DATA_DIR, logger });
  } catch (error) {
    if (error instanceof RedisNotFoundError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const supervisor = new WorkerSupervisor({ ...process.env, REDIS_URL: redis.url }, logger);
  const api = await runApi(config, logger, redis.url);
  supervisor.start();
  const resolvedRedis = redis;
  onShutdown(config, logger, async () => {
    await api.close(config.GANTRY_SHUTDOWN_TIMEOUT_MS);
    await supervisor.stop(config.GANTRY_SHUTDOWN_TIMEOUT_MS);
    await resolvedRedis.stop();
  });
}

main().catch((error: unknown) => {
  process.stderr.write(`gantry failed to start: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
  process.exit(1);
});
