/**
 * The web console end to end (issue 17): a real gantry, the built console in Debian's headless Chromium (driven by
 * playwright-core), the test admin key typed into the page. It uploads a model through the upload form (progress
 * bar), waits for READY in the models list, runs inferences from the generated "try it" form (typed JSON, then a
 * .npy file) and compares the outputs with what the API answers for the same input, then sees the requests on the
 * Live view's table and chart. Every page is screenshotted into test-artifacts/console/. It also checks the
 * console's headers (CSP, caching), a key without scopes (403s shown as such), and the live-stats stream's bounds.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { inferJson, repositoryRoot, startGantry, testAdminKey, type GantryProcess } from '../helpers/gantry-process.js';
import { call, randomFloats } from './support.js';

/** GANTRY_MAX_CONSOLE_STREAMS of the deployment under test: small, so the limit test opens few streams. */
const maxLiveStatsStreams = 6;

const chromiumPath = '/usr/bin/chromium';
const screenshotDirectory = path.join(repositoryRoot, 'test-artifacts/console');
const modelFile = path.join(repositoryRoot, 'models/tiny-mlp.onnx');
const model = 'tiny-mlp';
// Without the background-networking flags Chromium reaches for Google's services, which this machine refuses.
const chromiumArgs = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** A little-endian float32 .npy file (format 1.0) of `values` with `shape`. */
function npyFloat32(values: number[], shape: number[]): Buffer {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  // The header is padded with spaces to a multiple of 64 bytes (with the 10-byte preamble), ending in a newline.
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const preamble = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length & 0xff, header.length >> 8]);
  return Buffer.concat([preamble, Buffer.from(header, 'latin1'), Buffer.from(Float32Array.from(values).buffer)]);
}

