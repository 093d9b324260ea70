/**
 * Soak run (not part of `npm test`): `node dist/bench/soak.js --minutes N [--redis-url URL]`.
 * Starts a private redis-server (or uses --redis-url), `gantry start`, uploads tiny-mlp and slow, then runs a
 * mixed load for N minutes: valid JSON and binary inferences, slow ones, malformed requests, and now and then an
 * upload and delete of a throwaway model. Reports counts per kind and status, transport errors, and the RSS of
 * every process (API, worker) at start and end.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fixturePath, freePort, startGantry, withAdminKey } from '../support/gantry-process.js';

const argument = (name: string) => {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? process.argv[index + 1] : undefined;
};
const minutes = Number(argument('minutes') ?? '2');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function floats(count: number): number[] {
  return Array.from(Float32Array.from({ length: count }, (_, i) => Math.sin(i)));
}
async function rss(pid: number | undefined): Promise<number> {
  if (pid === undefined) return NaN;
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;
}
const children = (pid: number) =>
  spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
    .stdout.split('\n')
    .map(Number)
    .filter((n) => n > 0);

async function main(): Promise<void> {
  let redisUrl = argument('redis-url');
  let redisDir: string | undefined;
  let redisProcess: ReturnType<typeof spawn> | undefined;
  if (redisUrl === undefined) {
    const port = await freePort();
    redisDir = await mkdtemp(path.join(os.tmpdir(), 'gantry-soak-redis-'));
    redisProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--appendonly', 'yes', '--save', '', '--dir', redisDir], {
      stdio: 'ignore',
    });
    redisUrl = `redis://127.0.0.1:${port}`;
    for (let i = 0; i < 100 && spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).stdout.trim() !== 'PONG'; i++) await sleep(100);
  }
  const gantry = await startGantry({
    redisUrl,
    env: { GANTRY_MAX_REQUEST_BYTES: String(4 * 1024 * 1024), GANTRY_SHUTDOWN_TIMEOUT_MS: '5000', GANTRY_INFER_TIMEOUT_MS: '10000' },
  });
  const counts = new Map<string, number>();
  const errors = new Map<string, number>();
  const bump = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);
  try {
    for (const [name, file] of [
      ['mlp', 'tiny-mlp.onnx'],
      ['slow', 'slow.onnx'],
    ] as const) {
      const response = await fetch(`${gantry.baseUrl}/v1/models/${name}/versions`, {
        method: 'POST',
        headers: withAdminKey({ 'content-type': 'application/octet-stream' }),
        body: await readFile(fixturePath(file)),
      });
      if (response.status !== 201) throw new Error(`upload ${name}: ${response.status} ${await response.text()}`);
    }
    const apiPid = gantry.child.pid!;
    const processes = () => ({ api: apiPid, worker: children(apiPid)[0] });
    const startPids = processes();
    const rssStart = { api: await rss(startPids.api), worker: await rss(startPids.worker) };

    const mlpJson = JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 256], data: floats(256) }] });
    const header = Buffer.from(
      JSON.stringify({
        inputs: [{ name: 'input', datatype: 'FP32', shape: [4, 256], parameters: { binary_data_size: 4096 } }],
        parameters: { binary_data_output: true },
      }),
    );
    const mlpBinary = Buffer.concat([header, Buffer.from(Float32Array.from(floats(1024)).buffer)]);
    const slowJson = JSON.stringify({
      inputs: [
        { name: 'iterations', datatype: 'INT64', shape: [], data: [5000] },
        { name: 'x', datatype: 'FP32', shape: [1, 256], data: floats(256) },
      ],
    });
    const bad = [
      '{',
      '{"inputs":[]}',
      JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [2 ** 31, 2 ** 31], data: [] }] }),
      JSON.stringify({ inputs: [{ name: 'nope', datatype: 'FP32', shape: [1], data: [1] }] }),
    ];
    const identity = await readFile(fixturePath('identity-float.onnx'));

    const call = async (kind: string, url: string, init: RequestInit) => {
      try {
        const response = await fetch(url, { ...init, headers: withAdminKey(init.headers as Record<string, string>), signal: AbortSignal.timeout(30_000) });
        await response.arrayBuffer();
        bump(counts, `${kind} ${response.status}`);
      } catch (error) {
        bump(errors, `${kind}: ${(error as Error).name} ${(error as Error).message}`.slice(0, 160));
      }
    };
    const deadline = Date.now() + minutes * 60_000;
    const client = async (id: number) => {
      let n = 0;
      while (Date.now() < deadline) {
        n++;
        const pick = (n * 7 + id) % 20;
        if (pick < 10)
          await call('json', `${gantry.baseUrl}/v2/models/mlp/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: mlpJson });
        else if (pick < 14)
          await call('binary', `${gantry.baseUrl}/v2/models/mlp/infer`, {
            method: 'POST',
            headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.byteLength) },
            body: mlpBinary,
          });
        else if (pick < 16)
          await call('slow', `${gantry.baseUrl}/v2/models/slow/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: slowJson });
        else
          await call('bad', `${gantry.baseUrl}/v2/models/mlp/infer`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: bad[n % bad.length]!,
          });
      }
    };
    const churn = async () => {
      while (Date.now() < deadline) {
        await call('upload', `${gantry.baseUrl}/v1/models/churn/versions`, {
          method: 'POST',
          headers: { 'content-type': 'application/octet-stream' },
          body: identity,
        });
        await sleep(2000);
        await call('delete', `${gantry.baseUrl}/v1/models/churn`, { method: 'DELETE' });
        await sleep(3000);
      }
    };
    const started = Date.now();
    await Promise.all([...Array.from({ length: 8 }, (_, id) => client(id)), churn()]);
    const seconds = (Date.now() - started) / 1000;
    const endPids = processes();
    const rssEnd = { api: await rss(endPids.api), worker: await rss(endPids.worker) };
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    const lines = [
      `soak: ${minutes} min, 8 clients + upload/delete churn, ${total} responses in ${seconds.toFixed(0)} s (${(total / seconds).toFixed(0)}/s)`,
      'responses by kind and status:',
      ...[...counts.entries()].sort().map(([key, value]) => `  ${key}: ${value}`),
      `transport errors: ${errors.size === 0 ? 'none' : ''}`,
      ...[...errors.entries()].map(([key, value]) => `  ${key}: ${value}`),
      `processes: api pid ${startPids.api}→${endPids.api}, worker pid ${startPids.worker}→${endPids.worker}${startPids.worker === endPids.worker ? ' (never restarted)' : ' (RESTARTED)'}`,
      `RSS MB: api ${rssStart.api.toFixed(1)} → ${rssEnd.api.toFixed(1)}, worker ${rssStart.worker.toFixed(1)} → ${rssEnd.worker.toFixed(1)}`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await gantry.cleanup();
    redisProcess?.kill('SIGKILL');
    if (redisDir !== undefined) await rm(redisDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`soak failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
