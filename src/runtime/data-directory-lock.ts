import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import type { Logger } from '../logger.js';
import { isProcessRunning, pidNamespace, processStartTicks } from './process-liveness.js';

/** The lock itself: a directory proper-lockfile creates atomically (mkdir) and keeps fresh (its mtime). */
const lockName = 'gantry-start.lock';
/** Who holds the lock, beside it: proper-lockfile removes its directory with rmdir, so it must stay empty. */
const ownerName = 'gantry-start-owner.json';

/** What the holder of the lock records about itself, so that the next start can tell whether it still runs. */
interface LockOwner {
  pid: number;
  hostname: string;
  /** Linux: the pid namespace `pid` belongs to (containers sharing the directory each have their own). */
  pidNamespace?: string;
  /** Linux: the holder's start time in clock ticks after boot; tells its pid from the same pid reused. */
  startTicks?: number;
  /** ISO time the lock was taken. */
  since: string;
}

/** Refusal to start on a data directory whose lock another live process holds. */
export class DataDirectoryLockedError extends Error {
  constructor(
    readonly directory: string,
    readonly owner: LockOwner | undefined,
  ) {
    const holder =
      owner === undefined
        ? 'a process that has not recorded itself yet (it may be starting or stopping)'
        : `process ${owner.pid}${isLocal(owner) ? '' : ` on host ${owner.hostname} (or in another container)`}, since ${owner.since}`;
    const stop = owner === undefined ? 'Stop the other gantry start first' : `Stop it first (kill ${owner.pid})`;
    super(
      `Another gantry start holds the data directory ${directory} and runs its private Redis: ${holder}. ` +
        `Two starts on one directory would run two redis-servers on one append-only file. ${stop}, ` +
        'or give this one a data directory of its own with GANTRY_DATA_DIR, or let both share one Redis through REDIS_URL.',
    );
  }
}

/** A held data-directory lock. */
export interface DataDirectoryLock {
  /**
   * Removes the owner record and the lock; safe to call twice. After the lock was lost only the record goes,
   * if it still names this holder: until then, it keeps other starts off while this one stops its Redis.
   */
  release: () => Promise<void>;
}

export interface DataDirectoryLockOptions {
  logger: Logger;
  /**
   * Called once when the lock is lost while held: its directory was removed or replaced, or it could not be
   * refreshed within `staleMs` (a disk error, an event loop stalled that long). Another start may take the
   * directory from then on.
   */
  onLost: (error: Error) => void;
  /** A lock not refreshed for this long counts as abandoned, whoever it names. Default 20 000 ms (minimum 2000). */
  staleMs?: number;
  /** How often the holder refreshes the lock. Default 5000 ms (at most staleMs / 2, at least 1000). */
  updateMs?: number;
}

/** True when the holder's pid can be looked up here: it ran on this host, in this pid namespace. */
function isLocal(owner: LockOwner): boolean {
  return owner.hostname === os.hostname() && owner.pidNamespace === pidNamespace();
}

/** True when the recorded holder is certainly gone: it ran here and its process no longer runs. */
function holderIsGone(owner: LockOwner): boolean {
  if (!isLocal(owner)) return false;
  if (!isProcessRunning(owner.pid)) return true;
  const ticks = processStartTicks(owner.pid);
  return owner.startTicks !== undefined && ticks !== undefined && ticks !== owner.startTicks;
}

async function exists(filePath: string): Promise<boolean> {
  return stat(filePath).then(
    () => true,
    () => false,
  );
}

