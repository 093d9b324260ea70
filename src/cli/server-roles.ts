/**
 * The commands that run Gantry itself: `start` (API + one worker + a private Redis when needed), `api`, `worker`,
 * and the maintenance commands `repair`, `export`, `import`, `admin-key`. Loaded only when one of them runs, so the
 * client commands start without loading the server (Fastify, BullMQ, onnxruntime).
 */
import closeWithGrace from 'close-with-grace';
import { ApiRole } from '../api/api-role.js';
import type { AdminKeyOutcome } from '../auth/admin-key.js';
import { runAdminKeyCommand } from '../auth/admin-key-command.js';
import { adminKeyBanner, adminKeyNotice, logAdminKey } from '../auth/admin-key-notice.js';
import { ConfigError, loadConfig, type Config } from '../config.js';
import { createLogger, type Logger } from '../logger.js';
import { DataDirectoryLockedError } from '../runtime/data-directory-lock.js';
import { RedisNotFoundError, resolveRedis } from '../runtime/embedded-redis.js';
import { applyHeapGrowth } from '../runtime/heap-growth.js';
import { parseExportArguments, parseImportArguments } from '../runtime/backup-arguments.js';
import { runExportCommand } from '../runtime/export-command.js';
import { runImportCommand } from '../runtime/import-command.js';
import { runRepairCommand } from '../runtime/repair-command.js';
import { WorkerSupervisor } from '../runtime/worker-supervisor.js';
import { endWorkerProcess } from '../worker/worker-exit.js';
import { WorkerRole } from '../worker/worker-role.js';

/** How long a worker whose gantry start died may take to close before it is ended (ms). */
const orphanWorkerCloseMs = 1000;

export type ServerCommandName = 'start' | 'api' | 'worker' | 'repair' | 'export' | 'import' | 'admin-key';

/**
 * Registers the shutdown path: the first SIGTERM/SIGINT drains, a second one forces exit. Returns a function
 * that starts the same shutdown from inside the process.
 */
function onShutdown(config: Config, logger: Logger, close: () => Promise<void>): () => unknown {
  return closeWithGrace({ delay: config.GANTRY_SHUTDOWN_TIMEOUT_MS + 5000 }, async ({ signal, err }) => {
    if (err !== undefined) logger.fatal({ err }, 'uncaught error; exiting');
    else logger.info({ signal }, 'shutting down');
    await close();
  }).close;
}

/**
 * @param bannerForNewAdminKey `gantry start` shows a generated admin key in a banner on stdout, with a curl to
 *   copy; `gantry api` puts it in the log. Either way it is shown once.
 */
async function runApi(config: Config, logger: Logger, redisUrl: string, bannerForNewAdminKey = false): Promise<ApiRole> {
  let generatedKey: string | undefined;
  let listening: string | undefined;
  const onAdminKey = (outcome: AdminKeyOutcome) => {
    if (!bannerForNewAdminKey || config.GANTRY_AUTH === 'off') logAdminKey(outcome, logger);
    else if (outcome.kind === 'existing') process.stdout.write(`${adminKeyNotice(outcome)}\n`);
    else if (outcome.kind !== 'generated') logAdminKey(outcome, logger);
    else if (listening === undefined) generatedKey = outcome.key;
    else process.stdout.write(adminKeyBanner(outcome.key, listening));
  };
  const api = await ApiRole.create({ ...config, REDIS_URL: redisUrl }, logger, onAdminKey);
  const address = await api.listen(config.HOST, config.PORT);
  listening = address;
  logger.info({ address }, 'Gantry API listening');
  await api.listenGrpc();
  if (generatedKey !== undefined) process.stdout.write(adminKeyBanner(generatedKey, address));
  return api;
}

/** A command given arguments it does not take: what is wrong, exit code 2. */
function refuseArguments(message: string): number {
  process.stderr.write(`${message}\n`);
  return 2;
}

/**
 * Runs a server command. Resolves with an exit code for the commands that finish (repair, export, import,
 * admin-key), undefined for the roles that keep running until a signal (start, api, worker).
 */
