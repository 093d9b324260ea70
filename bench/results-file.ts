import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { repositoryRoot } from './models.js';

/** The 1-, 5- and 15-minute load averages as printed beside every measurement (a shared VM's numbers need them). */
export function loadAverageText(): string {
  return os
    .loadavg()
    .map((load) => load.toFixed(2))
    .join(' ');
}

/** Writes a bench's results as JSON under bench/results/ (git-ignored); returns the path relative to the repository. */
export async function writeBenchResults(fileName: string, results: unknown): Promise<string> {
  const directory = path.join(repositoryRoot, 'bench/results');
  await mkdir(directory, { recursive: true });
  await writeFile(path.join(directory, fileName), `${JSON.stringify(results, null, 2)}\n`);
  return `bench/results/${fileName}`;
}