async function readOwner(ownerPath: string): Promise<LockOwner | undefined> {
  try {
    const owner = JSON.parse(await readFile(ownerPath, 'utf8')) as LockOwner;
    return Number.isInteger(owner.pid) && typeof owner.hostname === 'string' ? owner : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Takes the data-directory lock of `gantry start` (proper-lockfile), so that one start at a time owns the
 * directory's private Redis. The recorded holder decides when it ran here (this host, this pid namespace):
 * while its process runs the directory is refused, whatever the lock's age; once it is gone (a start killed
 * with SIGKILL) its lock is taken over at once, with a warning. Otherwise (a holder on another host or in
 * another container sharing the directory, or one that died before recording itself) proper-lockfile decides:
 * a lock nobody refreshed for `staleMs` is taken over.
 *
 * Taking, taking over and releasing all happen under a short second lock (the "gate", on the owner record),
 * so the owner record always names the holder of the lock when another start reads it: without it, two starts
 * after a crash could both judge the dead holder's lock stale and the second remove the first's new lock.
 * @throws DataDirectoryLockedError while another live process holds the lock.
 */
export async function lockDataDirectory(dataDirectory: string, options: DataDirectoryLockOptions): Promise<DataDirectoryLock> {
  const directory = path.resolve(dataDirectory);
  const lockPath = path.join(directory, lockName);
  const ownerPath = path.join(directory, ownerName);
  const { logger } = options;
  await mkdir(directory, { recursive: true });

  let lost = false;
  const lockOptions: lockfile.LockOptions = {
    lockfilePath: lockPath,
    realpath: false,
    stale: options.staleMs ?? 20_000,
    update: options.updateMs ?? 5000,
    onCompromised: (error) => {
      lost = true;
      options.onLost(error);
    },
  };
  let releaseLock: (() => Promise<void>) | undefined;
  let mine: LockOwner = { pid: process.pid, hostname: os.hostname(), since: '' };
  await underGate(ownerPath, logger, async () => {
    const previous = await readOwner(ownerPath);
    if (previous !== undefined && holderIsGone(previous)) {
      if (await exists(lockPath)) {
        logger.warn(
          { directory, pid: previous.pid, since: previous.since },
          `the gantry start that held this data directory (pid ${previous.pid}) is gone without releasing it; taking its lock over`,
        );
        await rm(lockPath, { recursive: true, force: true });
      }
    } else if (previous !== undefined && isLocal(previous)) {
      // Its process runs: it holds the directory, even if its lock looks stale (an event loop stalled that long).
      throw new DataDirectoryLockedError(directory, previous);
    }
    try {
      releaseLock = await lockfile.lock(directory, lockOptions);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ELOCKED') throw new DataDirectoryLockedError(directory, previous);
      throw error;
    }
    mine = {
      pid: process.pid,
      hostname: os.hostname(),
      pidNamespace: pidNamespace(),
      startTicks: processStartTicks(process.pid),
      since: new Date().toISOString(),
    };
    // Written whole or not at all: a reader never sees half a record.
    const temporary = `${ownerPath}.${process.pid}.tmp`;
    try {
      await writeFile(temporary, JSON.stringify(mine));
      await rename(temporary, ownerPath);
    } catch (error) {
      await releaseLock().catch(() => undefined);
      throw error;
    }
  });

  let released = false;
  return {
    release: async () => {
      if (released) return;
      released = true;
      await underGate(ownerPath, logger, async () => {
        // After a loss the record and the lock may be another start's by now: only what is still ours goes.
        const recorded = await readOwner(ownerPath);
        if (recorded?.pid === mine.pid && recorded.since === mine.since) await rm(ownerPath, { force: true });
        if (lost) return;
        await releaseLock?.().catch((error: NodeJS.ErrnoException) => {
          if (error.code !== 'ERELEASED') throw error;
        });
      });
    },
  };
}

/**
 * Runs `critical` while holding the gate lock. The gate is held for milliseconds; a gate whose holder died
 * inside it goes stale after 5 s, so waiting up to ~8 s always gets through.
 */
async function underGate(ownerPath: string, logger: Logger, critical: () => Promise<void>): Promise<void> {
  const releaseGate = await lockfile.lock(ownerPath, {
    realpath: false,
    stale: 5000,
    retries: { retries: 80, factor: 1, minTimeout: 100, maxTimeout: 100 },
    onCompromised: (error) => logger.warn({ err: error }, 'the data-directory gate lock was lost while held'),
  });
  try {
    await critical();
  } finally {
    await releaseGate().catch(() => undefined);
  }
}