describe('the web console in headless Chromium', { timeout: 240_000 }, () => {
  let gantry: GantryProcess;
  let context: BrowserContext;
  let page: Page;
  let userDataDirectory: string;
  const pageErrors: string[] = [];
  let shot = 0;

  const screenshot = async (name: string) => {
    shot++;
    await page.screenshot({ path: path.join(screenshotDirectory, `${String(shot).padStart(2, '0')}-${name}.png`), fullPage: true });
  };
  const byTestId = (id: string) => page.locator(`[data-testid="${id}"]`);
  const outputsShown = async () => JSON.parse((await byTestId('outputs').textContent()) ?? 'null') as unknown;

  before(async () => {
    assert.ok(
      existsSync(chromiumPath),
      `${chromiumPath} is missing: install Debian's chromium package (apt-get install chromium; .ci/run installs it) to run the console test`,
    );
    assert.ok(existsSync(path.join(repositoryRoot, 'dist/console/index.html')), 'the console is not built: run npm run build');
    await rm(screenshotDirectory, { recursive: true, force: true });
    await mkdir(screenshotDirectory, { recursive: true });
    gantry = await startGantry({ env: { GANTRY_MAX_CONSOLE_STREAMS: String(maxLiveStatsStreams) } });
    userDataDirectory = await mkdtemp(path.join(os.tmpdir(), 'gantry-chromium-'));
    context = await chromium.launchPersistentContext(userDataDirectory, {
      executablePath: chromiumPath,
      headless: true,
      args: chromiumArgs,
      viewport: { width: 1280, height: 900 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (error) => pageErrors.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      // Chromium logs every 4xx answer as "Failed to load resource"; the key gate's keyless probe is one of them.
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) pageErrors.push(`console error: ${message.text()}`);
    });
  });

  after(async () => {
    await context?.close();
    if (userDataDirectory !== undefined) await rm(userDataDirectory, { recursive: true, force: true });
    await gantry?.cleanup();
  });

  test('the console is served with its CSP and cache headers, and /console redirects to it', async () => {
    const redirect = await fetch(`${gantry.baseUrl}/console`, { redirect: 'manual' });
    assert.equal(redirect.status, 302);
    assert.equal(redirect.headers.get('location'), '/console/');
    const index = await fetch(`${gantry.baseUrl}/console/`);
    assert.equal(index.status, 200);
    assert.match(index.headers.get('content-type') ?? '', /^text\/html/);
    assert.equal(index.headers.get('cache-control'), 'no-cache');
    const policy = index.headers.get('content-security-policy') ?? '';
    for (const directive of ["default-src 'self'", "script-src 'self'", "object-src 'none'", "frame-ancestors 'none'"])
      assert.ok(policy.includes(directive), policy);
    const html = await index.text();
    assert.ok(!/<script>|<script [^>]*>[^<]/.test(html), 'index.html must hold no inline script');
    const script = /src="\.\/(main-[A-Z0-9]{8}\.js)"/.exec(html)?.[1];
    assert.ok(script !== undefined, html);
    const bundle = await fetch(`${gantry.baseUrl}/console/${script}`);
    assert.equal(bundle.status, 200);
    assert.equal(bundle.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    assert.match(bundle.headers.get('content-type') ?? '', /javascript/);
    // Nothing outside the build's folder, however the path is spelled.
    for (const escape of ['/console/../package.json', '/console/%2e%2e/package.json', '/console/..%2fpackage.json']) {
      const reply = await fetch(`${gantry.baseUrl}${escape}`);
      // fetch itself resolves a literal `..` (to /package.json, no route: 401 without a key).
      assert.ok(reply.status >= 400, `${escape}: ${reply.status}`);
      assert.ok(!(await reply.text()).includes('"dependencies"'), escape);
    }
  });

  test('key, upload with progress, READY in the list, try-it outputs equal the API, the request on the live chart', async () => {
    await page.goto(`${gantry.baseUrl}/console`);
    await page.locator('#api-key').waitFor();
    await screenshot('key');
    await page.fill('#api-key', testAdminKey);
    await page.click('button[type="submit"]');
    await page.getByText('No models yet').waitFor();
    await screenshot('models-empty');

    await byTestId('nav-upload').click();
    await byTestId('upload-file').setInputFiles(modelFile);
    assert.equal(await byTestId('upload-name').inputValue(), model, 'the name is taken from the file');
    await byTestId('upload-submit').click();
    await page.locator('[data-testid="upload-state"]', { hasText: 'READY' }).waitFor({ timeout: 30_000 });
    const progress = byTestId('upload-progress');
    assert.equal(await progress.getAttribute('data-fraction'), '1.000');
    assert.equal(await progress.getAttribute('value'), await progress.getAttribute('max'));
    await screenshot('upload');

    await byTestId('nav-models').click();
    await page.locator(`[data-testid="state-${model}-1"]`, { hasText: 'READY' }).waitFor();
    // The warm-up result comes with the version's details, read as soon as the list shows the version.
    await page.locator(`[data-testid="model-row-${model}-1"] .warmup-ok`, { hasText: 'ok' }).waitFor();
    await screenshot('models');

    await page.getByRole('link', { name: model, exact: true }).click();
    await byTestId('model-view').getByText('Inputs').waitFor();
    assert.match((await byTestId('model-view').textContent()) ?? '', /input FP32 \[-1, 256\]/);
    await screenshot('model');

    // Typed JSON: the form starts from the signature (shape 1, 256 and zeros); the test's own values replace them.
    await page.getByRole('link', { name: 'Try it' }).first().click();
    await byTestId('input-input').waitFor();
    assert.equal(await byTestId('input-input-shape').inputValue(), '1, 256');
    const typed = randomFloats(17, 256);
    await byTestId('input-input-data').fill(JSON.stringify(typed));
    await byTestId('try-submit').click();
    await byTestId('outputs').waitFor();
    const direct = await inferJson(gantry.baseUrl, model, { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 256], data: typed }] });
    assert.equal(direct.status, 200);
    assert.deepEqual(await outputsShown(), direct.body.outputs);
    await screenshot('try-json');

    // A .npy file through the file picker.
    const fromFile = randomFloats(23, 256);
    const npyPath = path.join(userDataDirectory, 'input.npy');
    await writeFile(npyPath, npyFloat32(fromFile, [1, 256]));
    await byTestId('input-input-file').setInputFiles(npyPath);
    await byTestId('input-input-file-summary').getByText('FP32 [1, 256]').waitFor();
    await byTestId('try-submit').click();
    const fileDirect = await inferJson(gantry.baseUrl, model, { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 256], data: fromFile }] });
    await page.waitForFunction((before) => document.querySelector('[data-testid="outputs"]')?.textContent !== before, JSON.stringify(direct.body.outputs));
    assert.deepEqual(await outputsShown(), fileDirect.body.outputs);
    await screenshot('try-npy');

    // Four requests so far (two from the form, two from the test): the live table counts them, the chart drew a rate.
    await byTestId('nav-live').click();
    const row = byTestId(`live-row-${model}`);
    await page.waitForFunction((id) => Number(document.querySelector(`[data-testid="${id}"]`)?.getAttribute('data-requests-total')) >= 4, `live-row-${model}`);
    const before = Number(await row.getAttribute('data-requests-total'));
    assert.equal(before, 4);
    const rateChart = byTestId(`chart-rate-${model}`);
    await page.waitForFunction((id) => Number(document.querySelector(`[data-testid="${id}"]`)?.getAttribute('data-max')) > 0, `chart-rate-${model}`);
    // One more request while the page watches: its count goes up within a few samples.
    assert.equal((await inferJson(gantry.baseUrl, model, { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 256], data: typed }] })).status, 200);
    await page.waitForFunction(
      ([id, count]) => Number(document.querySelector(`[data-testid="${id}"]`)?.getAttribute('data-requests-total')) === count,
      [`live-row-${model}`, before + 1] as const,
      { timeout: 10_000 },
    );
    assert.ok(Number(await rateChart.getAttribute('data-points')) >= 2);
    await byTestId(`chart-latency-${model}`).locator('canvas').waitFor();
    await screenshot('live');

    await byTestId('nav-keys').click();
    await byTestId('keys-view').locator('table').waitFor();
    await screenshot('keys');
    await byTestId('nav-usage').click();
    await byTestId('usage-view').locator('table').waitFor();
    await screenshot('usage');
    assert.deepEqual(pageErrors, [], 'the page logged errors (a CSP violation shows here too)');
  });

  test('a key with models:read only: no Keys or Usage links, and their pages say which scope is missing', async () => {
    const created = await call(gantry.baseUrl, 'POST', '/v1/keys', { name: 'console reader', scopes: ['models:read'] });
    assert.equal(created.status, 201, created.text);
    await byTestId('sign-out').click();
    await page.fill('#api-key', created.body.key);
    await page.click('button[type="submit"]');
    await page.locator(`[data-testid="state-${model}-1"]`, { hasText: 'READY' }).waitFor();
    assert.equal(await byTestId('nav-keys').count(), 0);
    assert.equal(await byTestId('nav-usage').count(), 0);
    await page.goto(`${gantry.baseUrl}/console/#/keys`);
    const refusal = byTestId('error');
    await refusal.waitFor();
    assert.match((await refusal.textContent()) ?? '', /keys:write/);
    await screenshot('keys-refused');
    // It may read models, so the live view works; it may not infer, and the form says so.
    await page.goto(`${gantry.baseUrl}/console/#/try/${model}`);
    await byTestId('try-submit').click();
    await byTestId('error').waitFor();
    assert.match((await byTestId('error').textContent()) ?? '', /infer/);
    await screenshot('try-refused');
    const shots = (await readdir(screenshotDirectory)).filter((file) => file.endsWith('.png'));
    assert.equal(shots.length, shot, shots.join(', '));
  });

  test('GANTRY_AUTH=off: the console asks for no key, lists models and streams live stats', async () => {
    const keyless = await startGantry({ command: 'api', env: { GANTRY_AUTH: 'off' } });
    const keylessPage = await context.newPage();
    try {
      await keylessPage.goto(`${keyless.baseUrl}/console/`);
      await keylessPage.getByText('No models yet').waitFor();
      assert.equal(await keylessPage.locator('#api-key').count(), 0, 'no key asked for');
      await keylessPage.getByText('no key needed').waitFor();
      await keylessPage.locator('[data-testid="nav-live"]').click();
      await keylessPage.locator('[data-testid="live-view"]').waitFor();
      // The first sample arrives (the stream needs no key either), and nothing is refused.
      await keylessPage.getByText('Waiting for the first sample').waitFor({ state: 'detached' });
      assert.equal(await keylessPage.locator('[role="alert"]').count(), 0);
      await keylessPage.screenshot({ path: path.join(screenshotDirectory, `${String(++shot).padStart(2, '0')}-keyless-live.png`), fullPage: true });
    } finally {
      await keylessPage.close();
      await keyless.cleanup();
    }
  });

  test(`live-stats: a stream per caller's models, at most ${maxLiveStatsStreams} per process (then 503), ended at shutdown`, async () => {
    const open: AbortController[] = [];
    const headers = { authorization: `Bearer ${testAdminKey}` };
    try {
      for (let index = 0; index < maxLiveStatsStreams + 1; index++) {
        const controller = new AbortController();
        const response = await fetch(`${gantry.baseUrl}/v1/console/live-stats`, { headers, signal: controller.signal });
        if (response.status === 200) {
          open.push(controller);
          continue;
        }
        // The browser's stream may still be open: the limit counts it.
        assert.equal(response.status, 503);
        assert.ok(Number(response.headers.get('retry-after')) > 0);
        assert.match(((await response.json()) as { error: string }).error, /live-stats streams/);
        break;
      }
      assert.ok(open.length >= maxLiveStatsStreams - 1 && open.length <= maxLiveStatsStreams, `${open.length} streams opened`);
      const first = await fetch(`${gantry.baseUrl}/v1/console/live-stats`, { headers });
      assert.equal(first.status, 503);
      await first.body?.cancel();
      const metrics = await (await fetch(`${gantry.baseUrl}/metrics`, { headers })).text();
      assert.match(metrics, /^gantry_limit_rejections_total\{limit="console_streams"\} [1-9]/m, 'the refusals are counted');
      // A stream's first event comes at once and names the model.
      open.pop()!.abort();
      const reader = await waitForStream(gantry.baseUrl, headers);
      const text = await readUntil(reader, 'event: stats');
      assert.match(text, /"model":"tiny-mlp"/);
      await context.close();
      const stopStarted = Date.now();
      // The streams are still open: shutdown ends them instead of waiting for them.
      assert.equal(await gantry.stop(), 0);
      assert.ok(Date.now() - stopStarted < 10_000, `stopping took ${Date.now() - stopStarted} ms with streams open`);
    } finally {
      for (const controller of open) controller.abort();
    }
  });
});

/** Opens a stream once one is free (an aborted one is let go when the server sees its socket close). */
async function waitForStream(baseUrl: string, headers: Record<string, string>): Promise<ReadableStreamDefaultReader<Uint8Array>> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const response = await fetch(`${baseUrl}/v1/console/live-stats`, { headers });
    if (response.status === 200 && response.body !== null) return response.body.getReader();
    await response.body?.cancel();
    if (Date.now() > deadline) throw new Error(`no stream was freed: ${response.status}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function readUntil(reader: ReadableStreamDefaultReader<Uint8Array>, marker: string): Promise<string> {
  const decoder = new TextDecoder();
  let text = '';
  while (!text.includes(marker) || !text.slice(text.indexOf(marker)).includes('\n\n')) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  return text;
}
