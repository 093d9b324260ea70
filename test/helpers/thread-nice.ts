import { readdir, readFile } from 'node:fs/promises';

/** The nice value of every thread of this process (Linux: field 19 of /proc/self/task/<tid>/stat). */
export async function threadNiceValues(): Promise<number[]> {
  const values: number[] = [];
  for (const tid of await readdir('/proc/self/task')) {
    // A thread that ended meanwhile has no file any more.
    const stat = await readFile(`/proc/self/task/${tid}/stat`, 'utf8').catch(() => undefined);
    // The command name may hold spaces and parentheses: the fields start after the last ')'.
    if (stat !== undefined) values.push(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]));
  }
  return values;
}
