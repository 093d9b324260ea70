import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../logger.js';
import { isWorkerRestartMessage } from './worker-restart-message.js';

const cliPath = fileURLToPath(new URL('../cli.js', import.meta.url));

/**
 * Runs the embedded default's worker as a child process and restarts it if it dies, so a native crash in
 * onnxruntime takes down one worker, never the API. A worker that ends itself on purpose (to stop a run stuck
 * inside onnxruntime, see worker/worker-exit.ts) says so first over IPC and is restarted at once, without the
 * crash back-off.
 */
export class WorkerSupervisor {
  private child: ChildProcess | undefined;
  private stopping = false;
  private restarts = 0;

  constructor(
    private readonly environment: NodeJS.ProcessEnv,
    private readonly logger: Logger,
  ) {}

  start(): void {
    const child = fork(cliPath, ['worker'], { env: this.environment, stdio: 'inherit' });
    this.child = child;
    const started = Date.now();
    let restartReason: string | undefined;
    child.on('message', (message) => {
      if (isWorkerRestartMessage(message)) restartReason = message.reason;
    });
    child.once('exit', (code, signal) => {
      if (this.stopping) return;
      if (restartReason !== undefined) {
        this.logger.warn({ code, signal, reason: restartReason }, 'worker ended itself to stop a stuck model; starting a new one');
        this.start();
        return;
      }
      // Back off when the worker dies right after starting, so a broken setup does not spin.
      this.restarts = Date.now() - started < 10_000 ? this.restarts + 1 : 0;
      const delayMs = Math.min(30_000, 250 * 2 ** this.restarts);
      this.logger.error({ code, signal, delayMs }, 'worker process exited; restarting');
      setTimeout(() => {
        if (!this.stopping) this.start();
      }, delayMs).unref();
    });
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Asks the worker to drain and exit; kills it if it has not exited within `timeoutMs`. */
  async stop(timeoutMs: number): Promise<void> {
    this.stopping = true;
    const child = this.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    await exited;
    clearTimeout(timer);
  }
}
