/**
 * `node dist/bench/shadow-overhead.js [rounds=10] [requests=200] [gapMs=0]`
 *
 * What a 100% shadow on a slower version costs the primary (issue 14: its p50 within 10% of no shadow). One
 * `gantry start` (API and one forked worker, own prefix on the shared Redis or REDIS_URL), driven from this
 * process over HTTP, one request at a time. Model `shadowed` has version 1, the tiny MLP
 * (`test/fixtures/models/tiny-mlp.onnx`), version 2, a heavier MLP with the same signature (input [batch, 256] →
 * output [batch, 16], built here: 256 → 1024 → 1024 → 1024 → 16, about 50 times the tiny MLP's multiply-adds),
 * and version 3, the tiny MLP again. Rounds rotate between no traffic policy, `{"shadow": {"version": "2",
 * "percent": 100}}` and the same on version 3 (what a copy costs the gateway, apart from the compute the slower
 * shadow takes from the primary on the same CPUs); each round sends `requests` sequential REST JSON requests
 * pinned to version 1 (`/v2/models/shadowed/versions/1/infer`) and records each one's latency. Prints the p50
 * and p99 of each side over all rounds, the p50 ratios, and how the shadows ended. With `gapMs` (a pause after
 * each answer) the shadows mostly end before the next primary: what is left is what a copy adds to the primary
 * request itself; with 0 (a closed loop) every shadow competes with the next primary for the same CPUs.
 */
import { randomBytes } from 'node:crypto';
import { GantryClient, type TrafficPolicy } from '../src/client/index.js';
import { heavyMlp } from '../support/heavy-mlp.js';
import { fixturePath, startGantry, testAdminKey } from '../support/gantry-process.js';

const [roundsText = '10', requestsText = '200', gapText = '0'] = process.argv.slice(2);
const rounds = Number(roundsText);
const requests = Number(requestsText);
/** A pause after each answer before the next request: 0 is a closed loop, where every shadow overlaps the next primary. */
const gapMs = Number(gapText);
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const model = 'shadowed';

function percentile(values: number[], fraction: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))]!;
}

const gantry = await startGantry({ redisUrl, prefix: `bench-shadow-${randomBytes(3).toString('hex')}` });
// The typed client (src/client/) makes the uploads, the policies and the requests.
const client = new GantryClient({ url: gantry.baseUrl, key: testAdminKey, retries: 0 });

async function upload(source: string | Uint8Array): Promise<void> {
  const pushed = await client.models.push(source, { name: model, duplicate: true });
  if (pushed.status !== 201) throw new Error(`upload answered ${pushed.status} (${pushed.state})`);
}

/**
 * Sets (or, undefined, removes) the policy through the API, then waits out the API's catalog cache (2 s), so the
 * rounds after follow it even if its registry event were missed.
 */
async function usePolicy(policy: Omit<TrafficPolicy, 'updatedAt'> | undefined): Promise<void> {
  if (policy === undefined) await client.models.removeTraffic(model).catch(() => undefined);
  else await client.models.setTraffic(model, policy);
  await new Promise((resolve) => setTimeout(resolve, 2500));
}

const inputs = {
  input: { data: Float32Array.from({ length: 256 }, (_, index) => Math.round(Math.sin(index) * 1e4) / 1e4), shape: [1, 256] },
};

/** Milliseconds of each of `requests` sequential requests pinned to version 1. */
async function round(): Promise<number[]> {
  const latencies: number[] = [];
  for (let index = 0; index < requests; index++) {
    const started = process.hrtime.bigint();
    // Small enough for JSON: the client sends it as the REST JSON body (binary 'auto' stays JSON under 16 KiB).
    await client.infer(model, inputs, { version: 1 });
    latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
    if (gapMs > 0) await new Promise((resolve) => setTimeout(resolve, gapMs));
  }
  return latencies;
}

try {
  await upload(fixturePath('tiny-mlp.onnx'));
  await upload(heavyMlp());
  await upload(fixturePath('tiny-mlp.onnx'));
  const sides: Array<{ label: string; policy: Omit<TrafficPolicy, 'updatedAt'> | undefined; latencies: number[] }> = [
    { label: 'no shadow', policy: undefined, latencies: [] as number[] },
    { label: '100% shadow on v2', policy: { shadow: { version: '2', percent: 100 } }, latencies: [] as number[] },
    { label: '100% shadow on v3', policy: { shadow: { version: '3', percent: 100 } }, latencies: [] as number[] },
  ];
  for (const side of sides) {
    await usePolicy(side.policy);
    await round(); // warm-up
  }
  for (let index = 0; index < rounds; index++) {
    // Rotate which goes first, so a drift within a round favours neither.
    for (let offset = 0; offset < sides.length; offset++) {
      const side = sides[(index + offset) % sides.length]!;
      await usePolicy(side.policy);
      side.latencies.push(...(await round()));
    }
  }
  const metrics = await (await fetch(`${gantry.baseUrl}/metrics`, { headers: { authorization: `Bearer ${testAdminKey}` } })).text();
  const outcomes = metrics
    .split('\n')
    .filter((line) => line.startsWith('gantry_shadow_requests_total{') || line.startsWith('gantry_shadow_request_duration_seconds_sum{'))
    .join('\n');
  const [none, heavy, light] = sides.map((side) => percentile(side.latencies, 0.5));
  let report = `primary tiny MLP (v1), REST JSON, one connection, ${rounds} rounds x ${requests} sequential requests per side, ${gapMs} ms between an answer and the next request\n`;
  for (const side of sides) {
    report += `${side.label.padEnd(20)} p50 ${percentile(side.latencies, 0.5).toFixed(3)} ms  p99 ${percentile(side.latencies, 0.99).toFixed(3)} ms\n`;
  }
  report += `p50 ratio shadow on the slower v2 / no shadow: ${(heavy! / none!).toFixed(3)} (target <= 1.10)\n`;
  report += `p50 ratio shadow on the identical v3 / no shadow: ${(light! / none!).toFixed(3)} (the gateway's own cost of a copy)\n${outcomes}\n`;
  process.stdout.write(report);
} finally {
  await gantry.cleanup();
}
