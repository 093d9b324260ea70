/**
 * The built server runs without devDependencies (`npm ci --omit=dev`, the Docker image's `npm prune --omit=dev`):
 * every package the code under src/ imports at run time is a dependency in package.json. Type-only imports are
 * erased by the compiler and may name anything. scripts/start.mjs (what `npm start` runs) is held to the same rule.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { builtinModules } from 'node:module';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { repositoryRoot } from '../helpers/gantry-process.js';

const packageJson = JSON.parse(readFileSync(path.join(repositoryRoot, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
const builtins = new Set(builtinModules);

function sourceFiles(directory: string): string[] {
  return readdirSync(directory, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(directory, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return /\.(ts|mjs)$/.test(entry.name) && !entry.name.endsWith('.d.ts') ? [full] : [];
  });
}

/** The packages a file imports at run time: `import … from 'x'`, `export … from 'x'`, `import 'x'`, `import('x')`. */
function runtimeImports(text: string): string[] {
  const found: string[] = [];
  const statement = /^\s*(import|export)\s+(type\s+)?[^'";]*?\bfrom\s+'([^']+)'|^\s*import\s+'([^']+)'|\bimport\(\s*'([^']+)'\s*\)/gm;
  for (const match of text.matchAll(statement)) {
    if (match[2] !== undefined) continue;
    const specifier = match[3] ?? match[4] ?? match[5]!;
    if (specifier.startsWith('.') || specifier.startsWith('node:') || specifier.startsWith('/')) continue;
    const parts = specifier.split('/');
    const name = specifier.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
    if (!builtins.has(name)) found.push(name);
  }
  return found;
}

test('src/ and scripts/start.mjs import only dependencies at run time, never a devDependency', () => {
  const files = [
    ...sourceFiles(path.join(repositoryRoot, 'src')),
    path.join(repositoryRoot, 'scripts/start.mjs'),
    path.join(repositoryRoot, 'scripts/build-freshness.mjs'),
  ];
  const outside: string[] = [];
  let imports = 0;
  for (const file of files) {
    for (const name of runtimeImports(readFileSync(file, 'utf8'))) {
      imports++;
      if (packageJson.dependencies[name] === undefined) outside.push(`${path.relative(repositoryRoot, file)}: ${name}`);
    }
  }
  assert.deepEqual(outside, [], 'move these to dependencies, or import them only where devDependencies exist (test/, bench/, scripts/)');
  assert.ok(imports > 50, `imports were found (${imports})`);
});

test('the import reader skips type-only imports and relative paths, and names scoped packages whole', () => {
  const text = [
    "import { z } from 'zod';",
    "import type { Foo } from 'typescript';",
    "import fastifyCors from '@fastify/cors';",
    "import { x } from './local.js';",
    "import 'side-effect';",
    "const lazy = await import('lazy-package/sub');",
    "export { y } from 'reexported';",
    "import { readFile } from 'node:fs';",
  ].join('\n');
  assert.deepEqual(runtimeImports(text).sort(), ['@fastify/cors', 'lazy-package', 'reexported', 'side-effect', 'zod']);
});
