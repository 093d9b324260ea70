/**
 * A private Redis Sentinel deployment for tests and benchmarks that fail a master over: one master and its
 * replicas (redis-server, AOF everysec, each in a directory of its own on a free port) watched by three sentinels
 * (redis-sentinel, quorum 2, a short down-after so a failover takes seconds). Needs `redis-server`,
 * `redis-sentinel` and `redis-cli` on PATH (Debian: packages redis-server and redis-sentinel).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../src/runtime/free-port.js';
import { sleep } from './private-redis.js';

const run = promisify(execFile);

export interface SentinelGroupOptions {
  /** The name the sentinels monitor the master under (`sentinel monitor <name> …`). Default `mymaster`. */
  masterName?: string;
  /** Replicas of the master. Default 1. */
  replicas?: number;
  /** How long a master must be unreachable before a sentinel thinks it down. Default 1000 ms. */
  downAfterMs?: number;
  /** Sentinel's failover-timeout (also the pause before the same master is failed over again). Default 3000 ms. */
  failoverTimeoutMs?: number;
  /** The servers' `requirepass` (and `masterauth`, and the sentinels' `auth-pass`); it goes into `url` too. */
  password?: string;
  /** The sentinels' own `requirepass` (what REDIS_SENTINEL_PASSWORD is set to). */
  sentinelPassword?: string;
}

export interface RedisNode {
  port: number;
  directory: string;
  process: ChildProcess;
}

export interface SentinelGroup {
  masterName: string;
  /** `redis+sentinel://[:password@]127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3/<name>`: what REDIS_URL is set to. */
  url: string;
  /** `127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3`: what REDIS_SENTINELS is set to. */
  sentinelList: string;
  sentinelPorts: number[];
  /** The master it started with, then the replicas. */
  servers: RedisNode[];
  /** The port of the master the sentinels name now (asked of the first sentinel that answers). */
  masterPort: () => Promise<number | undefined>;
  /** SIGKILLs the server the sentinels name as master (no AOF flush, no goodbye); resolves with its port. */
  killMaster: () => Promise<number>;
  /**
   * Asks a sentinel for a failover (SENTINEL FAILOVER) while the master stays up: it is demoted to a replica of the
   * promoted one. Resolves with the old master's port once the sentinel has accepted.
   */
  failOver: () => Promise<number>;
  /**
   * Resolves with the new master's port once every sentinel names another server than `oldPort` and that server
   * says it is a master; rejects after `timeoutMs`.
   */
  waitForPromotion: (oldPort: number, timeoutMs: number) => Promise<number>;
  /**
   * Resolves once the server on `port` is no master any more: dead, or (a failover with it up) made a replica by
   * the sentinels, which also closes its clients so that they ask the sentinels again.
   */
  waitForDemotion: (port: number, timeoutMs: number) => Promise<void>;
  /** Resolves once every replica has applied everything the master has (equal replication offsets). */
  waitForReplicas: (timeoutMs: number) => Promise<void>;
  /** Any redis-cli command against one of the group's servers or sentinels (by port, with its password); resolves with its output. */
  cli: (port: number, ...args: string[]) => Promise<string>;
  /** Kills every process of the group and removes its directories. */
  cleanup: () => Promise<void>;
}

