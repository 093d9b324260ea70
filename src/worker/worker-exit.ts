/**
 * How a worker process ends when an instance thread is stuck inside onnxruntime. Node's exit (process.exit,
 * and even the internal reallyExit) joins every worker thread first, so with a thread inside a never-ending
 * native call it hangs forever while that thread keeps a core busy (measured on Node 20 with gdb: the main
 * thread waits in Worker::JoinThread). Only a signal ends such a process; SIGKILL is the one nothing in the
 * process can catch, ignore or delay.
 *
 * An orchestrator sees the exit as killed by SIGKILL (status 137) and restarts the container (compose's
 * `restart: unless-stopped`, a Kubernetes pod's restartPolicy). The supervisor of `gantry start` is told
 * beforehand over its IPC channel, so it restarts the worker at once instead of backing off as after a crash.
 */
import { workerRestartMessageType, type WorkerRestartMessage } from '../runtime/worker-restart-message.js';

/**
 * Ends this process at once, threads and all. With `restart`, a supervising parent (if any) is told first that
 * this is on purpose and a new worker is wanted (waits at most 200 ms for the message to go out).
 */
export async function endWorkerProcess(reason: string, options: { restart: boolean }): Promise<never> {
  const send = process.send?.bind(process);
  if (options.restart && send !== undefined && process.connected) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 200);
      send({ type: workerRestartMessageType, reason } satisfies WorkerRestartMessage, undefined, {}, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
  process.kill(process.pid, 'SIGKILL');
  // SIGKILL is delivered before this line could matter; the promise only satisfies the type.
  return new Promise<never>(() => undefined);
}
