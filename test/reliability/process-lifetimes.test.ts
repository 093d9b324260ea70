/**
 * Process lifetimes of `gantry start` with its private Redis (issue 11), on real processes: REDIS_URL unset,
 * GANTRY_EMBEDDED_REDIS=private (a Redis answers on 6379 here), a data directory of each test's own.
 * - SIGKILL of the start process: within 2 s none of its processes (worker, keeper, redis-server) runs, and a
 *   restart on the same directory takes over at once with the model uploaded before;
 * - a second start on a directory in use is refused with a message saying what to do, and one redis-server
 *   serves the directory throughout;
 * - a start that loses its lock stops, its redis-server with it.
 * Processes are found through /proc (Linux): descendants by parent pid, redis-servers by working directory
 * (Redis changes into its --dir; its command line does not keep the arguments).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync, existsSync } from 'node:fs';
import { mkdtemp, realpath, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { isProcessRunning } from '../../src/runtime/process-liveness.js';
import { fixturePath, startGantry, uploadModel, type GantryProcess } from '../helpers/gantry-process.js';
import { Cleanup, infer, mlpRequest, sleep, timedCall, waitUntil } from '../helpers/reliability-harness.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

const privateRedis = { REDIS_URL: '', GANTRY_EMBEDDED_REDIS: 'private', GANTRY_SHUTDOWN_TIMEOUT_MS: '3000' };

/** Every running process with its parent pid, from /proc. */
function processTable(): Array<{ pid: number; parent: number }> {
  const table: Array<{ pid: number; parent: number }> = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] !== 'Z') table.push({ pid: Number(entry), parent: Number(fields[1]) });
    } catch {
      // gone meanwhile
    }
  }
  return table;
}

/** All processes below `pid` (children, their children, …). */
function descendants(pid: number): number[] {
  const table = processTable();
  const found: number[] = [];
  const stack = [pid];
  while (stack.length > 0) {
    const parent = stack.pop()!;
    for (const entry of table) {
      if (entry.parent !== parent) continue;
      found.push(entry.pid);
      stack.push(entry.pid);
    }
  }
  return found;
}

/** Pids of the redis-servers (not zombies) whose working directory is `directory`. */
function redisServersOn(directory: string): number[] {
  return processTable()
    .map((entry) => entry.pid)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'redis-server' && readlinkSync(`/proc/${pid}/cwd`) === directory;
      } catch {
        return false;
      }
    });
}

async function dataDirectoryOfItsOwn(): Promise<{ dataDirectory: string; redisDirectory: string }> {
  const dataDirectory = await realpath(await mkdtemp(path.join(os.tmpdir(), 'gantry-lifetimes-')));
  cleanup.add(() => rm(dataDirectory, { recursive: true, force: true }));
  // Whatever a failed test leaves running on it goes at the end.
  cleanup.add(() => {
    for (const pid of redisServersOn(path.join(dataDirectory, 'redis'))) process.kill(pid, 'SIGKILL');
  });
  return { dataDirectory, redisDirectory: path.join(dataDirectory, 'redis') };
}

/** A start with a private Redis on `dataDirectory`; `prefix` to see the keys of an earlier one. */
async function startPrivate(dataDirectory: string, prefix?: string): Promise<GantryProcess> {
  const gantry = await startGantry({ dataDirectory, prefix, env: privateRedis });
  cleanup.add(() => gantry.stop('SIGKILL'));
  return gantry;
}

function exitOf(gantry: GantryProcess): Promise<number | null> {
  if (gantry.child.exitCode !== null || gantry.child.signalCode !== null) return Promise.resolve(gantry.child.exitCode);
  return new Promise((resolve) => gantry.child.once('exit', (code) => resolve(code)));
}

