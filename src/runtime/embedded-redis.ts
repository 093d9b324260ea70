import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { Socket } from 'node:net';
import path from 'node:path';
import type { Logger } from '../logger.js';
import { freePort } from './free-port.js';

export interface ResolvedRedis {
  url: string;
  /** Stops the private redis-server, when one was started. */
  stop: () => Promise<void>;
}

/** True when something at host:port answers a Redis PING within `timeoutMs`. */
export function redisAnswers(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const finish = (answer: boolean) => {
      socket.destroy();
      resolve(answer);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.once('error', () => finish(false));
    socket.connect(port, host, () => socket.write('PING\r\n'));
    socket.once('data', (data) => finish(data.toString().startsWith('+PONG') || data.toString().startsWith('-NOAUTH')));
  });
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
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await exited;
    },
  };
}
