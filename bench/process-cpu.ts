/**
 * CPU time of processes from /proc, for "CPU per request" columns: read each process's utime + stime before and
 * after a measured window and divide the difference by the answers in it. /proc/<pid>/stat of a process counts
 * all of its threads (onnxruntime's pools, worker threads, libuv's), live and ended, so one read per process is enough.
 * Linux only; elsewhere every read is undefined and the columns stay empty.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { procStatFields } from '../src/runtime/process-liveness.js';

/** Clock ticks per second of /proc's times (sysconf(_SC_CLK_TCK)); 100 on every Linux this runs on, but ask once. */
const ticksPerSecond = (() => {
  try {
    const value = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(value) && value > 0 ? value : 100;
  } catch {
    return 100;
  }
})();

/** CPU time (user + system) a process has used so far, in µs; undefined when it is gone or /proc is missing. */
export function cpuMicroseconds(pid: number): number | undefined {
  const fields = procStatFields(pid);
  // After the name: state(3) ppid(4) ... utime(14) stime(15), so utime and stime are fields[11] and fields[12].
  if (fields === undefined) return undefined;
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / ticksPerSecond;
}

/** A process's command line as its arguments ([] when it is gone). */
export function commandLine(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      .split('\0')
      .filter((part) => part !== '');
  } catch {
    return [];
  }
}

/**
 * Every descendant of `pid` (children, their children, ...), found by walking /proc for parent ids: `gantry start`
 * forks its workers (and, with a managed Redis, a keeper), and /proc/<pid>/task/<tid>/children needs a kernel option.
 */
export function descendants(pid: number): number[] {
  const parentOf = new Map<number, number>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = procStatFields(Number(entry));
    if (fields !== undefined) parentOf.set(Number(entry), Number(fields[1]));
  }
  const found: number[] = [];
  const frontier = [pid];
  while (frontier.length > 0) {
    const parent = frontier.pop()!;
    for (const [child, itsParent] of parentOf) {
      if (itsParent === parent) {
        found.push(child);
        frontier.push(child);
      }
    }
  }
  return found.sort((a, b) => a - b);
}

/**
 * The pid of the redis-server behind `redisUrl` when it runs on this machine: INFO's process_id, kept only if that
 * pid here is a redis-server (a Redis in a container or on another host reports a pid that means nothing here).
 */
export async function localRedisPid(redisUrl: string): Promise<number | undefined> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 2_000 });
  redis.on('error', () => {});
  try {
    await redis.connect();
    const info = await redis.info('server');
    const pid = Number(/^process_id:(\d+)/m.exec(info)?.[1]);
    if (!Number.isSafeInteger(pid)) return undefined;
    const name = commandLine(pid)[0] ?? '';
    return /redis-server/.test(name) || readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('redis') ? pid : undefined;
  } catch {
    return undefined;
  } finally {
    redis.disconnect();
  }
}

/** A named group of processes whose CPU is summed (e.g. "worker": every forked worker of one gantry). */
export type ProcessGroups = Record<string, number[]>;

/** Each group's summed CPU µs now; a group whose processes are all unreadable is left out. */
export function sampleGroups(groups: ProcessGroups): Record<string, number> {
  const sample: Record<string, number> = {};
  for (const [name, pids] of Object.entries(groups)) {
    let total: number | undefined;
    for (const pid of pids) {
      const used = cpuMicroseconds(pid);
      if (used !== undefined) total = (total ?? 0) + used;
    }
    if (total !== undefined) sample[name] = total;
  }
  return sample;
}

/** CPU µs per answered request of each group between two samples. */
export function perRequest(before: Record<string, number>, after: Record<string, number>, answered: number): Record<string, number> {
  const result: Record<string, number> = {};
  for (const [name, start] of Object.entries(before)) {
    const end = after[name];
    if (end !== undefined && answered > 0) result[name] = (end - start) / answered;
  }
  return result;
}
