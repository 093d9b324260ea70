import { readFileSync, readlinkSync } from 'node:fs';

/**
 * The fields of /proc/<pid>/stat after the command name, or undefined where there is no /proc (not Linux) or no
 * such process. The name sits in parentheses and may itself hold spaces and parentheses, so the fields start
 * after the last ')'.
 */
export function procStatFields(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/**
 * True while process `pid` exists and has not ended. A zombie (ended, not yet reaped by its parent) counts as
 * ended: `kill(pid, 0)` still succeeds for it, but it holds nothing and runs nothing. A process of another user
 * (EPERM) counts as running.
 */
export function isProcessRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  return procStatFields(pid)?.[0] !== 'Z';
}

/**
 * When process `pid` started, in clock ticks after boot (field 22 of /proc/<pid>/stat): with the pid it names
 * one process for good, so a pid the kernel handed to a new process is not taken for the old one. Undefined
 * where there is no /proc.
 */
export function processStartTicks(pid: number): number | undefined {
  const ticks = Number(procStatFields(pid)?.[19]);
  return Number.isFinite(ticks) ? ticks : undefined;
}

/**
 * Linux: the pid namespace this process lives in (as `pid:[4026531836]`). Containers sharing a directory, even
 * with one hostname, each number their processes on their own: a pid means something only inside its namespace.
 * Undefined where there is no /proc.
 */
export function pidNamespace(): string | undefined {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return undefined;
  }
}

/** SIGTERM to `pid`, SIGKILL if it still runs after `timeoutMs`; resolves once it is gone (or 5 s after the SIGKILL). */
export async function stopProcess(pid: number, timeoutMs: number): Promise<void> {
  const signal = (name: NodeJS.Signals) => {
    try {
      process.kill(pid, name);
    } catch {
      // already gone
    }
  };
  if (!isProcessRunning(pid)) return;
  signal('SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (isProcessRunning(pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  if (!isProcessRunning(pid)) return;
  signal('SIGKILL');
  for (let attempt = 0; attempt < 250 && isProcessRunning(pid); attempt++) await new Promise((resolve) => setTimeout(resolve, 20));
}