test(
  'SIGKILL of gantry start: within 2 s no worker, keeper or redis-server of it runs; a restart takes over with the model uploaded before',
  { timeout: 90_000 },
  async () => {
    const { dataDirectory, redisDirectory } = await dataDirectoryOfItsOwn();
    const first = await startPrivate(dataDirectory);
    const upload = await uploadModel(first.baseUrl, 'mlp', fixturePath('tiny-mlp.onnx'));
    assert.equal(upload.status, 201, JSON.stringify(upload.body));
    assert.equal((await infer(first.baseUrl, 'mlp', mlpRequest(1))).status, 200);

    const servers = redisServersOn(redisDirectory);
    assert.equal(servers.length, 1, 'one private redis-server serves the data directory');
    const family = descendants(first.child.pid!);
    assert.ok(family.includes(servers[0]!), 'the redis-server runs below the start process (under its keeper)');
    assert.ok(family.length >= 3, `the start process has a worker, a keeper and a redis-server below it: ${family.join(', ')}`);

    assert.ok(first.child.kill('SIGKILL'));
    const goneAfter = await waitUntil(
      () => family.every((pid) => !isProcessRunning(pid)),
      2000,
      `the processes of the killed start (${family.join(', ')}) to end`,
      20,
    );
    console.log(`# lifetimes: worker, keeper and redis-server gone ${goneAfter} ms after the SIGKILL of their start`);
    assert.deepEqual(redisServersOn(redisDirectory), []);

    // The killed start's lock is still on the directory; the next start sees its holder is gone and takes it.
    const second = await startPrivate(dataDirectory, first.prefix);
    assert.match(second.output(), new RegExp(`pid ${first.child.pid}\\).*taking its lock over`));
    const list = await timedCall(`${second.baseUrl}/v1/models`);
    const mlp = list.body.models.find((model: { name: string }) => model.name === 'mlp');
    assert.ok(mlp !== undefined, `the model acknowledged before the kill is listed: ${JSON.stringify(list.body)}`);
    await waitUntil(async () => (await infer(second.baseUrl, 'mlp', mlpRequest(2))).status === 200, 20_000, 'the model to answer after the restart');
    assert.equal(redisServersOn(redisDirectory).length, 1);

    // A clean stop ends everything and leaves the directory free: no lock, no owner record.
    const secondFamily = descendants(second.child.pid!);
    assert.equal(await second.stop(), 0, second.output());
    assert.ok(
      secondFamily.every((pid) => !isProcessRunning(pid)),
      'nothing of the stopped start runs',
    );
    assert.equal(existsSync(path.join(dataDirectory, 'gantry-start.lock')), false, 'the lock was released');
    assert.equal(existsSync(path.join(dataDirectory, 'gantry-start-owner.json')), false, 'the owner record was removed');
  },
);

test('a second gantry start on a data directory in use is refused, and one redis-server serves it throughout', { timeout: 60_000 }, async () => {
  const { dataDirectory, redisDirectory } = await dataDirectoryOfItsOwn();
  const first = await startPrivate(dataDirectory);
  const [server] = redisServersOn(redisDirectory);
  assert.ok(server !== undefined);

  const seen = new Set<string>();
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      seen.add(redisServersOn(redisDirectory).join(','));
      await sleep(10);
    }
  })();
  const second = await startGantry({ dataDirectory, env: { ...privateRedis, LOG_LEVEL: 'info' }, waitForReady: false });
  cleanup.add(() => second.stop('SIGKILL'));
  const code = await exitOf(second);
  sampling = false;
  await sampler;

  assert.notEqual(code, 0, 'the second start exits with an error');
  const output = second.output();
  assert.match(output, new RegExp(`data directory ${dataDirectory} `));
  assert.match(output, new RegExp(`process ${first.child.pid}\\b`));
  assert.match(output, /kill \d+/);
  assert.match(output, /GANTRY_DATA_DIR/);
  assert.doesNotMatch(output, /started a private redis-server/);
  assert.deepEqual([...seen], [String(server)], "the first start's redis-server, and only it, served the directory the whole time");
  assert.equal((await fetch(`${first.baseUrl}/v2/health/ready`)).status, 200, 'the first start still serves');
});

test('a gantry start that loses its data-directory lock stops, its redis-server with it', { timeout: 60_000 }, async () => {
  const { dataDirectory, redisDirectory } = await dataDirectoryOfItsOwn();
  const gantry = await startPrivate(dataDirectory);
  const family = descendants(gantry.child.pid!);
  await rm(path.join(dataDirectory, 'gantry-start.lock'), { recursive: true });
  // The lock is refreshed every 5 s: the loss is seen at the next refresh, then the start shuts down.
  const code = await exitOf(gantry);
  assert.equal(code, 1, gantry.output());
  assert.match(gantry.output(), /lost the lock on the data directory/);
  await waitUntil(() => family.every((pid) => !isProcessRunning(pid)), 5000, 'the processes of the stopped start to end');
  assert.deepEqual(redisServersOn(redisDirectory), []);
});
