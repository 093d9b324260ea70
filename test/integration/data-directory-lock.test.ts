/**
 * The data-directory lock of `gantry start` (src/runtime/data-directory-lock.ts) on a real filesystem, with real
 * holder processes: refused while the holder runs (even when its lock looks stale), taken over at once when the
 * holder was killed, one winner among concurrent takers, and a lost lock reported.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { DataDirectoryLockedError, lockDataDirectory } from '../../src/runtime/data-directory-lock.js';
import { repositoryRoot } from '../helpers/gantry-process.js';

/** A logger whose lines the test can read. */
function capturingLogger(): { logger: pino.Logger; lines: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines: () => text };
}

const neverLost = (error: Error) => assert.fail(`the lock was lost: ${error.message}`);

async function temporaryDirectory(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), 'gantry-lock-'));
}

const lockModuleUrl = pathToFileURL(path.join(repositoryRoot, 'dist/src/runtime/data-directory-lock.js')).href;

/** Another process that takes the lock on `directory` and holds it until killed; resolves once it holds it. */
async function holderProcess(directory: string, lockTiming = ''): Promise<ChildProcess> {
  const script = `
    import { lockDataDirectory } from ${JSON.stringify(lockModuleUrl)};
    import { pino } from 'pino';
    await lockDataDirectory(${JSON.stringify(directory)}, { logger: pino({ level: 'silent' }), onLost: () => process.stdout.write('lost\\n') ${lockTiming} });
    process.stdout.write('locked\\n');
    setInterval(() => undefined, 1000);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: repositoryRoot, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('locked')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`the holder exited (${code}) before it held the lock`)));
  });
  return child;
}

async function killed(child: ChildProcess): Promise<void> {
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  await exited;
}

test('a second lock on a held directory is refused, naming the directory, the holder and what to do', async () => {
  const directory = await temporaryDirectory();
  const { logger } = capturingLogger();
  const held = await lockDataDirectory(directory, { logger, onLost: neverLost });
  try {
    await assert.rejects(lockDataDirectory(directory, { logger, onLost: neverLost }), (error: unknown) => {
      assert.ok(error instanceof DataDirectoryLockedError);
      assert.match(error.message, new RegExp(`data directory ${directory}`));
      assert.match(error.message, new RegExp(`process ${process.pid}\\b`));
      assert.match(error.message, /kill \d+/);
      assert.match(error.message, /GANTRY_DATA_DIR/);
      return true;
    });
  } finally {
    await held.release();
  }
  // Released: the next one gets it, and releasing leaves nothing behind.
  const again = await lockDataDirectory(directory, { logger, onLost: neverLost });
  await again.release();
  await again.release();
  assert.equal(existsSync(path.join(directory, 'gantry-start.lock')), false);
  assert.equal(existsSync(path.join(directory, 'gantry-start-owner.json')), false);
  await rm(directory, { recursive: true, force: true });
});

test('the lock of a holder killed with SIGKILL is taken over at once, with a warning naming it', async () => {
  const directory = await temporaryDirectory();
  const holder = await holderProcess(directory);
  await killed(holder);
  assert.ok(existsSync(path.join(directory, 'gantry-start.lock')), 'a SIGKILL leaves the lock behind');
  const { logger, lines } = capturingLogger();
  // A minute of staleness: only the recorded pid can tell that the holder is gone.
  const taken = await lockDataDirectory(directory, { logger, onLost: neverLost, staleMs: 60_000 });
  assert.match(lines(), new RegExp(`pid ${holder.pid}\\).*taking its lock over`));
  await taken.release();
  await rm(directory, { recursive: true, force: true });
});

test('a holder that still runs keeps the directory even when its lock looks stale (its event loop stalled)', async () => {
  const directory = await temporaryDirectory();
  const holder = await holderProcess(directory, ', staleMs: 2000, updateMs: 1000');
  try {
    holder.kill('SIGSTOP');
    // Past the holder's stale time: proper-lockfile alone would now take the lock from a live process.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const { logger } = capturingLogger();
    await assert.rejects(
      lockDataDirectory(directory, { logger, onLost: neverLost, staleMs: 2000, updateMs: 1000 }),
      (error: unknown) => error instanceof DataDirectoryLockedError && error.message.includes(`process ${holder.pid}`),
    );
  } finally {
    holder.kill('SIGCONT');
    await killed(holder);
    await rm(directory, { recursive: true, force: true });
  }
});

test('after a killed holder, of several processes taking the directory at once exactly one gets it', async () => {
  const directory = await temporaryDirectory();
  await killed(await holderProcess(directory));
  // Each taker says how it ended; a winner holds on a while, so that a late taker meets its lock.
  const script = `
    import { lockDataDirectory, DataDirectoryLockedError } from ${JSON.stringify(lockModuleUrl)};
    import { pino } from 'pino';
    try {
      await lockDataDirectory(${JSON.stringify(directory)}, { logger: pino({ level: 'silent' }), onLost: () => process.stdout.write('lost ') });
      process.stdout.write('locked');
      await new Promise((resolve) => setTimeout(resolve, 2000));
    } catch (error) {
      process.stdout.write(error instanceof DataDirectoryLockedError ? 'refused' : String(error));
    }
  `;
  const take = () =>
    new Promise<string>((resolve) => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: repositoryRoot, stdio: ['ignore', 'pipe', 'inherit'] });
      let printed = '';
      child.stdout!.on('data', (chunk: Buffer) => (printed += chunk.toString()));
      child.once('exit', () => resolve(printed.trim()));
    });
  const outcomes = (await Promise.all(Array.from({ length: 6 }, take))).sort();
  assert.deepEqual(outcomes, ['locked', 'refused', 'refused', 'refused', 'refused', 'refused']);
  await rm(directory, { recursive: true, force: true });
});

test('a lock removed while held is reported as lost, and releasing it afterwards is harmless', async () => {
  const directory = await temporaryDirectory();
  const { logger } = capturingLogger();
  let lost: Error | undefined;
  const held = await lockDataDirectory(directory, { logger, onLost: (error) => (lost = error), staleMs: 2000, updateMs: 1000 });
  await rm(path.join(directory, 'gantry-start.lock'), { recursive: true, force: true });
  for (let waited = 0; waited < 5000 && lost === undefined; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
  assert.ok(lost !== undefined, 'onLost was called');
  await held.release();
  // The directory is free again for a new holder.
  const next = await lockDataDirectory(directory, { logger, onLost: neverLost });
  await next.release();
  await rm(directory, { recursive: true, force: true });
});
