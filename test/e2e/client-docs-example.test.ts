/**
 * docs/client.md's example runs as written: its first `js` block is saved inside the repository (so
 * `import 'gantry/client'` resolves to this package) and run by node against a real `gantry start`.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { repositoryRoot, startGantry, testAdminKey, type GantryProcess } from '../helpers/gantry-process.js';

const run = promisify(execFile);
let gantry: GantryProcess;
let scriptPath: string;

before(async () => {
  gantry = await startGantry();
  const documentation = await readFile(path.join(repositoryRoot, 'docs/client.md'), 'utf8');
  const example = /## Example[\s\S]*?```js\n([\s\S]*?)```/.exec(documentation)?.[1];
  assert.ok(example !== undefined, 'docs/client.md has no js block under "## Example"');
  scriptPath = path.join(repositoryRoot, 'dist', `client-docs-example-${randomBytes(4).toString('hex')}.mjs`);
  await writeFile(scriptPath, example);
});

after(async () => {
  if (scriptPath !== undefined) await rm(scriptPath, { force: true });
  await gantry?.cleanup();
});

test('the docs/client.md example pushes, infers and shows a refusal with its request id', { timeout: 60_000 }, async () => {
  const { stdout, stderr } = await run(process.execPath, [scriptPath], {
    cwd: repositoryRoot,
    env: { PATH: process.env.PATH ?? '', GANTRY_URL: gantry.baseUrl, GANTRY_KEY: testAdminKey },
  });
  assert.match(stderr, /sent (\d+) of \1 bytes/, 'progress reached the whole file');
  assert.match(stdout, /^tiny-mlp version 1: READY \[\{"name":"input","datatype":"FP32","shape":\[-1,256\]\}\]$/m);
  assert.match(stdout, /^FP32 \[1,16\] \[-?\d/m);
  assert.match(stdout, /^refused: 400 INVALID_ARGUMENT \(request [0-9a-f-]{36}\): .*wrong/m);
});
