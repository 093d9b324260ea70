/**
 * Prometheus config, alert rules and the Grafana dashboard. promtool checks the config and the rules, runs the
 * alert unit tests (deploy/prometheus/alerts.test.yml), and parses every dashboard query as PromQL (each expr
 * becomes a recording rule in a temporary file for `promtool check rules`). Skips the promtool parts when
 * promtool is not installed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseYaml } from './yaml.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = any;

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'deploy/prometheus')) || !existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('deploy/prometheus not found above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
  return dir;
}

const root = repoRoot();
const promDir = join(root, 'deploy/prometheus');
const havePromtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' }).status === 0;
const skipPromtool = havePromtool ? false : 'promtool is not installed (apt-get install prometheus)';

function promtool(args: string[], cwd = root): string {
  const result = spawnSync('promtool', args, { cwd, encoding: 'utf8' });
  assert.equal(result.status, 0, `promtool ${args.join(' ')} failed:\n${result.stdout}${result.stderr}`);
  return result.stdout + result.stderr;
}

// ---------------------------------------------------------------------------------------------------------
// The metric contract (src/ exports these; default prom-client process metrics are unprefixed).
const HISTOGRAMS = [
  'gantry_inference_request_duration_seconds',
  'gantry_http_request_duration_seconds',
  'gantry_inference_queue_duration_seconds',
  'gantry_inference_compute_duration_seconds',
  'gantry_batch_size',
  'gantry_model_load_duration_seconds',
  'gantry_shadow_max_abs_difference',
  'gantry_shadow_request_duration_seconds',
  'gantry_webhook_delivery_duration_seconds',
];
const OTHERS = [
  'gantry_inference_requests_total',
  'gantry_pending_requests',
  'gantry_models',
  'gantry_redis_up',
  'gantry_inference_executions_total',
  'gantry_worker_info',
  'gantry_shadow_requests_total',
  'gantry_shadow_mismatches_total',
  'gantry_grpc_requests_total',
  'gantry_async_unfinished',
  'gantry_async_oldest_unfinished_age_seconds',
  'gantry_async_created_total',
  'gantry_webhook_deliveries_total',
  'up',
];
const KNOWN = new Set([...OTHERS, ...HISTOGRAMS.flatMap((h) => [`${h}_bucket`, `${h}_sum`, `${h}_count`])]);
const isKnownMetric = (name: string): boolean => KNOWN.has(name) || /^(process|nodejs)_[a-z0-9_]+$/.test(name);

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);

function stripStrings(expr: string): string {
  return expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
}

/** Metric names an expression selects: identifiers that are not functions, keywords, labels or durations. */
function metricNames(expr: string): string[] {
  let s = stripStrings(expr);
  s = s.replace(/\{[^{}]*\}/g, ' ');
  s = s.replace(/\[[^\]]*\]/g, ' ');
  s = s.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)/g, ' ');
  const names: string[] = [];
  for (const m of s.matchAll(/[A-Za-z0-9_.:]+/g)) {
    const token = m[0];
    if (!/^[A-Za-z_:]/.test(token)) continue; // numbers
    if (KEYWORDS.has(token.toLowerCase())) continue;
    const after = s.slice((m.index ?? 0) + token.length).trimStart();
    if (after.startsWith('(')) continue; // function or aggregation
    names.push(token);
  }
  return names;
}

function balanced(expr: string): boolean {
  const s = stripStrings(expr);
  const stack: string[] = [];
  const pairs: Record<string, string> = { ')': '(', ']': '[', '}': '{' };
  for (const ch of s) {
    if (ch === '(' || ch === '[' || ch === '{') stack.push(ch);
    else if (ch in pairs) {
      if (stack.pop() !== pairs[ch]) return false;
    }
  }
  return stack.length === 0;
}

/** Grafana variables → values PromQL accepts, for offline parsing. */
function concretize(expr: string): string {
  return expr.replace(/\$__rate_interval|\$__interval|\$\{__rate_interval\}|\$\{__interval\}/g, '5m').replace(/\$\{?model\}?/g, '.*');
}