export async function runServerCommand(command: ServerCommandName, args: string[]): Promise<number | undefined> {
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

  switch (command) {
    case 'worker':
      await runWorker(config, logger);
      return undefined;
    case 'repair':
      return runRepairCommand(config, logger);
    case 'export': {
      const parsed = parseExportArguments(args);
      return parsed.ok ? runExportCommand(config, logger, parsed.value) : refuseArguments(parsed.message);
    }
    case 'import': {
      const parsed = parseImportArguments(args);
      return parsed.ok ? runImportCommand(config, logger, parsed.value) : refuseArguments(parsed.message);
    }
    case 'admin-key':
      return runAdminKeyCommand(config, args[0]);
    case 'api': {
      const api = await runApi(config, logger, config.REDIS_URL ?? 'redis://127.0.0.1:6379');
      onShutdown(config, logger, () => api.close(config.GANTRY_SHUTDOWN_TIMEOUT_MS));
      return undefined;
    }
    case 'start':
      await runStart(config, logger);
      return undefined;
  }
}

async function runWorker(config: Config, logger: Logger): Promise<void> {
  const worker = new WorkerRole({ ...config, REDIS_URL: config.REDIS_URL ?? 'redis://127.0.0.1:6379' }, logger);
  onShutdown(config, logger, () => worker.close());
  // A worker forked by `gantry start` goes with its parent: the IPC channel closes when the parent ends, even
  // by SIGKILL or the OOM killer, and an orphan would go on taking jobs beside the next start's worker.
  // Bounded: nobody waits for its answers any more, and the start's private Redis is going away with it, so a
  // close that waits on Redis would never end; its jobs are re-run by another worker once their locks expire.
  if (process.send !== undefined) {
    process.once('disconnect', () => {
      logger.error('the gantry start process supervising this worker is gone; shutting down');
      const forced = setTimeout(() => void endWorkerProcess('its gantry start process is gone', { restart: false }), orphanWorkerCloseMs);
      void worker.close().finally(() => {
        clearTimeout(forced);
        process.exit(0);
      });
    });
  }
  await worker.start();
}

/**
 * `gantry start`: the private Redis (if one is needed) first, under the data-directory lock, then the API and
 * one supervised worker. Stopping goes the other way: the API drains, the worker drains, Redis stops, the lock
 * is released.
 */
async function runStart(config: Config, logger: Logger): Promise<void> {
  let lockLost = false;
  let shutdown: (() => unknown) | undefined;
  let redis;
  try {
    redis = await resolveRedis({
      redisUrl: config.REDIS_URL,
      mode: config.GANTRY_EMBEDDED_REDIS,
      dataDirectory: config.GANTRY_DATA_DIR,
      logger,
      stopTimeoutMs: config.GANTRY_SHUTDOWN_TIMEOUT_MS,
      // The lock is what keeps a second start from running a second redis-server on this directory's
      // append-only file; without it this process can no longer promise that, so it stops (exit code 1) and
      // leaves the restart to whoever supervises it.
      onLockLost: (error) => {
        lockLost = true;
        logger.fatal(
          { err: error, directory: config.GANTRY_DATA_DIR },
          'lost the lock on the data directory (removed, replaced or not refreshable); shutting down',
        );
        void shutdown?.();
      },
    });
  } catch (error) {
    if (error instanceof RedisNotFoundError || error instanceof DataDirectoryLockedError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const resolvedRedis = redis;
  const supervisor = new WorkerSupervisor({ ...process.env, REDIS_URL: resolvedRedis.url }, logger);
  let api: ApiRole | undefined;
  shutdown = onShutdown(config, logger, async () => {
    await api?.close(config.GANTRY_SHUTDOWN_TIMEOUT_MS);
    await supervisor.stop(config.GANTRY_SHUTDOWN_TIMEOUT_MS);
    await resolvedRedis.stop();
    if (lockLost) process.exit(1);
  });
  api = await runApi(config, logger, resolvedRedis.url, true);
  supervisor.start();
}
