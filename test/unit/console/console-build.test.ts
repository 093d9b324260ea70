/**
 * The console's sources type-check against the browser's types (esbuild bundles without checking types), and the
 * build in dist/console is what the API serves: an index.html naming hashed bundles that exist, each with its
 * source map, and no inline script or style (the CSP forbids them).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { repositoryRoot } from '../../helpers/gantry-process.js';

const run = promisify(execFile);
const built = path.join(repositoryRoot, 'dist/console');

test('console/ type-checks with its own tsconfig (DOM types, no Node types)', { timeout: 120_000 }, async () => {
  const tsc = path.join(repositoryRoot, 'node_modules/typescript/bin/tsc');
  const result = await run(process.execPath, [tsc, '-p', path.join(repositoryRoot, 'console/tsconfig.json')], { cwd: repositoryRoot }).catch(
    (error: { stdout?: string; stderr?: string }) => error,
  );
  assert.equal(`${result.stdout ?? ''}${result.stderr ?? ''}`.trim(), '', 'tsc -p console/tsconfig.json reported errors');
});

test('dist/console: index.html names the hashed bundles, which exist with their source maps; nothing inline', async () => {
  assert.ok(existsSync(path.join(built, 'index.html')), 'dist/console is not built: npm run build');
  const html = await readFile(path.join(built, 'index.html'), 'utf8');
  const script = /<script type="module" src="\.\/(main-[A-Z0-9]{8}\.js)"><\/script>/.exec(html)?.[1];
  const stylesheet = /<link rel="stylesheet" href="\.\/(main-[A-Z0-9]{8}\.css)" \/>/.exec(html)?.[1];
  assert.ok(script !== undefined && stylesheet !== undefined, html);
  for (const file of [script, stylesheet]) {
    assert.ok(existsSync(path.join(built, file)), file);
    assert.ok(existsSync(path.join(built, `${file}.map`)), `${file}.map`);
  }
  assert.equal(html.match(/<script/g)?.length, 1, 'one script, loaded from a file');
  assert.ok(!/<style|\sstyle=|\son[a-z]+=/i.test(html), 'no inline style or event handler');
  // No CDN at run time: the page loads nothing from another origin, and neither does the bundle.
  assert.ok(!/https?:\/\//.test(html), 'index.html names another origin');
  const bundle = await readFile(path.join(built, script), 'utf8');
  assert.ok(!/import\(\s*["'`]https?:|from\s*["']https?:/.test(bundle), 'the bundle imports from another origin');
});
