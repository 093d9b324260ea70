import type { Redis } from 'ioredis';
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, stat, unlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { datatypes } from '../protocol/datatypes.js';
import { ErrorCode, GantryError, errors } from '../errors.js';
import { versionKey } from '../redis-keys.js';
import { createFileDurablyIfAbsent } from './durable-file.js';

/**
 * Warm-up samples: an OIP inference request (JSON data only) an uploader gives with a version, run on every instance
 * on every worker before that worker serves the version. Samples are files under `<data>/warmup-samples/`, named by
 * the sha256 of their text, so every worker reads them from the shared data directory; the version's Redis hash
 * and its record in the store hold only that sha256 (`warmupSample`), never the sample itself. The blob collection
 * removes samples no live record names (blob-collector.ts).
 */

const sampleInputSchema = z.object({
  name: z.string().min(1),
  datatype: z.enum(datatypes),
  shape: z.array(z.number().int().nonnegative()),
  data: z.array(z.unknown()),
});

/** The part of an OIP inference request a warm-up sample uses: its inputs, with their data as JSON. */
export const warmupSampleSchema = z.object({ inputs: z.array(sampleInputSchema).min(1) });
export type WarmupSample = z.infer<typeof warmupSampleSchema>;

/** The warm-up sample errors: what an uploader is told. */
export const warmupSampleErrors = {
  tooLarge: (limitBytes: number) =>
    new GantryError(
      ErrorCode.PayloadTooLarge,
      `The warm-up sample exceeds GANTRY_MAX_WARMUP_BYTES (${limitBytes} bytes); give a smaller request (one row is enough).`,
    ),
  /** The sample did not run on the model: the version is UNAVAILABLE with this reason. */
  failed: (reason: string) => new GantryError(ErrorCode.InvalidModel, `The warm-up sample failed: ${reason}`),
};

/** How failed's message starts, so the upload passes it on unchanged. */
export const warmupFailurePrefix = 'The warm-up sample failed';

const sampleNamePattern = /^[0-9a-f]{64}$/;

/**
 * Parses a sample's text, refusing with a 400 that says what is wrong (never echoing the sample).
 * @throws GantryError(INVALID_ARGUMENT) when the text is not JSON or not an inference request with JSON data.
 */
export function parseWarmupSample(text: string): WarmupSample {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw errors.invalidArgument('The warm-up sample is not valid JSON: give an OIP inference request, {"inputs": [{"name", "datatype", "shape", "data"}]}.');
  }
  const parsed = warmupSampleSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue === undefined ? '' : ` at ${issue.path.join('.') || 'the top level'}: ${issue.message}`;
    throw errors.invalidArgument(
      `The warm-up sample is not an inference request with JSON data${where}. Give {"inputs": [{"name", "datatype", "shape", "data"}]}.`,
    );
  }
  return parsed.data;
}

/** Where the samples of one data directory live; the API writes them, every worker reads them. */
export class WarmupSampleStore {
  private readonly directory: string;

  constructor(dataDirectory: string) {
    this.directory = path.join(dataDirectory, 'warmup-samples');
  }

  /** Stores a sample's text (already parsed by parseWarmupSample) durably; returns its name, the sha256 of the text. */
  async put(text: string): Promise<string> {
    const sha256 = createHash('sha256').update(text).digest('hex');
    await mkdir(this.directory, { recursive: true });
    // The same sample stored twice is the same file: the first write stands, and is made young again, so a
    // collection (which spares young files) cannot remove it before the version recording it names it.
    for (;;) {
      if (await createFileDurablyIfAbsent(this.pathOf(sha256), text)) return sha256;
      const now = new Date();
      try {
        await utimes(this.pathOf(sha256), now, now);
        return sha256;
      } catch (error) {
        // Collected between the two calls: write it again.
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
  }

  /**
   * Removes the samples no version names any more (`named`: from the store's records) that are older than
   * `minimumAgeMs`, the age that covers a sample stored but not yet recorded. @returns the samples removed.
   */
  async removeUnnamed(named: ReadonlySet<string>, minimumAgeMs: number): Promise<string[]> {
    let entries: string[];
    try {
      entries = await readdir(this.directory);
    } catch {
      return [];
    }
    const removed: string[] = [];
    for (const entry of entries) {
      const sha256 = entry.endsWith('.json') ? entry.slice(0, -'.json'.length) : '';
      if (!sampleNamePattern.test(sha256) || named.has(sha256)) continue;
      const modified = await stat(this.pathOf(sha256)).then(
        (stats) => stats.mtimeMs,
        () => undefined,
      );
      if (modified === undefined || Date.now() - modified < minimumAgeMs) continue;
      await unlink(this.pathOf(sha256)).catch(() => undefined);
      removed.push(sha256);
    }
    return removed;
  }

  /**
   * Reads a stored sample.
   * @throws Error naming the sample when its file is missing or no longer a sample.
   */
  async get(sha256: string): Promise<WarmupSample> {
    if (!sampleNamePattern.test(sha256)) throw new Error(`'${sha256.slice(0, 70)}' does not name a warm-up sample`);
    let text: string;
    try {
      text = await readFile(this.pathOf(sha256), 'utf8');
    } catch {
      throw new Error(`the warm-up sample ${sha256} is missing from the data directory`);
    }
    return parseWarmupSample(text);
  }

  private pathOf(sha256: string): string {
    return path.join(this.directory, `${sha256}.json`);
  }
}

/** KEYS[1] a version hash; ARGV[1] the sample's sha256. Sets it only on a version that exists (1), else 0. */
const recordSampleScript = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'warmupSample', ARGV[1])
return 1`;

/**
 * Gives a version its warm-up sample (the sha256 a WarmupSampleStore named it by); its next load runs it.
 * @throws GantryError(NOT_FOUND) when the version no longer exists (deleted meanwhile).
 */
export async function recordWarmupSample(redis: Redis, prefix: string, name: string, version: string, sample: string): Promise<void> {
  const recorded = Number(await redis.eval(recordSampleScript, 1, versionKey(prefix, name, version), sample)) === 1;
  if (!recorded) throw errors.modelNotFound(name, version);
}
