/**
 * The IPC message a supervised worker sends just before it ends itself on purpose (to stop a model stuck inside
 * onnxruntime; see worker/worker-exit.ts), so that the supervisor restarts it at once instead of backing off.
 * It lives here, not in worker/, because the supervisor reads it and nothing may import worker code.
 */
export const workerRestartMessageType = 'gantry-worker-restart';

export interface WorkerRestartMessage {
  type: typeof workerRestartMessageType;
  reason: string;
}

export function isWorkerRestartMessage(message: unknown): message is WorkerRestartMessage {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === workerRestartMessageType;
}
