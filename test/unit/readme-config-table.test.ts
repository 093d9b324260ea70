/**
 * The README's "Configuration" section (its tables: the main one and "Limits") names every environment variable
 * of the config schema (src/config.ts), and names no variable the schema lacks: a variable added without a row,
 * or a row left after its variable went, fails here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { configVariableNames } from '../../src/config.js';
import { repositoryRoot } from '../helpers/gantry-process.js';

/** The variables in the first column of every table row of the README's "## Configuration" section. */
function readmeConfigVariables(readme: string): string[] {
  const start = readme.indexOf('\n## Configuration\n');
  assert.ok(start >= 0, 'README.md has a "## Configuration" section');
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const names: string[] = [];
  for (const line of section.split('\n')) {
    if (!line.startsWith('|')) continue;
    const firstCell = line.split('|')[1] ?? '';
    // A cell may name two variables that share a row (`A` / `B`); it may also name a model setting (`maxQueueSize`).
    for (const match of firstCell.matchAll(/`([A-Z][A-Z0-9_]*)`/g)) names.push(match[1]!);
  }
  return names;
}

const readme = readFileSync(path.join(repositoryRoot, 'README.md'), 'utf8');
const documented = new Set(readmeConfigVariables(readme));

test('every variable of the config schema has a row in the README', () => {
  const missing = configVariableNames.filter((name) => !documented.has(name));
  assert.deepEqual(missing, [], 'add a row to the README configuration table for each');
});

test('every variable the README tables name is in the config schema', () => {
  const schema = new Set(configVariableNames);
  const stale = [...documented].filter((name) => !schema.has(name));
  assert.deepEqual(stale, [], 'these rows name variables Gantry does not read');
});

test('the table reader finds rows, including a row naming two variables', () => {
  const names = readmeConfigVariables(
    'x\n## Configuration\n\n| variable | default |\n| --- | --- |\n| `PORT` | `8080` |\n| `A_B` / `C` | x |\n| `maxQueueSize` | 1 |\n## Next\n| `NOT_HERE` | |\n',
  );
  assert.deepEqual(names, ['PORT', 'A_B', 'C']);
  assert.ok(documented.size > 50, `the README's tables were read (${documented.size} variables)`);
});
