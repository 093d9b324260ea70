/**
 * /docs in headless Chromium (playwright-core with Debian's `chromium`), against a real `gantry start`: what a
 * user does with swagger-ui. Without a key the page shows no model; after Authorize it loads the document again
 * with the key and shows the "served models" operations. "Try it out" uploads a model through both documented
 * bodies (the raw file and multipart) and runs a per-model example, answered 200. Screenshots go to
 * test-artifacts/openapi/.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { access, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { fixturePath, repositoryRoot, startGantry, testAdminKey, type GantryProcess } from '../helpers/gantry-process.js';

const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const screenshots = path.join(repositoryRoot, 'test-artifacts/openapi');

/** The operation block of one path and method on the page. */
function operation(page: Page, method: string, urlPath: string): Locator {
  return page.locator(`.opblock-${method}:has([data-path="${urlPath}"])`);
}

/** Opens an operation, presses "Try it out", lets `fill` set it up, executes it, and returns the answer's status and body. */
async function tryItOut(block: Locator, fill: (block: Locator) => Promise<void>): Promise<{ status: number; body: string }> {
  // deepLinking reopens the operation last opened (its #fragment) after a reload: open it only when it is closed.
  if (!(await block.locator('button.try-out__btn').isVisible())) await block.locator('.opblock-summary').first().click();
  await block.locator('button.try-out__btn').click();
  await fill(block);
  await block.locator('button.execute').click();
  const status = block.locator('.live-responses-table tbody .response-col_status').first();
  await status.waitFor({ timeout: 30_000 });
  const body = await block
    .locator('.live-responses-table tbody .response-col_description .microlight, .live-responses-table tbody .response-col_description pre')
    .first()
    .innerText();
  return { status: Number((await status.innerText()).trim()), body };
}

async function authorize(page: Page, key: string): Promise<void> {
  await page.click('button.authorize');
  await page.locator('.auth-container input').first().fill(key);
  await page.locator('.auth-btn-wrapper button.authorize').first().click();
  await page.click('button.btn-done');
}

describe('/docs (swagger-ui) in headless Chromium', { timeout: 180_000 }, () => {
  let gantry: GantryProcess;
  let browser: Browser;
  let page: Page;

  before(async () => {
    await access(chromiumPath).catch(() => assert.fail(`this test needs Chromium at ${chromiumPath} (apt-get install chromium, or set CHROMIUM_PATH)`));
    await mkdir(screenshots, { recursive: true });
    gantry = await startGantry();
    browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  });
  after(async () => {
    await browser?.close();
    await gantry?.cleanup();
  });

  test('Try it out uploads through both bodies; after Authorize the served models appear and their example answers 200', async () => {
    await page.goto(`${gantry.baseUrl}/docs/`);
    await page.waitForSelector('.opblock');
    await authorize(page, testAdminKey);

    const upload = operation(page, 'post', '/v1/models/{model}/versions');
    const raw = await tryItOut(upload, async (block) => {
      await block.locator('input[placeholder="model"]').fill('ui-raw');
      assert.deepEqual(await block.locator('.opblock-section-request-body select').first().locator('option').allInnerTexts(), [
        'application/octet-stream',
        'multipart/form-data',
      ]);
      await block.locator('input[type=file]').setInputFiles(fixturePath('tiny-mlp.onnx'));
    });
    assert.equal(raw.status, 201, raw.body);
    assert.match(raw.body, /"state": "READY"/);
    await page.screenshot({ path: path.join(screenshots, 'upload-raw.png') });

    await page.goto(`${gantry.baseUrl}/docs/`);
    await page.waitForSelector('.opblock');
    await authorize(page, testAdminKey);
    const form = await tryItOut(operation(page, 'post', '/v1/models/{model}/versions'), async (block) => {
      await block.locator('input[placeholder="model"]').fill('ui-form');
      await block.locator('.opblock-section-request-body select').first().selectOption('multipart/form-data');
      await block.locator('input[type=file]').setInputFiles(fixturePath('multi-io.onnx'));
      // No warm-up sample: the empty text field is left out, not sent empty.
      await block.locator('.parameter__empty_value_toggle input').first().uncheck();
    });
    assert.equal(form.status, 201, form.body);
    await page.screenshot({ path: path.join(screenshots, 'upload-multipart.png') });

    // A fresh page knows no key: no model is named until Authorize loads the document again with one.
    await page.goto(`${gantry.baseUrl}/docs/`);
    await page.waitForSelector('.opblock');
    assert.equal(await page.locator('[data-path="/v2/models/ui-form/infer"]').count(), 0);
    await page.screenshot({ path: path.join(screenshots, 'anonymous.png') });
    await authorize(page, testAdminKey);
    await page.waitForSelector('[data-path="/v2/models/ui-form/infer"]');
    assert.equal(await page.locator('[data-path="/v2/models/ui-raw/infer"]').count(), 1);
    await page.screenshot({ path: path.join(screenshots, 'served-models.png') });

    const infer = await tryItOut(operation(page, 'post', '/v2/models/ui-form/infer'), async () => {});
    assert.equal(infer.status, 200, infer.body);
    assert.match(infer.body, /"model_name": "ui-form"/);
    assert.match(infer.body, /"name": "product"/);
    await page.screenshot({ path: path.join(screenshots, 'infer.png') });
  });
});