// ---------------------------------------------------------------------------------------------------------

test('promtool check config: prometheus.yml and prometheus.local.yml', { skip: skipPromtool }, () => {
  const out = promtool(['check', 'config', 'deploy/prometheus/prometheus.yml']);
  assert.match(out, /SUCCESS/);
  assert.match(promtool(['check', 'config', 'deploy/prometheus/prometheus.local.yml']), /SUCCESS/);
});

test('promtool check rules and promtool test rules: alerts.yml', { skip: skipPromtool }, () => {
  assert.match(promtool(['check', 'rules', 'deploy/prometheus/alerts.yml']), /SUCCESS: \d+ rules found/);
  assert.match(promtool(['test', 'rules', 'alerts.test.yml'], promDir), /SUCCESS/);
});

test('scrape jobs: gantry-api at api:8080, gantry-worker by DNS A discovery of "worker" on 9091', async () => {
  const config = await parseYaml(readFileSync(join(promDir, 'prometheus.yml'), 'utf8'));
  assert.deepEqual(config.rule_files, ['alerts.yml']);
  const jobs = Object.fromEntries((config.scrape_configs as Doc[]).map((job) => [job.job_name, job]));
  assert.deepEqual(jobs['gantry-api']?.static_configs?.[0]?.targets, ['api:8080']);
  const dns = jobs['gantry-worker']?.dns_sd_configs?.[0];
  assert.ok(dns, 'gantry-worker uses dns_sd_configs');
  assert.deepEqual(dns.names, ['worker']);
  assert.equal(dns.type, 'A');
  assert.equal(dns.port, 9091);

  const local = await parseYaml(readFileSync(join(promDir, 'prometheus.local.yml'), 'utf8'));
  const localJobs = Object.fromEntries((local.scrape_configs as Doc[]).map((job) => [job.job_name, job]));
  assert.deepEqual(localJobs['gantry-api']?.static_configs?.[0]?.targets, ['127.0.0.1:8080']);
  assert.deepEqual(localJobs['gantry-worker']?.static_configs?.[0]?.targets, ['127.0.0.1:9091']);
});

