/**
 * Live metrics check: a real gantry (`start`: API + worker child) serves real traffic, its two /metrics
 * endpoints are read directly, then a real Prometheus scrapes both and evaluates every Grafana dashboard query
 * (deploy/grafana/dashboards/gantry.json) and every alert rule (deploy/prometheus/alerts.yml).
 *
 * Skips only when the `prometheus` binary is not installed (Debian: apt-get install prometheus).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fixturePath, freePort, repositoryRoot, startGantry, uploadModel, withAdminKey, type GantryProcess } from '../helpers/gantry-process.js';
import { connectInference, unaryCall } from '../helpers/grpc-client.js';
import { httpCall } from '../helpers/http.js';
import type { JsonBody } from '../../support/json-body.js';

const prometheusBinary = process.env.PROMETHEUS_BIN ?? 'prometheus';
const havePrometheus = spawnSync(prometheusBinary, ['--version'], { encoding: 'utf8' }).status === 0;
const skipReason = havePrometheus ? false : `the prometheus binary (${prometheusBinary}) is not installed (apt-get install prometheus)`;

const modelName = 'tiny-mlp';
/** Sent as X-Request-Id on every request: it must never show up in a metric label. */
const tracedRequestId = 'trace-4f1d2c9e-0b7a-4e21-9c3d-5a6b7c8d9e0f';
const uuidPattern = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;
/** A sha256, a BullMQ job id made of hex, or any other long opaque token. */
const opaqueIdPattern = /^[0-9a-f]{16,}$/i;

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text exposition format (enough of it for prom-client's output). */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line.length === 0 || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    assert.ok(match, `unparseable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    const labelText = match[3] ?? '';
    const labelPattern = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
    for (let label = labelPattern.exec(labelText); label !== null; label = labelPattern.exec(labelText)) {
      labels[label[1]!] = label[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    }
    const raw = match[4]!;
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw);
    samples.push({ name: match[1]!, labels, value });
  }
  return samples;
}

function select(samples: Sample[], name: string, labels: Record<string, string> = {}): Sample[] {
  return samples.filter((sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value));
}

function total(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return select(samples, name, labels).reduce((sum, sample) => sum + sample.value, 0);
}

async function scrape(url: string): Promise<{ text: string; samples: Sample[] }> {
  const response = await fetch(`${url}/metrics`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
  const text = await response.text();
  return { text, samples: parseExposition(text) };
}

/** Asserts that no label value looks like a per-request, per-job or per-blob id. */
function assertNoIdLabels(samples: Sample[], where: string, requestIds: string[]): void {
  for (const sample of samples) {
    for (const [key, value] of Object.entries(sample.labels)) {
      const shown = `${where}: ${sample.name}{${key}="${value}"}`;
      assert.doesNotMatch(value, uuidPattern, `${shown} looks like a uuid`);
      assert.doesNotMatch(value, opaqueIdPattern, `${shown} looks like an opaque id`);
      assert.ok(!requestIds.includes(value) && !value.includes(tracedRequestId), `${shown} is a request id`);
    }
  }
}

const randomInput = (rows = 1) => ({
  inputs: [{ name: 'input', datatype: 'FP32', shape: [rows, 256], data: Array.from({ length: rows * 256 }, () => Math.random() - 0.5) }],
});

function infer(baseUrl: string, body: unknown): Promise<{ status: number; body: JsonBody }> {
  return httpCall(baseUrl, 'POST', `/v2/models/${modelName}/infer`, { body, headers: withAdminKey({ 'x-request-id': tracedRequestId }) });
}

/** Two kinds of 400: a tensor of the wrong shape (counted as outcome="client_error"), and a body the schema rejects. */
async function sendBadRequests(baseUrl: string, requestIds: string[]): Promise<void> {
  const wrongShape = await infer(baseUrl, { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] });
  assert.equal(wrongShape.status, 400, JSON.stringify(wrongShape.body));
  const noInputs = await fetch(`${baseUrl}/v2/models/${modelName}/infer`, {
    method: 'POST',
    headers: withAdminKey({ 'content-type': 'application/json' }),
    body: JSON.stringify({ nonsense: true }),
  });
  assert.equal(noInputs.status, 400);
  const body = (await noInputs.json()) as { requestId?: string };
  if (typeof body.requestId === 'string') requestIds.push(body.requestId);
}

