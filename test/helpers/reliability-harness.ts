/**
 * Helpers for the reliability tests (fault injection against real processes). Everything here starts real
 * processes (gantry, redis-server) or talks to them, and cleans up after itself.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { inferenceQueueKey } from '../../src/redis-keys.js';
import { randomFloats } from '../../support/prng.js';
import { sleep } from '../../support/private-redis.js';
import type { JsonBody } from '../../support/json-body.js';
import { deleteKeys, withAdminKey, type GantryProcess } from './gantry-process.js';
import { httpCall } from './http.js';

export { startPrivateRedis, sleep, type PrivateRedis } from '../../support/private-redis.js';

/** Deterministic floats in [-1, 1) (the shared mulberry32), already float32-exact. */
export function floats(seed: number, count: number): number[] {
  return randomFloats(seed, count);
}

/** A slow.onnx request: ~3.6 µs per iteration on the dev box. */
export function slowRequest(iterations: number, parameters?: Record<string, unknown>): unknown {
  return {
    ...(parameters === undefined ? {} : { parameters }),
    inputs: [
      { name: 'iterations', datatype: 'INT64', shape: [], data: [iterations] },
      { name: 'x', datatype: 'FP32', shape: [1, 256], data: floats(7, 256) },
    ],
  };
}

export function mlpRequest(seed = 1): unknown {
  return { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 256], data: floats(seed, 256) }] };
}

export interface TimedReply {
  status: number;
  body: JsonBody;
  headers: Headers;
  /** Milliseconds from sending to the whole response being read. */
  ms: number;
  startedAt: number;
  finishedAt: number;
  /** Set when no HTTP response came back (connection error or the client-side timeout). */
  failure?: string;
}

/**
 * Any HTTP call with a client-side timeout, sent with the test admin key (an `authorization` in `headers` wins;
 * `anonymous` sends none); never throws: a transport failure is reported in `failure`.
 */
export async function timedCall(
  url: string,
  init: { method?: string; body?: string | Buffer; headers?: Record<string, string>; timeoutMs?: number; anonymous?: boolean } = {},
): Promise<TimedReply> {
  const startedAt = Date.now();
  const t0 = performance.now();
  const headers = init.headers ?? (init.body === undefined ? {} : { 'content-type': 'application/json' });
  try {
    const reply = await httpCall(url, init.method ?? (init.body === undefined ? 'GET' : 'POST'), '', {
      headers: init.anonymous === true ? headers : withAdminKey(headers),
      ...(init.body === undefined ? {} : { body: init.body }),
      signal: AbortSignal.timeout(init.timeoutMs ?? 30_000),
    });
    return { status: reply.status, body: reply.body, headers: reply.headers, ms: performance.now() - t0, startedAt, finishedAt: Date.now() };
  } catch (error) {
    const finishedAt = Date.now();
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    return {
      status: 0,
      body: undefined,
      headers: new Headers(),
      ms: performance.now() - t0,
      startedAt,
      finishedAt,
      failure: `${(error as Error).name}: ${(error as Error).message}${cause === undefined ? '' : ` (${cause})`}`,
    };
  }
}

export function infer(baseUrl: string, model: string, request: unknown, timeoutMs = 30_000): Promise<TimedReply> {
  return timedCall(`${baseUrl}/v2/models/${model}/infer`, { body: JSON.stringify(request), timeoutMs });
}

export async function putConfig(baseUrl: string, model: string, patch: unknown): Promise<TimedReply> {
  return timedCall(`${baseUrl}/v1/models/${model}/config`, { method: 'PUT', body: JSON.stringify(patch), timeoutMs: 10_000 });
}

/** Polls until `check` is true; throws with `what` after `timeoutMs`. */
export async function waitUntil(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string, intervalMs = 50): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    try {
      if (await check()) return Date.now() - started;
    } catch {
      // not yet
    }
    await sleep(intervalMs);
  }
  assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Direct children of a process (the `start` command's worker is one). */
export function childPids(pid: number): number[] {
  const result = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' });
  return result.stdout
    .split('\n')
    .map((line) => Number(line.trim()))
    .filter((value) => Number.isInteger(value) && value > 0);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Resident set size in bytes from /proc/<pid>/status (VmRSS). */
export async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = /VmRSS:\s+(\d+)\s+kB/.exec(status);
  if (match === null) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]) * 1024;
}

/**
 * Peak resident set size in bytes since the last resetPeakRss (VmHWM of /proc/<pid>/status): what a memory
 * limit (a container's, a cgroup's) would have had to allow.
 */
