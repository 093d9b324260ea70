/**
 * Starting real gantry processes for tests and benchmarks: free ports, a queue prefix and data directory of their
 * own, the test admin key, and cleanup of every Redis key and file they made. Shared by test/ and bench/ (which
 * must not import test/).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { freePort } from '../src/runtime/free-port.js';
import type { JsonBody } from './json-body.js';

/** The repository root, found from this file's place in dist/support/. */
export const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const cliPath = path.join(repositoryRoot, 'dist/src/cli.js');
export const fixtureModelsDirectory = path.join(repositoryRoot, 'test/fixtures/models');

export function fixturePath(name: string): string {
  return path.join(fixtureModelsDirectory, name);
}

export { freePort };

/**
 * The admin key every gantry process started by tests gets (GANTRY_ADMIN_KEY), and the headers that send it.
 * Tests that check authentication itself make their own keys.
 */
export const testAdminKey = 'gantry-test-admin-key-not-a-secret-0123456789';
export const adminAuthorization = `Bearer ${testAdminKey}`;

/** `headers` plus the test admin key (an `authorization` already in `headers` wins). */
export function withAdminKey(headers: Record<string, string> = {}): Record<string, string> {
  return { authorization: adminAuthorization, ...headers };
}

export interface GantryProcess {
  baseUrl: string;
  /** `host:port` of the gRPC endpoint (GANTRY_GRPC_PORT, a free port unless `env` sets it). */
  grpcAddress: string;
  /** The worker's metrics/health server (for `start` and `worker`). */
  workerUrl: string;
  prefix: string;
  dataDirectory: string;
  redisUrl: string;
  child: ChildProcess;
  /** Everything the process printed so far (stdout and stderr). */
  output: () => string;
  /** SIGTERM, then wait for exit; returns the exit code. */
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
  /** Stops the process (if running), deletes its Redis keys and its data directory. */
  cleanup: () => Promise<void>;
}

export interface StartOptions {
  command?: 'start' | 'api' | 'worker';
  env?: Record<string, string>;
  /** Share a prefix and data directory with another process (an API plus separate workers). */
  prefix?: string;
  dataDirectory?: string;
  redisUrl?: string;
  waitForReady?: boolean;
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`gantry exited (${child.exitCode}) before ${what}:\n${output()}`);
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}:\n${output()}`);
}

/** Starts `gantry <command>` as a real child process on free ports with its own queue prefix and data dir. */
export async function startGantry(options: StartOptions = {}): Promise<GantryProcess> {
  const command = options.command ?? 'start';
  const prefix = options.prefix ?? `test-${randomBytes(4).toString('hex')}`;
  const dataDirectory = options.dataDirectory ?? (await mkdtemp(path.join(os.tmpdir(), 'gantry-test-')));
  const redisUrl = options.redisUrl ?? 'redis://127.0.0.1:6379';
  const port = await freePort();
  const workerPort = await freePort();
  // Every process gets a gRPC port of its own: the default (8081) would collide between concurrent processes.
  const grpcPort = options.env?.GANTRY_GRPC_PORT ?? String(await freePort());
  const child = spawn(process.execPath, [cliPath, command], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      HOST: '127.0.0.1',
      PORT: String(port),
      REDIS_URL: redisUrl,
      GANTRY_QUEUE_PREFIX: prefix,
      GANTRY_DATA_DIR: dataDirectory,
      GANTRY_WORKER_METRICS_PORT: String(workerPort),
      GANTRY_GRPC_PORT: grpcPort,
      GANTRY_ADMIN_KEY: testAdminKey,
      LOG_LEVEL: 'warn',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let printed = '';
  child.stdout?.on('data', (chunk: Buffer) => (printed += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (printed += chunk.toString()));
  const output = () => printed;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const baseUrl = `http://127.0.0.1:${port}`;
  const workerUrl = `http://127.0.0.1:${workerPort}`;

  if (options.waitForReady !== false) {
    if (command !== 'worker') await waitFor(async () => (await fetch(`${baseUrl}/v2/health/ready`)).status === 200, 20_000, 'API readiness', child, output);
    if (command !== 'api') await waitFor(async () => (await fetch(`${workerUrl}/ready`)).status === 200, 20_000, 'worker readiness', child, output);
  }

  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    child.kill(signal);
    return exited;
  };
  return {
    baseUrl,
    grpcAddress: `127.0.0.1:${grpcPort}`,
    workerUrl,
    prefix,
    dataDirectory,
    redisUrl,
    child,
    output,
    stop,
    cleanup: async () => {
      await stop();
      await deleteKeys(redisUrl, prefix);
      if (options.dataDirectory === undefined) await rm(dataDirectory, { recursive: true, force: true });
    },
  };
}

/** Every key matching a SCAN pattern, sorted. */
export async function scanKeys(redis: Redis, pattern: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    found.push(...keys);
  } while (cursor !== '0');
  return found.sort();
}

/** Deletes every Redis key under a test's prefix. */
export async function deleteKeys(redisUrl: string, prefix: string): Promise<void> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    const keys = await scanKeys(redis, `${prefix}:*`);
    for (let start = 0; start < keys.length; start += 1000) await redis.del(...keys.slice(start, start + 1000));
  } catch {
    // Redis is gone (a fault-injection test stopped it); nothing to clean.
  } finally {
    redis.disconnect();
  }
}

/** Uploads a model file as a raw body; returns the status and parsed JSON body. */
export async function uploadModel(baseUrl: string, name: string, filePath: string, query = ''): Promise<{ status: number; body: JsonBody }> {
  const bytes = await readFile(filePath);
  const response = await fetch(`${baseUrl}/v1/models/${encodeURIComponent(name)}/versions${query}`, {
    method: 'POST',
    headers: withAdminKey({ 'content-type': 'application/octet-stream' }),
    body: bytes,
  });
  return { status: response.status, body: await response.json() };
}

/** POSTs a JSON inference request; returns the status and parsed JSON body. */
export async function inferJson(baseUrl: string, model: string, request: unknown, version?: string): Promise<{ status: number; body: JsonBody }> {
  const url = version === undefined ? `${baseUrl}/v2/models/${model}/infer` : `${baseUrl}/v2/models/${model}/versions/${version}/infer`;
  const response = await fetch(url, { method: 'POST', headers: withAdminKey({ 'content-type': 'application/json' }), body: JSON.stringify(request) });
  return { status: response.status, body: await response.json() };
}
