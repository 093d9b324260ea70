/**
 * The documentation (README.md and docs/*.md) cites only files that are in the repository: every relative
 * Markdown link, every path under one of the repository's top folders (`src/api/app.ts`, `deploy/kubernetes/`),
 * and every bare document name (`DESIGN.md`) must exist. Outside the check on purpose: URLs, routes (`/v2/…`),
 * patterns (`*`, `<name>`, `{m}`, `…`), installed packages (`node_modules/…`), and a file the reader makes from
 * its committed `.example` (`deploy/kubernetes/secrets.env`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { repositoryRoot } from '../helpers/gantry-process.js';

/** The repository's top folders: a path starting with one of them is a claim that the file exists. */
const topFolders = ['src', 'docs', 'test', 'deploy', 'bench', 'scripts', 'support', 'examples', 'proto', 'models', 'dev', 'console', 'dist', 'shared'];

const linkPattern = /\]\(([^)\s]+)\)/g;
const pathPattern = new RegExp(`(?<![\\w/.:@~-])((?:${topFolders.join('|')})/[\\w./@{}*<>…~+-]*)`, 'g');
const documentNamePattern = /(?<![\w/.:@~-])([A-Za-z0-9_-]+\.md)(?![\w/])/g;

interface Reference {
  file: string;
  target: string;
  kind: 'link' | 'path' | 'document';
}

function isPattern(target: string): boolean {
  return /[*<>{}…]/.test(target);
}

/** Every file reference in one Markdown text. */
function referencesIn(file: string, text: string): Reference[] {
  const found: Reference[] = [];
  for (const match of text.matchAll(linkPattern)) {
    const target = match[1]!.split('#')[0]!;
    if (target === '' || /^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('/')) continue;
    found.push({ file, target, kind: 'link' });
  }
  for (const match of text.matchAll(pathPattern)) {
    // A sentence's full stop or a line number is not part of the path.
    const target = match[1]!.replace(/[.,:;)]+$/, '').replace(/:\d+$/, '');
    if (!isPattern(target)) found.push({ file, target, kind: 'path' });
  }
  for (const match of text.matchAll(documentNamePattern)) found.push({ file, target: match[1]!, kind: 'document' });
  return found;
}

/** Every Markdown document name in the repository (outside dependencies and build output). */
function documentNames(directory: string, names = new Set<string>()): Set<string> {
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name === 'dist' || entry.name.startsWith('.')) continue;
    const full = path.join(directory, entry.name);
    if (entry.isDirectory()) documentNames(full, names);
    else if (entry.name.endsWith('.md')) names.add(entry.name);
  }
  return names;
}

function exists(reference: Reference, documents: Set<string>): boolean {
  if (reference.kind === 'document') return documents.has(reference.target);
  const base = reference.kind === 'link' ? path.dirname(path.join(repositoryRoot, reference.file)) : repositoryRoot;
  const resolved = path.resolve(base, reference.target);
  if (!resolved.startsWith(repositoryRoot + path.sep) && resolved !== repositoryRoot) return false;
  return existsSync(resolved) || existsSync(`${resolved}.example`);
}

const documentationFiles = [
  'README.md',
  ...readdirSync(path.join(repositoryRoot, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => `docs/${name}`),
];

test('every file the documentation cites is in the repository', () => {
  const documents = documentNames(repositoryRoot);
  const missing: string[] = [];
  let checked = 0;
  for (const file of documentationFiles) {
    for (const reference of referencesIn(file, readFileSync(path.join(repositoryRoot, file), 'utf8'))) {
      checked++;
      if (!exists(reference, documents)) missing.push(`${file}: ${reference.kind} ${reference.target}`);
    }
  }
  assert.deepEqual(missing, [], 'cite a file of this repository, a URL, or nothing');
  assert.ok(checked > 100, `the references were found (${checked})`);
});

test('the reader finds links, paths and document names, and leaves URLs, routes and patterns alone', () => {
  const text = [
    'See [ops](operations.md#logs), [site](https://example.com/a.md), src/api/app.ts, `deploy/kubernetes/`.',
    'Ends a sentence with docs/gpu.md. A route /v2/models/m/infer, a pattern src/api/routes/*.ts, node_modules/x/y.js.',
    'The DESIGN.md and shared/reference/x.md.',
  ].join('\n');
  const found = referencesIn('docs/x.md', text).map((reference) => `${reference.kind} ${reference.target}`);
  assert.deepEqual(found.sort(), [
    'document DESIGN.md',
    'document operations.md',
    'link operations.md',
    'path deploy/kubernetes/',
    'path docs/gpu.md',
    'path shared/reference/x.md',
    'path src/api/app.ts',
  ]);
  const documents = new Set(['operations.md']);
  const verdicts = referencesIn('docs/x.md', text).map((reference) => `${reference.target}: ${exists(reference, documents)}`);
  assert.ok(verdicts.includes('DESIGN.md: false') && verdicts.includes('shared/reference/x.md: false'), verdicts.join('\n'));
  assert.ok(verdicts.includes('src/api/app.ts: true') && verdicts.includes('operations.md: true'), verdicts.join('\n'));
});
