import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../logger.js';
import { isProcessRunning, stopProcess } from './process-liveness.js';
import { isFromKeeper, type KeeperRequest, type ToKeeper } from './redis-keeper-messages.js';

const keeperPath = fileURLToPath(new URL('./redis-keeper-main.js', import.meta.url));

export interface RedisExit {
  code: number | null;
  signal: string | null;
}

/**
 * The start process's side of the keeper (redis-keeper-main.ts): it runs redis-server through a keeper
 * process, so the server ends with the start process even when that one is killed with SIGKILL.
 */
export class RedisKeeper {
  private stopping = false;

  private constructor(
    private readonly keeper: ChildProcess,
    /** The redis-server's pid. */
    readonly redisPid: number,
    /** Settles when the redis-server has exited (as the keeper reports it, or found gone once the keeper is). */
    readonly redisExited: Promise<RedisExit>,
    private readonly keeperExited: Promise<void>,
  ) {}

  /**
   * Starts a keeper that starts `command args` and resolves once the server process exists (not yet answering).
   * `stopTimeoutMs` bounds how long the server may take to stop when the keeper is sent SIGTERM directly.
   */
  static async start(command: string, args: string[], logger: Logger, stopTimeoutMs: number): Promise<RedisKeeper> {
    const request: KeeperRequest = { command, args, stopTimeoutMs };
    // No execArgv: a parent run with --inspect or heap flags must not pass them on to this small helper.
    const keeper = fork(keeperPath, [JSON.stringify(request)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], execArgv: [] });
    const keeperExited = new Promise<void>((resolve) => keeper.once('exit', () => resolve()));
    let spawnedPid: number | undefined;
    const redisExited = new Promise<RedisExit>((resolve) => {
      keeper.on('message', (message) => {
        if (isFromKeeper(message) && message.type === 'exited') resolve({ code: message.code, signal: message.signal });
      });
      void keeperExited.then(() => {
        if (spawnedPid === undefined || !isProcessRunning(spawnedPid)) resolve({ code: null, signal: null });
      });
    });
    spawnedPid = await new Promise<number>((resolve, reject) => {
      keeper.on('message', (message) => {
        if (!isFromKeeper(message)) return;
        if (message.type === 'spawned') resolve(message.pid);
        if (message.type === 'spawn-failed') reject(new Error(`could not start ${command}: ${message.message}`));
      });
      keeper.once('error', reject);
      void keeperExited.then(() => reject(new Error(`the process keeping ${command} exited before starting it`)));
    });
    const redisPid = spawnedPid;
    const kept = new RedisKeeper(keeper, redisPid, redisExited, keeperExited);
    void redisExited.then((exit) => {
      if (!kept.stopping)
        logger.error({ ...exit, pid: redisPid }, 'the private redis-server exited while Gantry runs; Redis is unavailable until Gantry is restarted');
    });
    void keeperExited.then(() => {
      if (!kept.stopping && isProcessRunning(redisPid)) {
        logger.error(
          { keeperPid: keeper.pid, pid: redisPid, signal: keeper.signalCode },
          'the process keeping the private redis-server ended; the server runs on, but will not stop with Gantry if Gantry is killed (the next start stops it first)',
        );
      }
    });
    return kept;
  }

  /**
   * Stops the redis-server (SIGTERM, SIGKILL after `timeoutMs`) and the keeper; resolves once both are gone.
   * Safe to call twice.
   */
  async stop(timeoutMs: number): Promise<void> {
    this.stopping = true;
    if (this.keeper.exitCode === null && this.keeper.signalCode === null && this.keeper.connected) {
      this.keeper.send({ type: 'stop', timeoutMs } satisfies ToKeeper);
      // The keeper kills the server at timeoutMs; past that and a margin, it is stuck itself.
      const stuck = setTimeout(() => this.keeper.kill('SIGKILL'), timeoutMs + 2000);
      await this.keeperExited;
      clearTimeout(stuck);
    }
    // The keeper is gone (it ended with the server, or was killed before): stop a server it left behind.
    await stopProcess(this.redisPid, timeoutMs);
  }
}
