import { createRequire } from 'node:module';
import type tar from 'tar-stream';
import { z } from 'zod';
import type { StoredModel } from '../registry/registry-records.js';
import { keyIdPattern } from '../auth/api-key-format.js';
import { isValidQualifiedModelName } from '../auth/model-names.js';
import { tenantIdPattern } from '../auth/principal.js';
import type { ControlPlaneSnapshot } from './backup-control-plane.js';

/**
 * The layout of a `gantry export` file: a plain tar (so `tar tf` lists it), entries in this order, each written
 * once and streamed, never the whole archive in memory:
 *
 *   manifest.json        what this is (format, Gantry version, deployment, prefix, counts): read first, so a
 *                        foreign file is refused before anything is written
 *   control-plane.json   tenants, API keys (their hashes, never a key) and limits, as Redis holds them
 *   registry.json        the registry records of every model of the prefix (RegistryRecords.readAll)
 *   samples/<sha256>     the warm-up samples live records name
 *   blobs/<sha256>       the model files live records name (absent with --references-only)
 *   end.json             the trailer: what was written, and the versions left out while the export ran
 *
 * The small entries come before the blobs so an import can check its target against the whole registry before it
 * stores a byte; the trailer comes last so an archive cut anywhere (even between two entries) is refused.
 */

/** Bumped when an older Gantry could not read what this one writes. */
export const backupFormatVersion = 1;
/** What manifest.json's `format` says, so an import can tell a Gantry archive from any other tar. */
export const backupFormatName = 'gantry-export';

export const manifestEntry = 'manifest.json';
export const controlPlaneEntry = 'control-plane.json';
export const registryEntry = 'registry.json';
export const trailerEntry = 'end.json';
export const sampleEntryPrefix = 'samples/';
export const blobEntryPrefix = 'blobs/';

const sha256Pattern = /^[0-9a-f]{64}$/;

/** The sha256 an entry named `<prefix><sha256>` holds, or undefined for another name. */
export function sha256OfEntry(name: string, entryPrefix: string): string | undefined {
  if (!name.startsWith(entryPrefix)) return undefined;
  const sha256 = name.slice(entryPrefix.length);
  return sha256Pattern.test(sha256) ? sha256 : undefined;
}

export const manifestSchema = z.object({
  format: z.literal(backupFormatName),
  formatVersion: z.number().int().positive(),
  gantryVersion: z.string(),
  deploymentId: z.string(),
  prefix: z.string(),
  createdAt: z.string(),
  /** true: blobs are not in the archive; the target must share the model store (they are checked there). */
  referencesOnly: z.boolean(),
  counts: z.object({ models: z.number(), versions: z.number(), tenants: z.number(), keys: z.number(), blobs: z.number(), samples: z.number() }),
});
export type BackupManifest = z.infer<typeof manifestSchema>;

/** A version the export meant to include but could not: its blob (or sample) went from the store meanwhile. */
const leftOutSchema = z.object({ name: z.string(), version: z.string(), reason: z.string() });
export type LeftOutVersion = z.infer<typeof leftOutSchema>;

export const trailerSchema = z.object({
  blobs: z.array(z.string()),
  samples: z.array(z.string()),
  /** Versions whose blob was removed between the records read and the blob read: deleted meanwhile. */
  leftOutVersions: z.array(leftOutSchema),
  /** Samples removed meanwhile: their versions come back without a warm-up sample. */
  leftOutSamples: z.array(z.string()),
});
export type BackupTrailer = z.infer<typeof trailerSchema>;

const versionNumberPattern = /^[1-9][0-9]{0,15}$/;

/**
 * The registry entry: records as readAll gives them. Names, numbers and sha256s become Redis keys, queue names and
 * file names in the target, so they are checked as strictly as an upload checks them; the rest (configurations,
 * signatures, routing) is kept as the store wrote it.
 */
const versionRecordSchema = z.looseObject({
  name: z.string(),
  version: z.string().regex(versionNumberPattern),
  sha256: z.string().regex(sha256Pattern),
  size: z.number().int().nonnegative(),
  createdAt: z.string(),
  warmupSample: z.string().regex(sha256Pattern).optional(),
});
const storedModelSchema = z.looseObject({
  name: z.string().refine(isValidQualifiedModelName, 'not a model name Gantry accepts'),
  highestVersion: z.number().int().nonnegative(),
  versions: z.array(versionRecordSchema),
});
export const registrySchema = z.object({ models: z.array(storedModelSchema) });
/** What registrySchema accepts is what readAll wrote. */
export function storedModelsOf(registry: z.infer<typeof registrySchema>): StoredModel[] {
  return registry.models as unknown as StoredModel[];
}

export const controlPlaneSchema = z.object({
  tenants: z.array(z.object({ id: z.string().regex(tenantIdPattern), fields: z.record(z.string(), z.string()) })),
  keys: z.array(
    z.object({
      id: z.string().regex(keyIdPattern),
      fields: z
        .record(z.string(), z.string())
        .refine((fields) => fields.hash !== undefined && fields.tenant !== undefined, 'a key record needs its hash and tenant'),
      expiresInMs: z.number().int().positive().optional(),
      limits: z.string().optional(),
    }),
  ),
}) satisfies z.ZodType<ControlPlaneSnapshot>;

/** This Gantry's version (package.json), for the manifest. */
export function gantryVersion(): string {
  return (createRequire(import.meta.url)('../../../package.json') as { version: string }).version;
}

/** Why an archive cannot be imported: the message says what is wrong with it. */
export class BackupArchiveError extends Error {}

/** One entry of an archive being read: its header and its bytes. */
export type ArchiveEntry = tar.Extract extends AsyncIterable<infer Entry> ? Entry : never;
