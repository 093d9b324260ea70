import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { Socket } from 'node:net';
import path from 'node:path';
import type { Logger } from '../logger.js';
import { freePort } from './free-port.js';

export interface ResolvedRedis {
  url: string;
  /** Stops the private redis-server, when one was started. */
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

export class RedisNotFoundError extends Error {}

function commandRuns(command: string): boolean {
  return spawnSync(command, ['--version'], { stdio: 'ignore' }).status === 0;
}

export interface ResolveRedisOptions {
  redisUrl: string | undefined;
  dataDirectory: string;
  logger: Logger;
  /** Where an already running Redis is looked for; tests point it elsewhere. Default 127.0.0.1:6379. */
  conventionalPort?: number;
  /** The program to start; tests name a missing one. Default `redis-server` from PATH. */
  redisServerCommand?: string;
}

/**
 * The embedded default's Redis: REDIS_URL when set; else a Redis already answering on 127.0.0.1:6379; else a
 * private `redis-server` from PATH with its data (AOF on) under the data directory, stopped on exit.
 * @throws RedisNotFoundError naming what to install when there is no Redis at all.
 */
export async function resolveRedis(options: ResolveRedisOptions): Promise<ResolvedRedis> {
  const { logger } = options;
  const conventionalPort = options.conventionalPort ?? 6379;
  const command = options.redisServerCommand ?? 'redis-server';
  if (options.redisUrl !== undefined) return { url: options.redisUrl, stop: async () => undefined };
  if (await redisAnswers('127.0.0.1', conventionalPort)) {
    logger.info(`REDIS_URL is not set; using the Redis answering on 127.0.0.1:${conventionalPort}`);
    return { url: `redis://127.0.0.1:${conventionalPort}`, stop: async () => undefined };
  }
  if (!commandRuns(command)) {
    throw new RedisNotFoundError(
      `No Redis found: REDIS_URL is not set, nothing answers on 127.0.0.1:${conventionalPort}, and there is no ${command} on PATH. ` +
        'Install Redis (Debian/Ubuntu: `sudo apt-get install redis-server`; macOS: `brew install redis`) or set REDIS_URL=redis://host:6379.',
    );
  }
  const directory = path.resolve(options.dataDirectory, 'redis');
  await mkdir(directory, { recursive: true });
  const leftover = await adoptLeftover(directory, logger);
  if (leftover !== undefined) return leftover;
  const port = await freePort();
  const child: ChildProcess = spawn(
    command,
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', directory, '--appendonly', 'yes', '--save', '', '--maxmemory-policy', 'noeviction'],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  for (let attempt = 0; attempt < 100 && !(await redisAnswers('127.0.0.1', port, 200)); attempt++) {
    if (child.exitCode !== null) throw new Error(`the private redis-server exited with code ${child.exitCode}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  logger.info({ port, directory }, 'started a private redis-server (AOF on); it stops when Gantry stops');
  const recordPath = path.join(directory, leftoverRecordName);
  if (child.pid !== undefined) await writeFile(recordPath, JSON.stringify({ pid: child.pid, port } satisfies LeftoverRecord));
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      await rm(recordPath, { force: true });
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** The file, in the private Redis's own directory, naming the server that runs on it. */
const leftoverRecordName = 'gantry-redis.json';

interface LeftoverRecord {
  pid: number;
  port: number;
}

/**
 * A private redis-server left running on `directory` by a start that died (SIGKILL, OOM: nothing could stop it),
 * taken over instead of starting a second server on the same AOF directory, where two writers lose acknowledged
 * writes. It is adopted only while its process lives and it answers on its port serving exactly this directory.
 */
async function adoptLeftover(directory: string, logger: Logger): Promise<ResolvedRedis | undefined> {
  let record: LeftoverRecord;
  try {
    record = JSON.parse(await readFile(path.join(directory, leftoverRecordName), 'utf8')) as LeftoverRecord;
  } catch {
    return undefined;
  }
  if (!Number.isInteger(record.pid) || !Number.isInteger(record.port) || !isAlive(record.pid)) return undefined;
  if (!(await servesDirectory(record.port, directory))) return undefined;
  logger.warn({ port: record.port, pid: record.pid, directory }, 'adopted the private redis-server a previous start left running');
  return {
    url: `redis://127.0.0.1:${record.port}`,
    stop: async () => {
      await rm(path.join(directory, leftoverRecordName), { force: true });
      if (!isAlive(record.pid)) return;
      process.kill(record.pid, 'SIGTERM');
      for (let attempt = 0; attempt < 100 && isAlive(record.pid); attempt++) await new Promise((resolve) => setTimeout(resolve, 50));
    },
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** True when the Redis on `port` answers CONFIG GET dir with `directory`. */
async function servesDirectory(port: number, directory: string, timeoutMs = 500): Promise<boolean> {
  // The answer is a two-element array, "dir" and the directory, each a bulk string: six CRLF-separated parts.
  const reply = await askRedis('127.0.0.1', port, 'CONFIG GET dir', (text) => text.split('\r\n').length >= 6, timeoutMs);
  return reply?.split('\r\n')[4] === directory;
}
