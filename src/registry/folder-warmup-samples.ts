import { mkdir, readFile, readdir, stat, unlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import { createFileDurablyIfAbsent } from './durable-file.js';
import type { WarmupSampleFiles } from './model-store.js';

const sampleFilePattern = /^([0-9a-f]{64})\.json$/;

/** Warm-up samples as files `<sha256>.json` in one folder of the data directory (the file store's). */
export class FolderWarmupSamples implements WarmupSampleFiles {
  constructor(private readonly directory: string) {}

  async put(sha256: string, text: string): Promise<void> {
    await mkdir(this.directory, { recursive: true });
    for (;;) {
      // The same sample stored twice is the same file: the first write stands, and is made young again.
      if (await createFileDurablyIfAbsent(this.pathOf(sha256), text)) return;
      const now = new Date();
      try {
        await utimes(this.pathOf(sha256), now, now);
        return;
      } catch (error) {
        // Collected between the two calls: write it again.
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
  }

  async get(sha256: string): Promise<string | undefined> {
    try {
      return await readFile(this.pathOf(sha256), 'utf8');
    } catch {
      return undefined;
    }
  }

  async list(): Promise<Array<{ sha256: string; storedAt: number }>> {
    let entries: string[];
    try {
      entries = await readdir(this.directory);
    } catch {
      return [];
    }
    const samples: Array<{ sha256: string; storedAt: number }> = [];
    for (const entry of entries) {
      const sha256 = sampleFilePattern.exec(entry)?.[1];
      if (sha256 === undefined) continue;
      const storedAt = await stat(this.pathOf(sha256)).then(
        (stats) => stats.mtimeMs,
        () => undefined,
      );
      if (storedAt !== undefined) samples.push({ sha256, storedAt });
    }
    return samples;
  }

  async remove(sha256: string): Promise<void> {
    await unlink(this.pathOf(sha256)).catch(() => undefined);
  }

  private pathOf(sha256: string): string {
    return path.join(this.directory, `${sha256}.json`);
  }
}
