import { spawnSync } from 'node:child_process';
import { mkdir, readFile, readlink, realpath, rm, writeFile } from 'node:fs/promises';
import { Socket } from 'node:net';
import path from 'node:path';
import type { Logger } from '../logger.js';
import { lockDataDirectory } from './data-directory-lock.js';
import { freePort } from './free-port.js';
import { isProcessRunning, stopProcess } from './process-liveness.js';
import { RedisKeeper, type RedisExit } from './redis-keeper.js';

export interface ResolvedRedis {
  url: string;
  /** Stops the private redis-server and releases the data-directory lock, when there are (safe to call twice). */
  stop: () => Promise<void>;
}

/**
 * Sends one inline command to the Redis at host:port and resolves with its reply text once `isComplete` says the
 * reply is whole, or undefined when nothing (whole) answered within `timeoutMs`.
 */
function askRedis(host: string, port: number, command: string, isComplete: (reply: string) => boolean, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = new Socket();
    let reply = '';
    const finish = (answer: string | undefined) => {
      socket.destroy();
      resolve(answer);
    };
    socket.setTimeout(timeoutMs, () => finish(undefined));
    socket.once('error', () => finish(undefined));
    socket.connect(port, host, () => socket.write(`${command}\r\n`));
    socket.on('data', (data) => {
      reply += data.toString();
      if (isComplete(reply)) finish(reply);
    });
  });
}

/** True when something at host:port answers a Redis PING within `timeoutMs`. */
export async function redisAnswers(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  const reply = await askRedis(host, port, 'PING', (text) => text.includes('\r\n'), timeoutMs);
  return reply !== undefined && (reply.startsWith('+PONG') || reply.startsWith('-NOAUTH'));
}

/** True when something at host:port replies to PING at all: PONG, NOAUTH, or LOADING (up, still loading its data). */
async function redisReplies(host: string, port: number, timeoutMs: number): Promise<boolean> {
  const reply = await askRedis(host, port, 'PING', (text) => text.includes('\r\n'), timeoutMs);
  return reply !== undefined && /^(\+PONG|-NOAUTH|-LOADING)/.test(reply);
}

export class RedisNotFoundError extends Error {}

function commandRuns(command: string): boolean {
  return spawnSync(command, ['--version'], { stdio: 'ignore' }).status === 0;
}

export interface ResolveRedisOptions {
  redisUrl: string | undefined;
  dataDirectory: string;
  logger: Logger;
  /**
   * `auto` (default): a Redis already answering on the conventional port is used before a private one is
   * started; `private`: a private redis-server under the data directory, whatever answers there.
   */
  mode?: 'auto' | 'private';
  /** Where an already running Redis is looked for; tests point it elsewhere. Default 127.0.0.1:6379. */
  conventionalPort?: number;
  /** The program to start; tests name a missing one. Default `redis-server` from PATH. */
  redisServerCommand?: string;
  /** How long a private redis-server may take to stop after SIGTERM before SIGKILL. Default 10 000 ms. */
  stopTimeoutMs?: number;
  /**
   * Called once if the data-directory lock is lost while the private Redis runs (data-directory-lock.ts says
   * when). Default: logs an error.
   */
  onLockLost?: (error: Error) => void;
}

/**
 * The embedded default's Redis: REDIS_URL when set; else (mode `auto`) a Redis already answering on
 * 127.0.0.1:6379; else a private `redis-server` from PATH with its data (AOF on) under the data directory.
 *
 * The private server is owned through the data-directory lock (taken first: a second start on the directory is
 * refused before it touches the server) and runs under a keeper process that stops it when this process ends,
 * however it ends. A server a previous start left running anyway (its keeper was killed too) is stopped before
 * a new one starts: two servers on one append-only file lose acknowledged writes.
 * @throws RedisNotFoundError naming what to install when there is no Redis at all.
 * @throws DataDirectoryLockedError while another live `gantry start` owns the data directory.
 */
export async function resolveRedis(options: ResolveRedisOptions): Promise<ResolvedRedis> {
  const { logger } = options;
  const conventionalPort = options.conventionalPort ?? 6379;
  const command = options.redisServerCommand ?? 'redis-server';
  if (options.redisUrl !== undefined) return { url: options.redisUrl, stop: async () => undefined };
  if (options.mode !== 'private' && (await redisAnswers('127.0.0.1', conventionalPort))) {
    logger.info(`REDIS_URL is not set; using the Redis answering on 127.0.0.1:${conventionalPort}`);
    return { url: `redis://127.0.0.1:${conventionalPort}`, stop: async () => undefined };
  }
  if (!commandRuns(command)) {
    const looked = options.mode === 'private' ? 'GANTRY_EMBEDDED_REDIS=private' : `nothing answers on 127.0.0.1:${conventionalPort}`;
    throw new RedisNotFoundError(
      `No Redis found: REDIS_URL is not set, ${looked}, and there is no ${command} on PATH. ` +
        'Install Redis (Debian/Ubuntu: `sudo apt-get install redis-server`; macOS: `brew install redis`) or set REDIS_URL=redis://host:6379.',
    );
  }
  const lock = await lockDataDirectory(options.dataDirectory, {
    logger,
    onLost: options.onLockLost ?? ((error) => logger.error({ err: error }, 'lost the data-directory lock')),
  });
  try {
    const redis = await startPrivateRedis(path.resolve(options.dataDirectory, 'redis'), command, logger, options.stopTimeoutMs ?? 10_000);
    return {
      url: redis.url,
      stop: async () => {
        await redis.stop();
        await lock.release();
      },
    };
  } catch (error) {
    await lock.release();
    throw error;
  }
}

