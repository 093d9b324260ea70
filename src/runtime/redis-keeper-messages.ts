/** What the keeper is asked to run: passed as JSON in its first argument. */
export interface KeeperRequest {
  command: string;
  args: string[];
  /** How long a SIGTERMed redis-server may take before SIGKILL, when the keeper itself is sent SIGTERM (ms). */
  stopTimeoutMs: number;
}

/** From the start process to its keeper. */
export type ToKeeper = { type: 'stop'; timeoutMs: number };

/** From the keeper to the start process. */
export type FromKeeper =
  { type: 'spawned'; pid: number } | { type: 'spawn-failed'; message: string } | { type: 'exited'; code: number | null; signal: string | null };

/**
 * How long the keeper gives redis-server to stop after SIGTERM once the start process is gone, before SIGKILL.
 * A SIGKILL loses nothing a client was told is written: Redis write()s each command to its append-only file
 * before it replies, and a killed process's writes stay in the kernel's page cache. The bound keeps everything
 * of a killed start gone within 2 s.
 */
export const orphanStopTimeoutMs = 1000;

export function isFromKeeper(message: unknown): message is FromKeeper {
  return typeof message === 'object' && message !== null && typeof (message as { type?: unknown }).type === 'string';
}

export function isToKeeper(message: unknown): message is ToKeeper {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === 'stop';
}
