/**
 * The keeper: a tiny process between `gantry start` and its private redis-server, whose only job is to make the
 * server end when the start process ends, however it ends. Its IPC channel to the start process closes when
 * that process dies, even by SIGKILL or the OOM killer (the kernel closes the socket); the keeper then stops the
 * server (SIGTERM, SIGKILL after a bound) and exits with it. It imports nothing of Gantry, so it starts in tens
 * of milliseconds and holds little memory.
 *
 * The redis-server runs in a session of its own (detached), so a Ctrl-C in the terminal, which signals the
 * whole foreground process group, does not stop it before the API and the worker have drained: the start
 * process stops it last, through the keeper. For the same reason the keeper ignores SIGINT and SIGHUP and
 * follows its IPC channel instead.
 */
import { spawn } from 'node:child_process';
import { isToKeeper, orphanStopTimeoutMs, type FromKeeper, type KeeperRequest } from './redis-keeper-messages.js';

const request = JSON.parse(process.argv[2] ?? '{}') as KeeperRequest;
if (process.send === undefined || typeof request.command !== 'string' || !Array.isArray(request.args)) {
  process.stderr.write('redis-keeper: to be started by gantry start over an IPC channel\n');
  process.exit(2);
}

function tell(message: FromKeeper, then?: () => void): void {
  if (process.connected) process.send!(message, undefined, {}, () => then?.());
  else then?.();
}

const redis = spawn(request.command, request.args, { detached: true, stdio: ['ignore', 'ignore', 'inherit'] });
redis.once('spawn', () => tell({ type: 'spawned', pid: redis.pid! }));
redis.once('error', (error) => tell({ type: 'spawn-failed', message: error.message }, () => process.exit(1)));
redis.once('exit', (code, signal) => tell({ type: 'exited', code, signal }, () => process.exit(0)));

let stopping = false;
function stopRedis(timeoutMs: number): void {
  if (stopping) return;
  stopping = true;
  redis.kill('SIGTERM');
  setTimeout(() => redis.kill('SIGKILL'), timeoutMs).unref();
}

process.on('message', (message) => {
  if (isToKeeper(message)) stopRedis(message.timeoutMs);
});
process.once('disconnect', () => stopRedis(orphanStopTimeoutMs));
process.once('SIGTERM', () => stopRedis(request.stopTimeoutMs));
process.on('SIGINT', () => undefined);
process.on('SIGHUP', () => undefined);
