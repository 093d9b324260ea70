/** The Markdown report: verdict, environment, workers, summary, loads, correctness, latency, throughput, notes. */
import type { CheckRun } from './check-run.js';
import { formatFixed, formatScientific } from './format.js';
import { checkModels, toleranceExplanation } from './model-catalogue.js';

function workerLines(run: CheckRun): string[] {
  return run.report.workers.flatMap((worker) => [
    `- **${worker.label}** (GANTRY_DEVICE=${worker.expected}): worker /metrics \`${worker.infoLines.join(' ; ') || 'no gantry_worker_info'}\` — ${worker.ok ? 'ok' : '**FAIL**'}`,
    `  - log: \`${worker.startedLine?.trim() ?? 'no "worker started" line'}\``,
  ]);
}

/** Per model with latency results: p50 and compute per request on each gantry, and req/s where measured. */
function summaryRows(run: CheckRun): string[] {
  const { dutLabel, refLabel } = run.options;
  const { latencies, throughputs } = run.report;
  return checkModels
    .filter((m) => latencies.some((l) => l.model === m))
    .map((m) => {
      const r = latencies.find((l) => l.model === m && l.device === refLabel);
      const d = latencies.find((l) => l.model === m && l.device === dutLabel);
      const rps = (device: string) => throughputs.find((t) => t.model === m && t.device === device)?.requestsPerSecond;
      const ratio = r?.computeMs !== undefined && d?.computeMs !== undefined && d.computeMs > 0 ? r.computeMs / d.computeMs : undefined;
      return `| ${m.label} | ${formatFixed(r?.p50Ms)} | ${formatFixed(d?.p50Ms)} | ${formatFixed(r?.computeMs, 3)} | ${formatFixed(d?.computeMs, 3)} | ${formatFixed(ratio)}× | ${formatFixed(rps(refLabel), 1)} | ${formatFixed(rps(dutLabel), 1)} |`;
    });
}

function loadRows(run: CheckRun): string[] {
  return checkModels.map((m) => {
    const load = run.report.loadSeconds.get(m.name);
    const first = run.report.firstInferMs.get(m.name);
    return `| ${m.label} | ${formatFixed(load?.dut)} | ${formatFixed(load?.ref)} | ${formatFixed(first?.dut, 1)} | ${formatFixed(first?.ref, 1)} |`;
  });
}

function comparisonRows(run: CheckRun): string[] {
  return run.report.comparisons.map(
    (c) =>
      `| ${c.model} | ${c.what} | ${c.elements} | ${formatScientific(c.maxAbs)} | ${formatScientific(c.maxRel)} | ${c.outside} | ${c.pass ? 'ok' : `**FAIL**${c.problem ? ` ${c.problem}` : ''}`} |`,
  );
}

function latencyRows(run: CheckRun): string[] {
  return run.report.latencies.map(
    (l) =>
      `| ${l.model.label} | ${l.device} | ${formatFixed(l.p50Ms)} | ${formatFixed(l.p99Ms)} | ${formatFixed(l.meanMs)} | ${formatFixed(l.computeMs, 3)} | ${formatFixed(l.histogramMs, 3)} | ${l.executions} |`,
  );
}

function throughputRows(run: CheckRun): string[] {
  return run.report.throughputs.map(
    (t) =>
      `| ${t.model.label} | ${t.device} | ${formatFixed(t.requestsPerSecond, 1)} | ${formatFixed(t.p50Ms)} | ${formatFixed(t.p99Ms)} | ${formatFixed(t.averageBatch)} | ${formatFixed(t.perExecutionMs, 3)} | ${t.non2xx} | ${t.errors + t.timeouts} |`,
  );
}

export function renderReport(run: CheckRun): string {
  const { options, report } = run;
  const { dutLabel, refLabel, connections } = options;
  const lines = [
    `# Gantry GPU check: ${dutLabel} vs ${refLabel}${options.deviceUnderTest === 'cpu' ? ' (CPU-only rehearsal: both gantries on the CPU)' : ''}`,
    '',
    `**Result: ${report.failures.length === 0 ? 'PASS' : 'FAIL'}** (${new Date().toISOString()}, ${run.elapsedSeconds()} s, stage: ${report.stage}${options.quick ? ', --quick' : ''})`,
    '',
    ...(report.failures.length > 0 ? ['Failures:', '', ...report.failures.map((f) => `- ${f}`), ''] : []),
    '## Environment',
    '',
    ...report.environmentLines,
    '',
    '## Workers',
    '',
    ...workerLines(run),
    '',
    '## Summary',
    '',
    `Sequential p50 and worker compute per request from the latency table; req/s at ${connections} connections from the throughput table.`,
    '',
    `| model | ${refLabel} p50 ms | ${dutLabel} p50 ms | ${refLabel} compute ms | ${dutLabel} compute ms | compute ${refLabel}/${dutLabel} | ${refLabel} req/s | ${dutLabel} req/s |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...summaryRows(run),
    '',
    '## Model loads',
    '',
    'Upload → READY (session creation and warm-up included), and the first inference after it (binary; on CUDA',
    "it includes cuDNN's per-shape algorithm search).",
    '',
    `| model | ${dutLabel} load s | ${refLabel} load s | ${dutLabel} first infer ms | ${refLabel} first infer ms |`,
    '| --- | ---: | ---: | ---: | ---: |',
    ...loadRows(run),
    '',
    `## Correctness: ${dutLabel} vs ${refLabel}, same seeded inputs`,
    '',
    'An element passes when |a − b| ≤ abs + rel·|b| (b = the CPU gantry, or the binary answer for json-vs-binary rows).',
    '',
    '| model | comparison | elements | max abs diff | max rel diff (|b| ≥ 1e-3) | outside tol | result |',
    '| --- | --- | ---: | ---: | ---: | ---: | --- |',
    ...comparisonRows(run),
    '',
    'Tolerances:',
    '',
    '| model | abs | rel | why |',
    '| --- | ---: | ---: | --- |',
    ...checkModels.map((m) => `| ${m.name} | ${m.tolerance.abs} | ${m.tolerance.rel} | ${m.tolerance.why} |`),
    '',
    ...toleranceExplanation,
    '',
    `## Sequential latency (binary tensor extension, 1 connection, ${options.requestCount} requests after ${options.warmupRequests} warm-up)`,
    '',
    'End to end over HTTP from this process. "compute_infer" is the worker\'s onnxruntime run time per request from',
    '`GET /v2/models/{m}/stats` over the same window; "histogram" is `gantry_inference_compute_duration_seconds`',
    'sum/count from the worker /metrics (one observation per execution, input/output copies included).',
    '',
    '| model | device | p50 ms | p99 ms | mean ms | compute_infer ms | histogram ms | executions |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...latencyRows(run),
    '',
    `## Throughput (autocannon, binary, ${connections} connections, ${options.throughputSeconds} s after 1 s warm-up)`,
    '',
    '| model | device | req/s | p50 ms | p99 ms | avg batch (rows) | compute ms/exec | non-2xx | errors+timeouts |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...throughputRows(run),
    '',
    ...(report.notes.length > 0 ? ['## Notes', '', ...report.notes.map((n) => `- ${n}`), ''] : []),
  ];
  return `${lines.join('\n')}\n`;
}