async function sendInferences(baseUrl: string, count: number, concurrency = 8): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        next += 1;
        const reply = await infer(baseUrl, randomInput());
        assert.equal(reply.status, 200, JSON.stringify(reply.body));
        assert.deepEqual(reply.body.outputs[0].shape, [1, 16]);
      }
    }),
  );
}

/** A Grafana dashboard panel as far as dashboardQueries reads it: a row holds panels, a graph holds targets. */
interface DashboardPanel {
  title?: unknown;
  panels?: DashboardPanel[];
  targets?: { expr?: unknown }[];
}

/** An alerting rule as Prometheus's /api/v1/rules answers it (the fields this test reads). */
interface PrometheusAlertRule {
  name: string;
  query: string;
  health: string;
  lastError?: string;
  lastEvaluation: string;
  state: string;
}

/** Every `targets[].expr` of the dashboard, panels nested in rows included. */
function dashboardQueries(dashboard: { panels?: DashboardPanel[] }): Array<{ title: string; expr: string }> {
  const found: Array<{ title: string; expr: string }> = [];
  const walk = (panels: DashboardPanel[] | undefined) => {
    for (const panel of panels ?? []) {
      walk(panel.panels);
      for (const target of panel.targets ?? []) if (typeof target.expr === 'string') found.push({ title: String(panel.title), expr: target.expr });
    }
  };
  walk(dashboard.panels);
  return found;
}

/** Grafana variables → PromQL Prometheus can run on its own. */
function substituteGrafanaVariables(expr: string): string {
  return expr.replace(/\$\{?__rate_interval\}?|\$\{?__interval\}?|\$\{?__range\}?/g, '1m').replace(/\$\{model(?::[a-z]+)?\}|\$model\b/g, '.*');
}

let gantry: GantryProcess | undefined;
let prometheus: ChildProcess | undefined;
let prometheusOutput = '';
let prometheusDirectory: string | undefined;

before(async () => {
  if (!havePrometheus) return;
  // The webhook panels need deliveries: the test's receiver listens on loopback, which the allow-list opens.
  gantry = await startGantry({ env: { GANTRY_WEBHOOK_ALLOW: '127.0.0.1', GANTRY_WEBHOOK_BASE_DELAY_MS: '50' } });
});

