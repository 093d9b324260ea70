/**
 * `node dist/bench/queue-commands.js [connections=64] [seconds=5]`
 *
 * What the queue costs Redis per request: one `gantry start` (GANTRY_* variables pass through, so settings can be
 * compared), the tiny MLP in JSON driven by autocannon, and Redis's MONITOR stream over the measured window, counting
 * the commands that touch this run's keys, by command and, for BullMQ's Lua scripts (EVALSHA), by script name (the
 * sha1 of each script BullMQ ships). Prints commands per answered request and per job (a job = one addStandardJob or
 * addPrioritizedJob). MONITOR slows Redis down, so the req/s printed here is not a throughput figure: only the counts
 * are. The point of it: how many moveToActive calls a job takes (those beyond one find nothing), what each job's
 * add costs in commands, what the replies and statistics add.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import { startGantry, uploadModel, withAdminKey } from '../support/gantry-process.js';
import { benchInput, benchModels, benchRequest, type BenchModel } from './models.js';

const [connectionsText = '64', secondsText = '5'] = process.argv.slice(2);
const connections = Number(connectionsText);
const seconds = Number(secondsText);
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const tinyModel = benchModels[0] as BenchModel;

/** sha1 → script name for every Lua script of the installed BullMQ (what its EVALSHA calls name). */
function bullmqScriptNames(): Map<string, string> {
  const require = createRequire(import.meta.url);
  const scriptsDirectory = path.join(path.dirname(require.resolve('bullmq')), 'scripts');
  const scripts = require(path.join(scriptsDirectory, 'index.js')) as Record<string, { name: string; content: string }>;
  const names = new Map<string, string>();
  for (const script of Object.values(scripts)) names.set(createHash('sha1').update(script.content).digest('hex'), script.name);
  return names;
}

const passThrough = Object.fromEntries(Object.entries(process.env).filter(([name]) => name.startsWith('GANTRY_'))) as Record<string, string>;
const gantry = await startGantry({ env: passThrough });
const monitor = new Redis(redisUrl);
try {
  const upload = await uploadModel(gantry.baseUrl, tinyModel.name, tinyModel.path);
  if (upload.status !== 201) throw new Error(`upload answered ${upload.status}`);
  const request = benchRequest(tinyModel, benchInput(tinyModel.shape), 'json');
  const options = {
    url: `${gantry.baseUrl}/v2/models/${tinyModel.name}/infer`,
    method: 'POST' as const,
    headers: withAdminKey(request.headers),
    body: request.body,
    connections,
  };
  await autocannon({ ...options, duration: 2 });

  const scriptNames = bullmqScriptNames();
  const counts = new Map<string, number>();
  const stream = await monitor.monitor();
  stream.on('monitor', (_time: string, args: string[]) => {
    if (!args.some((argument) => argument.includes(gantry.prefix))) return;
    const command = args[0]!.toLowerCase();
    const name = command === 'evalsha' ? `evalsha ${scriptNames.get(args[1]!) ?? args[1]!.slice(0, 8)}` : command;
    counts.set(name, (counts.get(name) ?? 0) + 1);
  });
  const result = await autocannon({ ...options, duration: seconds });
  await new Promise((resolve) => setTimeout(resolve, 200));
  stream.disconnect();

  const answered = Math.max(1, result['2xx']);
  const jobs = Math.max(1, (counts.get('evalsha addStandardJob') ?? 0) + (counts.get('evalsha addPrioritizedJob') ?? 0));
  console.log(`${connections} connections, ${seconds} s under MONITOR: ${answered} answered, ${jobs} jobs (${(answered / jobs).toFixed(1)} requests per job)`);
  console.log('| command | calls | per request | per job |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const [name, calls] of [...counts].sort((a, b) => b[1] - a[1])) {
    console.log(`| ${name} | ${calls} | ${(calls / answered).toFixed(3)} | ${(calls / jobs).toFixed(2)} |`);
  }
} finally {
  monitor.disconnect();
  await gantry.cleanup();
}
