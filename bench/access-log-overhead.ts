/**
 * `node dist/bench/access-log-overhead.js [rounds=2] [seconds=5] [connections=8]`
 *
 * What the access log (GANTRY_ACCESS_LOG, src/api/plugins/access-log.ts) costs the API process per request. Rounds
 * alternate `gantry start` with the access log off and on (LOG_LEVEL=info either way, so on writes one line per
 * request to its stdout pipe), each serving the tiny MLP (JSON, [1,256]) to autocannon for `seconds`. Prints the
 * API process's CPU time per answered request (from /proc, Linux only) and the request rate of each, and the
 * ratios on/off. Relative numbers on a shared machine: compare within one run.
 */
import autocannon from 'autocannon';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { fixturePath, startGantry, testAdminKey, uploadModel } from '../support/gantry-process.js';
import { randomFloats } from '../support/prng.js';

const [roundsText = '2', secondsText = '5', connectionsText = '8'] = process.argv.slice(2);
const rounds = Number(roundsText);
const seconds = Number(secondsText);
const connections = Number(connectionsText);
const ticksPerSecond = 100;

/** User plus system CPU time of a process, in ms (/proc/<pid>/stat fields 14 and 15, in clock ticks). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond;
}

interface Measured {
  cpuMicrosecondsPerRequest: number;
  requestsPerSecond: number;
}

async function measure(accessLog: 'on' | 'off'): Promise<Measured> {
  const gantry = await startGantry({ prefix: `bench-access-${randomBytes(3).toString('hex')}`, env: { LOG_LEVEL: 'info', GANTRY_ACCESS_LOG: accessLog } });
  try {
    const upload = await uploadModel(gantry.baseUrl, 'mlp', fixturePath('tiny-mlp.onnx'), '?wait=true');
    if (upload.status !== 201) throw new Error(`upload: ${upload.status} ${JSON.stringify(upload.body)}`);
    const options = {
      url: `${gantry.baseUrl}/v2/models/mlp/infer`,
      method: 'POST',
      connections,
      headers: { authorization: `Bearer ${testAdminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 256], data: randomFloats(1, 256) }] }),
    };
    await autocannon({ ...options, duration: 1 });
    const pid = gantry.child.pid!;
    const before = cpuMs(pid);
    const result = await autocannon({ ...options, duration: seconds });
    const spent = cpuMs(pid) - before;
    const answered = result['2xx'];
    if (answered === 0 || result.non2xx > 0) throw new Error(`${answered} answered, ${result.non2xx} not 2xx`);
    return { cpuMicrosecondsPerRequest: (spent * 1000) / answered, requestsPerSecond: answered / seconds };
  } finally {
    await gantry.cleanup();
  }
}

const results: Record<'on' | 'off', Measured[]> = { on: [], off: [] };
for (let round = 0; round < rounds; round++) {
  for (const mode of ['off', 'on'] as const) {
    const measured = await measure(mode);
    results[mode].push(measured);
    console.log(
      `round ${round + 1} access log ${mode}: ${measured.cpuMicrosecondsPerRequest.toFixed(1)} µs API CPU per request, ${measured.requestsPerSecond.toFixed(0)} req/s`,
    );
  }
}
const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
const cpu = (mode: 'on' | 'off') => mean(results[mode].map((entry) => entry.cpuMicrosecondsPerRequest));
const rate = (mode: 'on' | 'off') => mean(results[mode].map((entry) => entry.requestsPerSecond));
console.log(
  `access log on/off: API CPU per request ${(cpu('on') / cpu('off')).toFixed(3)}x (${cpu('off').toFixed(1)} → ${cpu('on').toFixed(1)} µs), throughput ${(rate('on') / rate('off')).toFixed(3)}x`,
);