after(async () => {
  if (prometheus !== undefined && prometheus.exitCode === null && prometheus.signalCode === null) {
    const exited = new Promise((resolve) => prometheus!.once('exit', resolve));
    prometheus.kill('SIGTERM');
    const killer = setTimeout(() => prometheus?.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(killer);
  }
  if (prometheusDirectory !== undefined) await rm(prometheusDirectory, { recursive: true, force: true });
  await gantry?.cleanup();
});

test('API and worker /metrics, scraped by a real Prometheus, feed every dashboard panel and alert rule', { skip: skipReason, timeout: 60_000 }, async (t) => {
  const g = gantry!;
  const requestIds: string[] = [];

  const upload = await uploadModel(g.baseUrl, modelName, fixturePath('tiny-mlp.onnx'));
  assert.equal(upload.status, 201, JSON.stringify(upload.body));
  if (typeof upload.body?.requestId === 'string') requestIds.push(upload.body.requestId);
  assert.equal(upload.body.version, '1');

  // One at a time: each request is then its own job and its own onnxruntime execution (batching, if the worker
  // merges concurrent requests, has nothing to merge), so the counts below are exact lower bounds.
  await sendInferences(g.baseUrl, 50, 1);
  await sendBadRequests(g.baseUrl, requestIds);
  await sendBadRequests(g.baseUrl, requestIds);

  // The per-version panels: version 1 keeps every request (a split of one), and an identical version 2 shadows
  // them all, so the shadow metrics have data (and no mismatch); one gRPC call feeds the gRPC panel.
  const shadowVersion = await uploadModel(g.baseUrl, modelName, fixturePath('tiny-mlp.onnx'), '?duplicate=true');
  assert.equal(shadowVersion.status, 201, JSON.stringify(shadowVersion.body));
  const policy = await httpCall(g.baseUrl, 'PUT', `/v1/models/${modelName}/traffic`, {
    headers: withAdminKey({ 'content-type': 'application/json' }),
    body: { splits: [{ version: '1', weight: 1 }], shadow: { version: shadowVersion.body.version, percent: 100 } },
  });
  assert.equal(policy.status, 200, policy.text);
  await sendInferences(g.baseUrl, 10, 1);
  const grpcClient = connectInference(g.grpcAddress);
  try {
    assert.deepEqual(await unaryCall(grpcClient, 'ServerLive', {}), { live: true });
  } finally {
    grpcClient.close();
  }

  await t.test('API /metrics', async () => {
    const { samples } = await scrape(g.baseUrl);
    assert.ok(total(samples, 'gantry_inference_requests_total', { model: modelName, version: '1', outcome: 'success' }) >= 50);
    assert.ok(total(samples, 'gantry_inference_requests_total', { model: modelName, version: '1', outcome: 'client_error' }) >= 2);
    const latencyCount = total(samples, 'gantry_inference_request_duration_seconds_count', { model: modelName, version: '1' });
    assert.ok(latencyCount >= 50, `inference duration count ${latencyCount}`);
    const infBucket = select(samples, 'gantry_inference_request_duration_seconds_bucket', { model: modelName, version: '1', le: '+Inf' });
    assert.equal(infBucket.length, 1);
    assert.equal(infBucket[0]!.value, latencyCount);
    const latencySum = total(samples, 'gantry_inference_request_duration_seconds_sum', { model: modelName, version: '1' });
    assert.ok(latencySum > 0 && latencySum / latencyCount < 5, `mean inference latency ${latencySum / latencyCount}s`);

    const http = select(samples, 'gantry_http_request_duration_seconds_count');
    const inferRoute = http.filter((sample) => sample.labels.route === '/v2/models/:model/infer');
    assert.ok(inferRoute.some((sample) => sample.labels.method === 'POST' && sample.labels.status_code === '200' && sample.value >= 50));
    assert.ok(inferRoute.some((sample) => sample.labels.status_code === '400' && sample.value >= 4));
    for (const sample of select(samples, 'gantry_http_request_duration_seconds_bucket')) {
      assert.ok(!sample.labels.route!.includes(modelName), `raw model name in route label: ${sample.labels.route}`);
    }

    const pending = select(samples, 'gantry_pending_requests', { model: modelName });
    assert.equal(pending.length, 1, 'gantry_pending_requests has a series for the model');
    assert.ok(pending[0]!.value >= 0);
    assert.ok(total(samples, 'gantry_models', { state: 'READY' }) >= 1);
    assert.equal(total(samples, 'gantry_models', { state: 'UNAVAILABLE' }), 0);
    assert.equal(total(samples, 'gantry_redis_up'), 1);
    assert.ok(total(samples, 'process_cpu_seconds_total') > 0);
    assertNoIdLabels(samples, 'API', requestIds);
  });

  await t.test('worker /metrics', async () => {
    const { samples } = await scrape(g.workerUrl);
    const labels = { model: modelName, version: '1' };
    // Observed once per job, and the API packs requests that arrive together into one job: 1..60 observations (50, then 10 more with a shadow).
    const queued = total(samples, 'gantry_inference_queue_duration_seconds_count', labels);
    assert.ok(queued >= 1 && queued <= 60, `gantry_inference_queue_duration_seconds_count is ${queued}`);
    assert.ok(select(samples, 'gantry_inference_queue_duration_seconds_bucket', labels).length > 1);
    assert.equal(select(samples, 'gantry_inference_queue_duration_seconds_bucket', { ...labels, le: '+Inf' })[0]?.value, queued);
    assert.ok(total(samples, 'gantry_inference_compute_duration_seconds_count', labels) >= 50);
    assert.ok(total(samples, 'gantry_inference_compute_duration_seconds_sum', labels) > 0);
    assert.ok(total(samples, 'gantry_batch_size_count', labels) >= 1);
    const executions = total(samples, 'gantry_inference_executions_total');
    assert.ok(executions >= 50, `gantry_inference_executions_total is ${executions}`);
    // One gantry_batch_size observation per execution, each the number of requests it served: ≥ 50 in all.
    assert.equal(total(samples, 'gantry_batch_size_count'), executions);
    assert.ok(total(samples, 'gantry_batch_size_sum', labels) >= 50);
    assert.ok(total(samples, 'gantry_model_load_duration_seconds_count', { model: modelName }) >= 1);
    assert.ok(total(samples, 'gantry_model_load_duration_seconds_sum', { model: modelName }) > 0);
    const info = select(samples, 'gantry_worker_info');
    assert.deepEqual(
      info.map((sample) => [sample.labels.device, sample.value]),
      [['cpu', 1]],
    );
    assert.equal(total(samples, 'gantry_redis_up'), 1);
    assert.ok(total(samples, 'gantry_worker_requests_total', { ...labels, outcome: 'success' }) >= 50);
    assert.ok(total(samples, 'process_cpu_seconds_total') > 0);
    assertNoIdLabels(samples, 'worker', requestIds);
  });

  await t.test('a real Prometheus evaluates every dashboard query and alert rule', async () => {
    prometheusDirectory = await mkdtemp(path.join(os.tmpdir(), 'gantry-prometheus-'));
    const port = await freePort();
    const promUrl = `http://127.0.0.1:${port}`;
    const alertsPath = path.join(repositoryRoot, 'deploy/prometheus/alerts.yml');
    const configPath = path.join(prometheusDirectory, 'prometheus.yml');
    await writeFile(
      configPath,
      [
        'global:',
        '  scrape_interval: 1s',
        '  scrape_timeout: 1s',
        '  evaluation_interval: 1s',
        'rule_files:',
        `  - ${JSON.stringify(alertsPath)}`,
        'scrape_configs:',
        '  - job_name: gantry-api',
        '    static_configs:',
        `      - targets: [${JSON.stringify(new URL(g.baseUrl).host)}]`,
        '  - job_name: gantry-worker',
        '    static_configs:',
        `      - targets: [${JSON.stringify(new URL(g.workerUrl).host)}]`,
        '',
      ].join('\n'),
    );
    prometheus = spawn(
      prometheusBinary,
      [
        `--config.file=${configPath}`,
        `--storage.tsdb.path=${path.join(prometheusDirectory, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    prometheus.stdout?.on('data', (chunk: Buffer) => (prometheusOutput += chunk.toString()));
    prometheus.stderr?.on('data', (chunk: Buffer) => (prometheusOutput += chunk.toString()));

    const api = async (pathAndQuery: string): Promise<JsonBody> => {
      const response = await fetch(`${promUrl}${pathAndQuery}`);
      return response.json();
    };
    const waitFor = async (what: string, check: () => Promise<boolean>, timeoutMs = 15_000) => {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        assert.equal(prometheus!.exitCode, null, `prometheus exited:\n${prometheusOutput}`);
        if (await check().catch(() => false)) return;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      assert.fail(`timed out waiting for ${what}\n${prometheusOutput}`);
    };

    await waitFor('both targets up', async () => {
      const targets = await api('/api/v1/targets');
      const active: { labels: { job: string }; health: string }[] = targets.data.activeTargets;
      const healthOf = (job: string) => active.find((target) => target.labels.job === job)?.health;
      return healthOf('gantry-api') === 'up' && healthOf('gantry-worker') === 'up';
    });

    // Traffic while Prometheus scrapes every second, so each rate() window holds several increasing samples:
    // successes, client errors, and a second version upload (gantry_model_load_duration_seconds must increase
    // inside the window too, or the load-time panel's rate() is all zeros and its quantile NaN).
    // Asynchronous jobs with a callback feed the jobs and webhook panels (one receiver answer in three fails).
    let hooksReceived = 0;
    const receiver: Server = createServer((request, response) => {
      request.resume();
      request.on('end', () => {
        hooksReceived += 1;
        response.statusCode = hooksReceived % 3 === 0 ? 500 : 204;
        response.end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const callback = { url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook` };
    const trafficUntil = Date.now() + 5_000;
    let uploadedSecond = false;
    while (Date.now() < trafficUntil) {
      await sendInferences(g.baseUrl, 10, 4);
      const job = await httpCall(g.baseUrl, 'POST', `/v1/models/${modelName}/jobs`, {
        headers: withAdminKey({ 'content-type': 'application/json' }),
        body: { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 256], data: new Array(256).fill(0.5) }], callback },
      });
      assert.equal(job.status, 202, job.text);
      await sendBadRequests(g.baseUrl, requestIds);
      if (!uploadedSecond && Date.now() > trafficUntil - 3_500) {
        const second = await uploadModel(g.baseUrl, modelName, fixturePath('tiny-mlp.onnx'), '?duplicate=true');
        assert.equal(second.status, 201, JSON.stringify(second.body));
        uploadedSecond = true;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    // Let the last increases land in a scrape.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    receiver.close();
    assert.ok(hooksReceived > 0, 'webhooks were delivered');

    const dashboard = JSON.parse(await readFile(path.join(repositoryRoot, 'deploy/grafana/dashboards/gantry.json'), 'utf8'));
    const queries = dashboardQueries(dashboard);
    assert.ok(queries.length >= 10, `only ${queries.length} dashboard queries found`);
    const failures: string[] = [];
    for (const { title, expr } of queries) {
      const promql = substituteGrafanaVariables(expr);
      assert.doesNotMatch(promql, /\$/, `unsubstituted Grafana variable in ${title}: ${promql}`);
      const reply = await api(`/api/v1/query?query=${encodeURIComponent(promql)}`);
      if (reply.status !== 'success') {
        failures.push(`${title}: ${promql} → ${reply.errorType}: ${reply.error}`);
        continue;
      }
      const result: Array<{ value: [number, string] }> = reply.data.result;
      // Every panel has data on a healthy gantry that served traffic (including errors and a model load in the
      // last minute): the error ratio has client_error requests, the load-time p95 a second version's load.
      // At least one series must also be a number: a histogram_quantile over all-zero rates would be NaN.
      if (result.length === 0) failures.push(`${title}: ${promql} → empty result`);
      else if (!result.some((series) => Number.isFinite(Number(series.value[1])))) {
        failures.push(`${title}: ${promql} → only non-finite values ${JSON.stringify(result.map((series) => series.value[1]))}`);
      }
    }
    assert.deepEqual(failures, [], failures.join('\n'));

    // The model variable's own query, with the model name in place of `.*` for one panel as Grafana would send it.
    const byName = await api(`/api/v1/query?query=${encodeURIComponent(`sum by (model) (rate(gantry_inference_requests_total{model=~"${modelName}"}[1m]))`)}`);
    assert.equal(byName.status, 'success');
    assert.deepEqual(
      byName.data.result.map((series: { metric: { model: string } }) => series.metric.model),
      [modelName],
    );
    const labelValues = await api('/api/v1/label/model/values');
    assert.ok(labelValues.data.includes(modelName));

    // Alert rules: every `- alert:` in alerts.yml is loaded, evaluated with health "ok", and its expr runs.
    const alertNames = [...(await readFile(alertsPath, 'utf8')).matchAll(/^\s*-\s*alert:\s*(\S+)/gm)].map((match) => match[1]!);
    assert.ok(alertNames.length >= 5);
    let rules: PrometheusAlertRule[] = [];
    await waitFor('every alert rule evaluated', async () => {
      const reply = await api('/api/v1/rules?type=alert');
      rules = reply.data.groups.flatMap((group: { rules: PrometheusAlertRule[] }) => group.rules);
      return rules.length === alertNames.length && rules.every((rule) => rule.health !== 'unknown' && rule.lastEvaluation !== '0001-01-01T00:00:00Z');
    });
    assert.deepEqual(rules.map((rule) => rule.name).sort(), [...alertNames].sort());
    for (const rule of rules) {
      assert.equal(rule.health, 'ok', `${rule.name}: ${rule.lastError ?? ''}`);
      const reply = await api(`/api/v1/query?query=${encodeURIComponent(rule.query)}`);
      assert.equal(reply.status, 'success', `${rule.name}: ${rule.query} → ${reply.error}`);
    }
    // With API, worker and Redis up and no backlog, only the error-ratio alert may be active: this test sends
    // about one client_error per ten successes (~9% > 5%), so it is pending (its `for: 5m` keeps it from firing).
    const stateOf = (name: string) => rules.find((rule) => rule.name === name)?.state;
    for (const name of alertNames.filter((alert) => alert !== 'GantryHighErrorRatio')) assert.equal(stateOf(name), 'inactive', name);
    assert.equal(stateOf('GantryHighErrorRatio'), 'pending');
  });
});
