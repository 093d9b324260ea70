/**
 * `node dist/bench/worker-scaling.js [seconds=8] [connections=8] [maxWorkers=3]`
 *
 * Issue 15: the throughput of a compute-bound model as workers are added, on the many-machine layout (one API,
 * workers each with a data directory of their own, a private redis-server, moto's S3 server as the model store).
 * The model is the heavy MLP (support/heavy-mlp.ts, ~50× the tiny MLP's work per row), each worker runs it with one
 * onnxruntime thread and batching off, so a worker is one core's worth of compute. For 1 … maxWorkers workers:
 * `connections` closed-loop REST JSON clients for `seconds` after a 2 s warm-up; prints req/s, p50, p99 and the
 * ratio to one worker. Reported, not asserted: on a machine with fewer free cores than workers the ratio flattens
 * (this machine has 2 cores, shared with the API, Redis, S3 and the clients).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { heavyMlp } from '../support/heavy-mlp.js';
import { adminAuthorization, startGantry, type GantryProcess } from '../support/gantry-process.js';
import { startPrivateRedis } from '../support/private-redis.js';
import { mulberry32 } from '../support/prng.js';
import { gantryS3Environment, startS3Server } from '../support/s3-server.js';

const [secondsText = '8', connectionsText = '8', maxWorkersText = '3'] = process.argv.slice(2);
const seconds = Number(secondsText);
const connections = Number(connectionsText);
const maxWorkers = Number(maxWorkersText);
const prefix = `bench-scaling-${process.pid}`;
const bucket = 'gantry-bench';

const random = mulberry32(3);
const body = JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 256], data: Array.from({ length: 256 }, () => random() - 0.5) }] });

const directories: string[] = [];
const processes: GantryProcess[] = [];
const redis = await startPrivateRedis();
const s3 = await startS3Server();
try {
  await s3.createBucket(bucket);
  const env = { ...gantryS3Environment(s3, bucket), GANTRY_MAX_REQUESTS_PER_JOB: '1' };
  const machine = async (command: 'api' | 'worker') => {
    const dataDirectory = await mkdtemp(path.join(os.tmpdir(), `gantry-bench-${command}-`));
    directories.push(dataDirectory);
    const started = await startGantry({ command, prefix, dataDirectory, redisUrl: redis.url, env });
    processes.push(started);
    return started;
  };
  const api = await machine('api');
  await machine('worker');
  const upload = await fetch(`${api.baseUrl}/v1/models/heavy/versions`, {
    method: 'POST',
    headers: { authorization: adminAuthorization, 'content-type': 'application/octet-stream' },
    body: Buffer.from(heavyMlp()),
  });
  if (upload.status !== 201) throw new Error(`upload answered ${upload.status}: ${await upload.text()}`);
  const configured = await fetch(`${api.baseUrl}/v1/models/heavy/config`, {
    method: 'PUT',
    headers: { authorization: adminAuthorization, 'content-type': 'application/json' },
    body: JSON.stringify({ maxBatchSize: 0, intraOpThreads: 1, interOpThreads: 1 }),
  });
  if (!configured.ok) throw new Error(`config answered ${configured.status}: ${await configured.text()}`);

  const drive = async (windowMs: number): Promise<number[]> => {
    const latencies: number[] = [];
    const until = Date.now() + windowMs;
    await Promise.all(
      Array.from({ length: connections }, async () => {
        while (Date.now() < until) {
          const started = performance.now();
          const reply = await fetch(`${api.baseUrl}/v2/models/heavy/infer`, {
            method: 'POST',
            headers: { authorization: adminAuthorization, 'content-type': 'application/json' },
            body,
          });
          await reply.arrayBuffer();
          if (reply.status !== 200) throw new Error(`inference answered ${reply.status}`);
          latencies.push(performance.now() - started);
        }
      }),
    );
    return latencies.sort((a, b) => a - b);
  };

  const rows: Array<{ workers: number; requestsPerSecond: number; p50: number; p99: number }> = [];
  for (let workers = 1; workers <= maxWorkers; workers++) {
    while (processes.length - 1 < workers) await machine('worker');
    await drive(2000);
    const latencies = await drive(seconds * 1000);
    rows.push({
      workers,
      requestsPerSecond: latencies.length / seconds,
      p50: latencies[Math.floor(latencies.length * 0.5)]!,
      p99: latencies[Math.floor(latencies.length * 0.99)]!,
    });
  }
  const single = rows[0]!.requestsPerSecond;
  console.log(`heavy MLP, ${connections} connections, ${seconds} s per point, ${os.cpus().length} cores, load ${os.loadavg()[0]!.toFixed(1)}`);
  console.log('| workers | req/s | p50 ms | p99 ms | ratio to 1 worker |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const row of rows) {
    console.log(
      `| ${row.workers} | ${row.requestsPerSecond.toFixed(1)} | ${row.p50.toFixed(1)} | ${row.p99.toFixed(1)} | ${(row.requestsPerSecond / single).toFixed(2)} |`,
    );
  }
} finally {
  for (const started of processes.reverse()) await started.stop('SIGKILL');
  await s3.stop();
  await redis.cleanup();
  for (const directory of directories) await rm(directory, { recursive: true, force: true });
}