/** Starts the private redis-server on `directory` under a keeper; the caller holds the data-directory lock. */
async function startPrivateRedis(directory: string, command: string, logger: Logger, stopTimeoutMs: number): Promise<ResolvedRedis> {
  await mkdir(directory, { recursive: true });
  await stopLeftover(directory, logger, stopTimeoutMs);
  const port = await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', directory, '--appendonly', 'yes', '--save', '', '--maxmemory-policy', 'noeviction'];
  const keeper = await RedisKeeper.start(command, args, logger, stopTimeoutMs);
  let exit: RedisExit | undefined;
  void keeper.redisExited.then((exited) => (exit = exited));
  // A server loading a large append-only file replies LOADING: it is up, and ioredis waits for the load itself.
  const deadline = Date.now() + 10_000;
  while (!(await redisReplies('127.0.0.1', port, 200))) {
    if (exit !== undefined || Date.now() > deadline) {
      await keeper.stop(stopTimeoutMs);
      throw new Error(
        exit === undefined
          ? `the private redis-server on port ${port} did not answer within 10 s`
          : `the private redis-server exited (code ${exit.code}, signal ${exit.signal}) before answering; is ${directory} writable and its append-only file intact?`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const recordPath = path.join(directory, leftoverRecordName);
  await writeFile(recordPath, JSON.stringify({ pid: keeper.redisPid, port } satisfies LeftoverRecord));
  logger.info({ port, directory, pid: keeper.redisPid }, 'started a private redis-server (AOF on); it stops when Gantry stops');
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      await keeper.stop(stopTimeoutMs);
      await rm(recordPath, { force: true });
    },
  };
}

/** The file, in the private Redis's own directory, naming the server that runs on it. */
const leftoverRecordName = 'gantry-redis.json';

/**
 * The URL of the private redis-server a running `gantry start` keeps on `dataDirectory`, or undefined when none
 * runs there (for commands such as `gantry admin-key rotate` that must reach the same Redis).
 */
export async function runningPrivateRedisUrl(dataDirectory: string): Promise<string | undefined> {
  try {
    const record = JSON.parse(await readFile(path.resolve(dataDirectory, 'redis', leftoverRecordName), 'utf8')) as LeftoverRecord;
    if (!Number.isInteger(record.port) || !(await redisAnswers('127.0.0.1', record.port))) return undefined;
    return `redis://127.0.0.1:${record.port}`;
  } catch {
    return undefined;
  }
}

interface LeftoverRecord {
  pid: number;
  port: number;
}

/**
 * Stops a private redis-server a previous start left running on `directory`, so that the new one is never a
 * second server on the same append-only file. Its keeper normally stops it with its start; this is for a keeper
 * killed too (a SIGKILL of the whole process group: the server runs in a session of its own). A SIGTERM makes
 * Redis flush its append-only file before it exits, and the new server loads it. Adopting the server instead
 * would leave it without a keeper, so a next SIGKILL of the start would leave it running again.
 */
async function stopLeftover(directory: string, logger: Logger, stopTimeoutMs: number): Promise<void> {
  let record: LeftoverRecord;
  try {
    record = JSON.parse(await readFile(path.join(directory, leftoverRecordName), 'utf8')) as LeftoverRecord;
  } catch {
    return;
  }
  if (!Number.isInteger(record.pid) || !Number.isInteger(record.port) || !isProcessRunning(record.pid)) return;
  if (!(await runsOnDirectory(record, directory))) {
    logger.warn(
      { pid: record.pid, directory },
      "the pid recorded for this directory's redis-server runs, but not as a redis-server on this directory (a reused pid); leaving it alone",
    );
    return;
  }
  logger.warn(
    { pid: record.pid, port: record.port, directory },
    'stopping the private redis-server a previous start left running on this directory before starting a new one',
  );
  await stopProcess(record.pid, stopTimeoutMs);
}

/**
 * True when process `record.pid` is a redis-server on `directory`. Linux: its working directory (Redis changes
 * into its --dir) is `directory`. Elsewhere: the server on `record.port` says `directory` to CONFIG GET dir.
 */
async function runsOnDirectory(record: LeftoverRecord, directory: string): Promise<boolean> {
  const expected = await realpath(directory);
  const workingDirectory = await readlink(`/proc/${record.pid}/cwd`).catch(() => undefined);
  if (workingDirectory !== undefined) return workingDirectory === expected;
  // The answer is a two-element array, "dir" and the directory, each a bulk string: six CRLF-separated parts.
  const reply = await askRedis('127.0.0.1', record.port, 'CONFIG GET dir', (text) => text.split('\r\n').length >= 6, 500);
  return reply?.split('\r\n')[4] === expected;
}
