import { randomUUID } from 'node:crypto';
import { link, open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';

/**
 * Small files that must survive a crash or a power cut whole (the registry records beside the blobs): each is
 * written to a temporary file in the same folder, fsynced, renamed into place, and the folder is fsynced so the
 * rename itself is on disk. A reader sees the old content or the new one, never half of either.
 */
export async function writeFileDurably(file: string, content: string): Promise<void> {
  const temporary = temporaryNameFor(file);
  try {
    await writeAndSync(temporary, content);
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  await syncFolder(path.dirname(file));
}

/**
 * Creates `file` with `content` only if nothing is there yet, atomically (a hard link fails when the name
 * exists, so two processes racing both see one winner). Returns true when this call created it.
 */
export async function createFileDurablyIfAbsent(file: string, content: string): Promise<boolean> {
  const temporary = temporaryNameFor(file);
  try {
    await writeAndSync(temporary, content);
    await link(temporary, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    await rm(temporary, { force: true });
  }
  await syncFolder(path.dirname(file));
  return true;
}

/** The file's text, or undefined when it does not exist. */
export async function readTextIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Temporary names start with '.' and end in '.partial', so listings of records skip them. */
function temporaryNameFor(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${randomUUID()}.partial`);
}

async function writeAndSync(file: string, content: string): Promise<void> {
  const handle = await open(file, 'wx');
  try {
    await handle.writeFile(content, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Makes a rename or link in `folder` durable; a filesystem that cannot fsync a folder (some network ones) is let be. */
async function syncFolder(folder: string): Promise<void> {
  let handle;
  try {
    handle = await open(folder, 'r');
    await handle.sync();
  } catch {
    // EISDIR/EINVAL/EPERM on filesystems without directory fsync: the rename is still atomic, only less durable.
  } finally {
    await handle?.close();
  }
}
