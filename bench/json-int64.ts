/**
 * `node dist/bench/json-int64.js [runs=15] [warmup=5]`: what exact 64-bit integers in JSON cost, in one process
 * (no HTTP), on the functions the API runs for every JSON body (splitBinaryBody, then decodeJsonData per input).
 *
 * (a) The common FP32 path: a ~1 MB FP32 body through splitBinaryBody + decodeJsonData (the candidate: the 64-bit
 *     check on, as production runs it) against JSON.parse + decodeJsonData (the same path with the check switched
 *     off) and against a plain JSON.parse + Float32Array.from (what a hand-written server would do). Target: the
 *     candidate / check-off ratio is 1.00 within noise.
 *     The check alone is also timed over many calls (its share of the path, free of the parse's noise).
 * (b) An INT64 body of values beyond 2^53 as exact JSON numbers (read again by the scanner) against the same values
 *     as decimal strings (no second read).
 * (c) An INT64 output answered as exact JSON numbers (encodeInferResponseParts' `serialized`) against
 *     JSON.stringify of the object form (decimal strings beyond 2^53).
 * Rounds alternate baseline and candidate so both see the same machine; prints medians in ms and the ratios.
 */
import { encodeInferResponseParts, splitBinaryBody } from '../src/protocol/binary-extension.js';
import { restoreExactIntegers } from '../src/protocol/exact-json-integers.js';
import { decodeJsonData } from '../src/protocol/json-tensor-codec.js';
import type { Tensor } from '../src/protocol/tensor.js';

const runs = Number(process.argv[2] ?? 15);
const warmup = Number(process.argv[3] ?? 5);

interface RequestBody {
  inputs: Array<{ name: string; datatype: 'FP32' | 'INT64'; shape: number[]; data: unknown }>;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Deterministic pseudo-random values in [0, 1) (a linear congruential generator: no test/ import). */
function* pseudoRandom(seed: number): Generator<number> {
  let state = seed >>> 0;
  for (;;) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    yield state / 4294967296;
  }
}

function timeOnce(run: () => unknown): number {
  const started = process.hrtime.bigint();
  run();
  return Number(process.hrtime.bigint() - started) / 1e6;
}

/** Runs every variant `warmup` times, then `runs` rounds in which each runs once in turn; the median ms of each. */
function measure(variants: Record<string, () => unknown>): Record<string, number> {
  const names = Object.keys(variants);
  for (let round = 0; round < warmup; round++) for (const name of names) variants[name]!();
  const times: Record<string, number[]> = Object.fromEntries(names.map((name) => [name, []]));
  for (let round = 0; round < runs; round++) {
    // Alternate the order too, so neither always runs right after a collection the other caused.
    const order = round % 2 === 0 ? names : [...names].reverse();
    for (const name of order) times[name]!.push(timeOnce(variants[name]!));
  }
  return Object.fromEntries(names.map((name) => [name, median(times[name]!)]));
}

function decodeAll(header: unknown): number {
  let bytes = 0;
  for (const input of (header as RequestBody).inputs) bytes += decodeJsonData(input.name, input.datatype, input.shape, input.data).byteLength;
  return bytes;
}

function printRows(title: string, results: Record<string, number>, baseline: string, candidate: string, extra: string[] = []): void {
  console.log(`\n${title}`);
  for (const [name, ms] of Object.entries(results)) console.log(`  ${name.padEnd(48)} ${ms.toFixed(2).padStart(8)} ms`);
  console.log(`  ratio ${candidate} / ${baseline}: ${(results[candidate]! / results[baseline]!).toFixed(3)}`);
  for (const line of extra) console.log(`  ${line}`);
}

// (a) ~1 MB of FP32 JSON: 100,000 values of 6 decimals, the shape of a real image tensor's JSON.
const fp32Count = 100_000;
const fp32Random = pseudoRandom(12345);
const fp32Values = Array.from({ length: fp32Count }, () => Math.round((fp32Random.next().value! - 0.5) * 2e6) / 1e6);
const fp32Body = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, fp32Count], data: fp32Values }] }));
const fp32Results = measure({
  'plain JSON.parse + Float32Array.from': () => Float32Array.from((JSON.parse(fp32Body.toString('utf8')) as RequestBody).inputs[0]!.data as number[]),
  'JSON.parse + decodeJsonData (64-bit check off)': () => decodeAll(JSON.parse(fp32Body.toString('utf8'))),
  'splitBinaryBody + decodeJsonData (check on)': () => decodeAll(splitBinaryBody(fp32Body, undefined).header),
});
printRows(
  `(a) FP32 JSON body, ${fp32Count} values, ${(fp32Body.byteLength / 1e6).toFixed(2)} MB (median of ${runs})`,
  fp32Results,
  'JSON.parse + decodeJsonData (64-bit check off)',
  'splitBinaryBody + decodeJsonData (check on)',
  [
    `ratio check on / plain JSON.parse + Float32Array.from: ${(fp32Results['splitBinaryBody + decodeJsonData (check on)']! / fp32Results['plain JSON.parse + Float32Array.from']!).toFixed(3)}`,
  ],
);

