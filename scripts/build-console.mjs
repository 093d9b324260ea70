// Builds the web console (console/) into dist/console: one minified ES module bundle and one stylesheet, each
// named by its content hash (so the API may let browsers cache them for good), their source maps, and an
// index.html naming them. `npm run build` runs it after tsc; it takes well under a second.
import * as esbuild from 'esbuild';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outputDirectory = path.join(root, 'dist/console');

const started = performance.now();
// Old bundles under other hashes would pile up otherwise.
await rm(outputDirectory, { recursive: true, force: true });
await mkdir(outputDirectory, { recursive: true });
const result = await esbuild.build({
  absWorkingDir: root,
  entryPoints: ['console/src/main.ts'],
  outdir: outputDirectory,
  entryNames: '[name]-[hash]',
  bundle: true,
  minify: true,
  sourcemap: 'linked',
  format: 'esm',
  platform: 'browser',
  target: ['es2022'],
  metafile: true,
  logLevel: 'warning',
  legalComments: 'linked',
});

const outputs = Object.keys(result.metafile.outputs).map((file) => path.basename(file));
const script = outputs.find((file) => file.endsWith('.js'));
const stylesheet = outputs.find((file) => file.endsWith('.css'));
if (script === undefined || stylesheet === undefined) throw new Error(`the console build made no script or stylesheet: ${outputs.join(', ')}`);
const template = await readFile(path.join(root, 'console/index.html'), 'utf8');
const page = template.replace('%STYLESHEET%', `./${stylesheet}`).replace('%SCRIPT%', `./${script}`);
if (page.includes('%')) throw new Error('console/index.html has a placeholder the build does not fill');
await writeFile(path.join(outputDirectory, 'index.html'), page);
console.log(`console: ${outputs.length + 1} files in dist/console (${Math.round(performance.now() - started)} ms)`);
