import type { z } from 'zod';
import {
  BackupArchiveError,
  backupFormatName,
  backupFormatVersion,
  manifestEntry,
  manifestSchema,
  type ArchiveEntry,
  type BackupManifest,
} from './backup-archive.js';

/** The small JSON entries are read whole; none is near this unless the file is not what it claims. */
const jsonEntryLimitBytes = 256 * 1024 ** 2;

/**
 * Reads the archive's first entry, its manifest, and refuses anything that is not a Gantry export this Gantry
 * can read, before a byte of the target is touched.
 * @throws BackupArchiveError naming what the file is instead.
 */
export async function readManifest(entries: AsyncIterator<ArchiveEntry>): Promise<BackupManifest> {
  const text = await readEntryText(entries, manifestEntry, 'it is not a Gantry export (a tar whose first entry is manifest.json)');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new BackupArchiveError('its manifest.json is not JSON');
  }
  const format = (parsed as { format?: unknown } | null)?.format;
  if (format !== backupFormatName) throw new BackupArchiveError(`its manifest says format '${String(format).slice(0, 40)}', not '${backupFormatName}'`);
  const manifest = manifestSchema.safeParse(parsed);
  if (!manifest.success) throw new BackupArchiveError(`its manifest is malformed (${manifest.error.issues[0]?.path.join('.') ?? '?'})`);
  if (manifest.data.formatVersion > backupFormatVersion)
    throw new BackupArchiveError(
      `it was written in format ${manifest.data.formatVersion} by Gantry ${manifest.data.gantryVersion}; this Gantry reads format ${backupFormatVersion}: import it with that Gantry version or newer`,
    );
  return manifest.data;
}

/** Reads the next entry, which must be `name`, as JSON validated by `schema`. @throws BackupArchiveError otherwise. */
export async function readJsonEntry<T>(entries: AsyncIterator<ArchiveEntry>, name: string, schema: z.ZodType<T>): Promise<T> {
  const text = await readEntryText(entries, name, `its entries are out of order (expected ${name})`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new BackupArchiveError(`its ${name} is not JSON`);
  }
  const result = schema.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new BackupArchiveError(`its ${name} is malformed at ${issue?.path.join('.') || 'the top level'}: ${issue?.message ?? 'invalid'}`);
  }
  return result.data;
}

async function readEntryText(entries: AsyncIterator<ArchiveEntry>, name: string, wrongName: string): Promise<string> {
  const next = await entries.next();
  if (next.done === true) throw new BackupArchiveError(`it ends before its ${name}`);
  if (next.value.header.name !== name) throw new BackupArchiveError(wrongName);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of next.value) {
    const bytes = chunk as Buffer;
    total += bytes.length;
    if (total > jsonEntryLimitBytes) throw new BackupArchiveError(`its ${name} is larger than ${jsonEntryLimitBytes} bytes`);
    chunks.push(bytes);
  }
  return Buffer.concat(chunks).toString('utf8');
}
