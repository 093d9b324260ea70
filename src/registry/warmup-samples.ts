import type { Redis } from 'ioredis';
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { datatypes } from '../protocol/datatypes.js';
import { ErrorCode, GantryError, errors } from '../errors.js';
import { versionKey } from '../redis-keys.js';
import type { WarmupSampleFiles } from './model-store.js';

/**
 * Warm-up samples: an OIP inference request (JSON data only) an uploader gives with a version, run on every instance
 * on every worker before that worker serves the version. Samples are kept by the model store beside the blobs, named by
 * the sha256 of their text, so every worker of every machine reads them; the version's Redis hash
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

/** The samples of one model store (warm-up sample files beside its blobs): the API writes them, every worker reads them. */
export class WarmupSampleStore {
  constructor(private readonly files: WarmupSampleFiles) {}

  /** Stores a sample's text (already parsed by parseWarmupSample) durably; returns its name, the sha256 of the text. */
  async put(text: string): Promise<string> {
    const sha256 = createHash('sha256').update(text).digest('hex');
    await this.files.put(sha256, text);
    return sha256;
  }

  /**
   * Reads a stored sample.
   * @throws Error naming the sample when it is missing or no longer a sample.
   */
  async get(sha256: string): Promise<WarmupSample> {
    if (!sampleNamePattern.test(sha256)) throw new Error(`'${sha256.slice(0, 70)}' does not name a warm-up sample`);
    const text = await this.files.get(sha256);
    if (text === undefined) throw new Error(`the warm-up sample ${sha256} is missing from the model store`);
    return parseWarmupSample(text);
  }

  /**
   * Removes the samples no version names any more (`named`: from the store's records) that are older than
   * `minimumAgeMs`, the age that covers a sample stored but not yet recorded. @returns the samples removed.
   */
  async removeUnnamed(named: ReadonlySet<string>, minimumAgeMs: number): Promise<string[]> {
    const removed: string[] = [];
    for (const { sha256, storedAt } of await this.files.list()) {
      if (named.has(sha256) || Date.now() - storedAt < minimumAgeMs) continue;
      await this.files.remove(sha256);
      removed.push(sha256);
    }
    return removed;
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
