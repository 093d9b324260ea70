/**
 * A private redis-server (AOF on, in a directory of its own, on a free port) for tests and benchmarks that must
 * measure or break a Redis nobody else uses. Needs `redis-server` and `redis-cli` on PATH.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../src/runtime/free-port.js';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A private redis-server with AOF in its own directory, on a free port; can be shut down and restarted. */
export interface PrivateRedis {
  port: number;
  url: string;
  directory: string;
  process: () => ChildProcess;
  /** `redis-cli shutdown` (AOF is fsynced); resolves once the process exited. */
  shutdown: () => Promise<void>;
  /** Starts redis-server again on the same port and directory; resolves once it answers PING. */
  restart: () => Promise<void>;
  cleanup: () => Promise<void>;
}

async function pingUntilUp(port: number, child: ChildProcess, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`redis-server on ${port} exited (${child.exitCode}) before answering PING`);
    if (spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).stdout.trim() === 'PONG') return;
    await sleep(50);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for redis-server on ${port}`);
}

/** Starts a private redis-server; resolves once it answers PING. */
export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  const directory = await mkdtemp(path.join(os.tmpdir(), 'gantry-private-redis-'));
  const launch = () =>
    spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--dir', directory], {
      stdio: 'ignore',
    });
  let child = launch();
  await pingUntilUp(port, child);
  const exited = (process: ChildProcess) =>
    process.exitCode !== null || process.signalCode !== null ? Promise.resolve() : new Promise<void>((resolve) => process.once('exit', () => resolve()));
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    directory,
    process: () => child,
    shutdown: async () => {
      spawnSync('redis-cli', ['-p', String(port), 'shutdown'], { encoding: 'utf8' });
      await exited(child);
    },
    restart: async () => {
      child = launch();
      await pingUntilUp(port, child);
    },
    cleanup: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited(child);
      }
      await rm(directory, { recursive: true, force: true });
    },
  };
}