/** Starts the master, its replicas and three sentinels; resolves once the sentinels can fail the master over. */
export async function startSentinelGroup(options: SentinelGroupOptions = {}): Promise<SentinelGroup> {
  const masterName = options.masterName ?? 'mymaster';
  const root = await mkdtemp(path.join(os.tmpdir(), 'gantry-sentinel-group-'));
  const children: ChildProcess[] = [];
  const servers: RedisNode[] = [];
  const sentinelPorts: number[] = [];
  const passwords = new Map<number, string | undefined>();
  const cli = (port: number, ...args: string[]) => redisCli(port, passwords.get(port), args);
  const cleanup = async () => {
    await Promise.all(children.map((child) => killAndWait(child)));
    await rm(root, { recursive: true, force: true });
  };
  try {
    const master = await startServer(root, 'master', undefined, options.password, children);
    servers.push(master);
    for (let index = 0; index < (options.replicas ?? 1); index++)
      servers.push(await startServer(root, `replica-${index + 1}`, master.port, options.password, children));
    for (const server of servers) passwords.set(server.port, options.password);
    for (let index = 0; index < 3; index++) {
      const port = await freePort();
      const directory = path.join(root, `sentinel-${index + 1}`);
      await mkdir(directory);
      // A sentinel rewrites its configuration file (what it learnt of replicas and other sentinels): one each.
      const configFile = path.join(directory, 'sentinel.conf');
      await writeFile(
        configFile,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${directory}`,
          `logfile ${path.join(directory, 'sentinel.log')}`,
          `sentinel monitor ${masterName} 127.0.0.1 ${master.port} 2`,
          `sentinel down-after-milliseconds ${masterName} ${options.downAfterMs ?? 1000}`,
          `sentinel failover-timeout ${masterName} ${options.failoverTimeoutMs ?? 3000}`,
          `sentinel parallel-syncs ${masterName} 1`,
          ...(options.password === undefined ? [] : [`sentinel auth-pass ${masterName} ${quoted(options.password)}`]),
          // Sentinels with a requirepass use it to talk to each other too.
          ...(options.sentinelPassword === undefined ? [] : [`requirepass ${quoted(options.sentinelPassword)}`]),
          '',
        ].join('\n'),
      );
      const child = spawn('redis-sentinel', [configFile], { stdio: 'ignore' });
      children.push(child);
      passwords.set(port, options.sentinelPassword);
      await waitForPing(port, options.sentinelPassword, child, 'redis-sentinel');
      sentinelPorts.push(port);
    }
    // A failover needs a majority of sentinels that know each other (hello messages, every 2 s) and a replica
    // they have seen up with a working link: CKQUORUM says so for the first, SENTINEL REPLICAS for the second.
    await waitFor(
      async () => {
        for (const port of sentinelPorts) {
          if (!(await cli(port, 'SENTINEL', 'CKQUORUM', masterName)).startsWith('OK 3 usable')) return false;
          const replicas = await cli(port, 'SENTINEL', 'REPLICAS', masterName);
          const healthy = replicas.match(/^flags\nslave\n(?:.*\n)*?master-link-status\nok$/gm) ?? [];
          if (healthy.length !== servers.length - 1) return false;
        }
        return true;
      },
      20_000,
      'the sentinels to see each other and every replica',
    );
  } catch (error) {
    await cleanup();
    throw error;
  }

  const masterPort = async () => {
    for (const port of sentinelPorts) {
      try {
        const [, masterPortText] = (await cli(port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName)).split('\n');
        if (masterPortText !== undefined) return Number(masterPortText);
      } catch {
        // this sentinel does not answer; ask the next
      }
    }
    return undefined;
  };
  const serverOn = (port: number) => servers.find((server) => server.port === port);
  const sentinelList = sentinelPorts.map((port) => `127.0.0.1:${port}`).join(',');
  const credentials = options.password === undefined ? '' : `:${encodeURIComponent(options.password)}@`;
  return {
    masterName,
    url: `redis+sentinel://${credentials}${sentinelList}/${masterName}`,
    sentinelList,
    sentinelPorts,
    servers,
    masterPort,
    cli,
    cleanup,
    killMaster: async () => {
      const port = await masterPort();
      const server = port === undefined ? undefined : serverOn(port);
      if (server === undefined) throw new Error(`the sentinels name no master of this group (port ${port})`);
      await killAndWait(server.process);
      return server.port;
    },
    failOver: async () => {
      const port = await masterPort();
      if (port === undefined) throw new Error('the sentinels name no master of this group');
      const answer = await cli(sentinelPorts[0]!, 'SENTINEL', 'FAILOVER', masterName);
      if (answer !== 'OK') throw new Error(`SENTINEL FAILOVER ${masterName} answered ${answer}`);
      return port;
    },
    waitForPromotion: async (oldPort, timeoutMs) => {
      let promoted: number | undefined;
      await waitFor(
        async () => {
          const named = new Set<number>();
          for (const port of sentinelPorts) named.add(Number((await cli(port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName)).split('\n')[1]));
          const [port] = named;
          if (named.size !== 1 || port === oldPort || port === undefined) return false;
          if (!(await cli(port, 'ROLE')).startsWith('master')) return false;
          promoted = port;
          return true;
        },
        timeoutMs,
        `a replica to be promoted in place of the master on ${oldPort}`,
      );
      return promoted!;
    },
    waitForDemotion: async (port, timeoutMs) => {
      const server = serverOn(port);
      await waitFor(
        async () =>
          server === undefined || server.process.exitCode !== null || server.process.signalCode !== null || (await cli(port, 'ROLE')).startsWith('slave'),
        timeoutMs,
        `the old master on ${port} to become a replica`,
      );
    },
    waitForReplicas: async (timeoutMs) => {
      await waitFor(
        async () => {
          const port = await masterPort();
          if (port === undefined) return false;
          const offset = replicationField(await cli(port, 'INFO', 'replication'), 'master_repl_offset');
          for (const server of servers) {
            if (server.port === port || server.process.exitCode !== null || server.process.signalCode !== null) continue;
            const info = await cli(server.port, 'INFO', 'replication');
            if (replicationField(info, 'master_link_status') !== 'up' || Number(replicationField(info, 'slave_repl_offset')) < Number(offset)) return false;
          }
          return true;
        },
        timeoutMs,
        'the replicas to catch up with the master',
      );
    },
  };
}

async function startServer(
  root: string,
  name: string,
  replicaOf: number | undefined,
  password: string | undefined,
  children: ChildProcess[],
): Promise<RedisNode> {
  const port = await freePort();
  const directory = path.join(root, name);
  await mkdir(directory);
  // AOF everysec: what docs/operations.md asks of a production Redis. No RDB snapshots (they only cost time here),
  // and a replica's first sync starts at once instead of after the 5 s that lets several replicas share one.
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', directory, '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', ''];
  args.push('--repl-diskless-sync-delay', '0');
  if (replicaOf !== undefined) args.push('--replicaof', '127.0.0.1', String(replicaOf));
  // Every server may become the master, so each both asks for the password and gives it to its master.
  if (password !== undefined) args.push('--requirepass', password, '--masterauth', password);
  const child = spawn('redis-server', args, { stdio: 'ignore' });
  children.push(child);
  await waitForPing(port, password, child, 'redis-server');
  return { port, directory, process: child };
}

/** A value for a Redis configuration file: in double quotes, so that spaces and the like survive. */
function quoted(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

function replicationField(info: string, field: string): string | undefined {
  return new RegExp(`^${field}:(.*)$`, 'm').exec(info)?.[1]?.trim();
}

async function redisCli(port: number, password: string | undefined, args: string[]): Promise<string> {
  const auth = password === undefined ? [] : ['-a', password, '--no-auth-warning'];
  return (await run('redis-cli', ['-p', String(port), ...auth, ...args], { timeout: 5000 })).stdout.trim();
}

async function waitForPing(port: number, password: string | undefined, child: ChildProcess, what: string): Promise<void> {
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`${what} on ${port} exited (${child.exitCode}) before answering PING`);
      return (await redisCli(port, password, ['ping'])) === 'PONG';
    },
    10_000,
    `${what} on ${port} to answer PING`,
    true,
  );
}

/** Polls `check` every 100 ms until it is true or `timeoutMs` ends; a throw counts as "not yet", but with `rethrowExit` a process that exited ends the wait. */
async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string, rethrowExit = false): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch (error) {
      if (rethrowExit && error instanceof Error && error.message.includes('exited')) throw error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

function killAndWait(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  return exited;
}