export async function peakRssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = /VmHWM:\s+(\d+)\s+kB/.exec(status);
  if (match === null) throw new Error(`no VmHWM for ${pid}`);
  return Number(match[1]) * 1024;
}

/** Starts a new peak-RSS measurement (writing 5 to /proc/<pid>/clear_refs resets VmHWM to the current RSS). */
export async function resetPeakRss(pid: number): Promise<void> {
  await writeFile(`/proc/${pid}/clear_refs`, '5');
}

/** CPU time (user + system) a process has used, in milliseconds, from /proc/<pid>/stat. */
export async function cpuTimeMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start after the last ')'; utime and stime are 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticksPerSecond = 100;
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond;
}

/** Kills a process and its descendants (by pid, children first), ignoring ones already gone. */
export function killTree(pid: number | undefined, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (pid === undefined) return;
  for (const child of childPids(pid)) killTree(child, signal);
  try {
    process.kill(pid, signal);
  } catch {
    // gone
  }
}

/** Sums every sample of a counter in Prometheus text (all label sets). */
export function sumMetric(text: string, name: string): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

export async function workerRequestsTotal(workerUrl: string): Promise<number> {
  const response = await fetch(`${workerUrl}/metrics`, { signal: AbortSignal.timeout(5000) });
  assert.equal(response.status, 200);
  return sumMetric(await response.text(), 'gantry_worker_requests_total');
}

/** Number of jobs BullMQ holds as active for a model's queue (the worker has taken them). */
export async function activeJobs(redisUrl: string, prefix: string, model: string): Promise<number> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    return await redis.llen(inferenceQueueKey(prefix, model, 'active'));
  } finally {
    redis.disconnect();
  }
}

/** The most attempts BullMQ has started of any job of a model's queue (its `ats` field), with that job's state. */
export async function jobAttemptsStarted(redisUrl: string, prefix: string, model: string): Promise<{ active: number; attemptsStarted: number }> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    const ids = await redis.lrange(inferenceQueueKey(prefix, model, 'active'), 0, -1);
    let attemptsStarted = 0;
    for (const id of ids) attemptsStarted = Math.max(attemptsStarted, Number((await redis.hget(inferenceQueueKey(prefix, model, id), 'ats')) ?? 0));
    return { active: ids.length, attemptsStarted };
  } finally {
    redis.disconnect();
  }
}

/** Runs every registered cleanup (last first); failures are collected, never stop the others. */
export class Cleanup {
  private readonly steps: Array<() => unknown> = [];
  add(step: () => unknown): void {
    this.steps.push(step);
  }
  async run(): Promise<void> {
    const steps = this.steps.splice(0).reverse();
    for (const step of steps) {
      try {
        await step();
      } catch {
        // keep cleaning
      }
    }
  }
}

/** Status counts as `{ "200": n, … }` (0 for transport failures). */
export function countStatuses(replies: readonly TimedReply[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const reply of replies) counts[String(reply.status)] = (counts[String(reply.status)] ?? 0) + 1;
  return counts;
}

export function describeReply(reply: TimedReply): string {
  return `${reply.status}${reply.failure === undefined ? '' : ` ${reply.failure}`} after ${reply.ms.toFixed(0)} ms: ${JSON.stringify(reply.body)?.slice(0, 300)}`;
}

/** The worker child of a `gantry start` process; SIGKILLed at cleanup if it is still alive then. */
export function workerChildOf(gantry: GantryProcess, cleanup: Cleanup): number {
  const workerPid = childPids(gantry.child.pid!)[0];
  assert.ok(workerPid !== undefined, 'the start command has a worker child');
  cleanup.add(() => {
    if (isAlive(workerPid)) process.kill(workerPid, 'SIGKILL');
  });
  return workerPid;
}

/** A queue prefix and data directory for an API and separate workers to share; keys and files go at cleanup. */
export async function sharedDeployment(cleanup: Cleanup, name: string): Promise<{ prefix: string; dataDirectory: string; redisUrl: string }> {
  const prefix = `rel-${name}-${randomBytes(4).toString('hex')}`;
  const dataDirectory = await mkdtemp(path.join(os.tmpdir(), `gantry-rel-${name}-`));
  const redisUrl = 'redis://127.0.0.1:6379';
  cleanup.add(() => rm(dataDirectory, { recursive: true, force: true }));
  cleanup.add(() => deleteKeys(redisUrl, prefix));
  return { prefix, dataDirectory, redisUrl };
}
