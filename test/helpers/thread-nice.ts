import { readdir, readFile } from 'node:fs/promises';

/** How one thread of this process is scheduled (Linux: fields 19 and 41 of /proc/self/task/<tid>/stat). */
export interface ThreadScheduling {
  nice: number;
  /** The scheduling policy: 0 SCHED_OTHER (normal), 5 SCHED_IDLE. */
  policy: number;
}

export const schedIdle = 5;

/** The nice value and scheduling policy of every thread of this process. */
export async function threadScheduling(): Promise<ThreadScheduling[]> {
  const threads: ThreadScheduling[] = [];
  for (const tid of await readdir('/proc/self/task')) {
    // A thread that ended meanwhile has no file any more.
    const stat = await readFile(`/proc/self/task/${tid}/stat`, 'utf8').catch(() => undefined);
    if (stat === undefined) continue;
    // The command name may hold spaces and parentheses: the fields (from the third on) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    threads.push({ nice: Number(fields[16]), policy: Number(fields[38]) });
  }
  return threads;
}

/** The nice value of every thread of this process. */
export async function threadNiceValues(): Promise<number[]> {
  return (await threadScheduling()).map((thread) => thread.nice);
}