// The check alone, timed over many calls: what (a)'s candidate adds, without the noise of a whole parse.
const fp32Text = fp32Body.toString('utf8');
const fp32Header = JSON.parse(fp32Text) as unknown;
const checkCalls = 100_000;
const checkStarted = process.hrtime.bigint();
for (let call = 0; call < checkCalls; call++) restoreExactIntegers(fp32Header, fp32Text);
const checkMs = Number(process.hrtime.bigint() - checkStarted) / 1e6 / checkCalls;
console.log(
  `  the 64-bit check alone (restoreExactIntegers on this body, mean of ${checkCalls}): ${(checkMs * 1000).toFixed(3)} µs = ${((checkMs / fp32Results['JSON.parse + decodeJsonData (64-bit check off)']!) * 100).toFixed(4)}% of the check-off path`,
);

// (b) INT64 beyond 2^53: as exact JSON numbers (the scanner reads the data again) and as decimal strings.
const int64Count = 50_000;
const int64Random = pseudoRandom(678);
const int64Values = Array.from(
  { length: int64Count },
  () => (BigInt(Math.floor(int64Random.next().value! * 2 ** 31)) << 32n) | BigInt(Math.floor(int64Random.next().value! * 2 ** 32)),
);
const int64Envelope = (dataText: string) => Buffer.from(`{"inputs":[{"name":"ids","datatype":"INT64","shape":[1,${int64Count}],"data":[${dataText}]}]}`);
const asNumbers = int64Envelope(int64Values.join(','));
const asStrings = int64Envelope(int64Values.map((value) => `"${value}"`).join(','));
// Both must decode to the same exact bytes, or the comparison means nothing.
const fromNumbers = Buffer.from(decodeJsonData('ids', 'INT64', [1, int64Count], (splitBinaryBody(asNumbers, undefined).header as RequestBody).inputs[0]!.data));
const fromStrings = Buffer.from(decodeJsonData('ids', 'INT64', [1, int64Count], (splitBinaryBody(asStrings, undefined).header as RequestBody).inputs[0]!.data));
if (!fromNumbers.equals(fromStrings) || !fromNumbers.equals(Buffer.from(BigInt64Array.from(int64Values).buffer)))
  throw new Error('INT64 numbers and strings decode differently');
const int64Results = measure({
  'INT64 as decimal strings': () => decodeAll(splitBinaryBody(asStrings, undefined).header),
  'INT64 as exact JSON numbers': () => decodeAll(splitBinaryBody(asNumbers, undefined).header),
});
printRows(
  `(b) INT64 JSON body, ${int64Count} values beyond 2^53, ${(asNumbers.byteLength / 1e6).toFixed(2)} MB as numbers (median of ${runs})`,
  int64Results,
  'INT64 as decimal strings',
  'INT64 as exact JSON numbers',
);

// (c) An INT64 output answered in JSON: exact numbers (the serialized text) against the object form stringified.
const output: Tensor = { name: 'ids', datatype: 'INT64', shape: [1, int64Count], data: new Uint8Array(BigInt64Array.from(int64Values).buffer) };
const outputResults = measure({
  'object form (decimal strings), JSON.stringify': () =>
    JSON.stringify(encodeInferResponseParts({ model_name: 'm' }, [{ tensor: output, binary: false }]).json),
  'exact numbers (serialized)': () => encodeInferResponseParts({ model_name: 'm' }, [{ tensor: output, binary: false }]).serialized,
});
printRows(
  `(c) INT64 output of ${int64Count} values answered as JSON (median of ${runs})`,
  outputResults,
  'object form (decimal strings), JSON.stringify',
  'exact numbers (serialized)',
  ['both include encodeInferResponseParts, which builds the object form either way'],
);