test('alerts.yml has the required alerts, each on known metrics', async () => {
  const rules = await parseYaml(readFileSync(join(promDir, 'alerts.yml'), 'utf8'));
  const alerts: Record<string, Doc> = Object.fromEntries(
    (rules.groups as Doc[])
      .flatMap((g) => g.rules as Doc[])
      .filter((r) => r.alert)
      .map((r) => [r.alert, r]),
  );
  const required: Record<string, RegExp> = {
    GantryWorkerDown: /up\{job="gantry-worker"\} == 0[\s\S]*absent\(/,
    GantryQueueBackingUp: /gantry_pending_requests/,
    GantryHighErrorRatio: /outcome!="success"[\s\S]*gantry_inference_requests_total/,
    GantryP99LatencyHigh: /histogram_quantile\(0\.99,[\s\S]*gantry_inference_request_duration_seconds_bucket/,
    GantryRedisDown: /gantry_redis_up == 0/,
  };
  for (const [name, pattern] of Object.entries(required)) {
    const rule = alerts[name];
    assert.ok(rule, `alert ${name} exists`);
    assert.match(String(rule.expr), pattern, `${name} expr`);
  }
  assert.equal(alerts.GantryQueueBackingUp.for, '5m');
  for (const [name, rule] of Object.entries(alerts)) {
    assert.ok(rule.labels?.severity, `${name} has a severity`);
    assert.ok(rule.annotations?.summary, `${name} has a summary`);
    assert.ok(balanced(String(rule.expr)), `${name} brackets balance`);
    for (const metric of metricNames(String(rule.expr))) assert.ok(isKnownMetric(metric), `${name}: unknown metric ${metric}`);
  }
});

test('metricNames extracts selectors only', () => {
  assert.deepEqual(metricNames('sum by (model, le) (rate(gantry_batch_size_bucket{model=~"a|b",x!="sum"}[5m])) / on (model) up > bool 1e3'), [
    'gantry_batch_size_bucket',
    'up',
  ]);
  assert.ok(!balanced('sum(rate(x[5m])'));
});

test('Grafana dashboard: uid, title, panels with valid PromQL over the Gantry metrics', async (t) => {
  const dashboard = JSON.parse(readFileSync(join(root, 'deploy/grafana/dashboards/gantry.json'), 'utf8'));
  assert.equal(typeof dashboard.uid, 'string');
  assert.ok(dashboard.uid.length > 0 && dashboard.uid.length <= 40, 'uid length');
  assert.equal(typeof dashboard.title, 'string');
  assert.ok(Array.isArray(dashboard.panels) && dashboard.panels.length >= 10);

  const datasource = await parseYaml(readFileSync(join(root, 'deploy/grafana/provisioning/datasources/prometheus.yml'), 'utf8'));
  const dsUid = datasource.datasources[0].uid;
  assert.equal(datasource.datasources[0].type, 'prometheus');
  assert.equal(datasource.datasources[0].url, 'http://prometheus:9090');

  const ids = new Set<number>();
  const exprs: Array<{ panel: string; expr: string }> = [];
  for (const panel of dashboard.panels as Doc[]) {
    assert.ok(typeof panel.id === 'number' && !ids.has(panel.id), `panel ids are unique (${panel.title})`);
    ids.add(panel.id);
    assert.ok(panel.gridPos, `${panel.title} has gridPos`);
    if (panel.type === 'row') continue;
    assert.ok(panel.title, 'panel has a title');
    assert.equal(panel.datasource?.uid, dsUid, `${panel.title} uses the provisioned datasource`);
    assert.ok(Array.isArray(panel.targets) && panel.targets.length > 0, `${panel.title} has targets`);
    for (const target of panel.targets as Doc[]) {
      assert.equal(typeof target.expr, 'string', `${panel.title} target has an expr`);
      assert.ok(target.refId, `${panel.title} target has a refId`);
      exprs.push({ panel: panel.title, expr: target.expr });
    }
  }

  const used = new Set<string>();
  for (const { panel, expr } of exprs) {
    assert.ok(balanced(expr), `${panel}: brackets balance in ${expr}`);
    const names = metricNames(concretize(expr));
    assert.ok(names.length > 0, `${panel}: ${expr} selects no metric`);
    for (const name of names) {
      assert.ok(isKnownMetric(name), `${panel}: unknown metric ${name} in ${expr}`);
      used.add(name.replace(/_(bucket|sum|count)$/, ''));
    }
  }
  // Every metric of the contract is on the dashboard somewhere.
  for (const metric of [...OTHERS, ...HISTOGRAMS]) assert.ok(used.has(metric), `the dashboard never shows ${metric}`);
  const titles = (dashboard.panels as Doc[]).map((p) => String(p.title).toLowerCase()).join('|');
  for (const word of ['request rate', 'error ratio', 'p99', 'queue', 'compute', 'batch size', 'pending', 'model states', 'workers up', 'redis', 'memory']) {
    assert.ok(titles.includes(word), `a panel title mentions "${word}"`);
  }

  // Real PromQL parsing, offline: every expr as a recording rule, checked by promtool.
  if (!havePromtool) {
    t.skip('promtool is not installed: PromQL syntax of dashboard queries not checked');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'gantry-dashboard-'));
  const rules = exprs.map(({ expr }, i) => `      - record: dashboard:expr_${i}\n        expr: ${JSON.stringify(concretize(expr))}`).join('\n');
  writeFileSync(join(dir, 'dashboard-rules.yml'), `groups:\n  - name: dashboard\n    rules:\n${rules}\n`);
  assert.match(promtool(['check', 'rules', join(dir, 'dashboard-rules.yml')]), new RegExp(`SUCCESS: ${exprs.length} rules found`));
});
