/**
 * `npm start` (scripts/start.mjs): runs the build as it is when it is up to date, builds first when a source is
 * newer than the build (or a source was deleted, or the console changed), refuses to start when that build fails
 * or cannot run (no TypeScript: an install without devDependencies). Run through real npm in a scratch tree whose
 * `build` script counts its runs and whose "gantry" prints the command line it got, so no compile is needed.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync, existsSync, renameSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repositoryRoot } from '../helpers/gantry-process.js';

const fakeBuild = `
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
if (existsSync('build-fails')) { console.error('fake build: failing as asked'); process.exit(3); }
const count = existsSync('builds.txt') ? Number(readFileSync('builds.txt', 'utf8')) : 0;
writeFileSync('builds.txt', String(count + 1));
mkdirSync('dist/src', { recursive: true });
writeFileSync('dist/src/cli.js', "console.log('gantry ran: ' + JSON.stringify(process.argv.slice(2)));\\n");
if (existsSync('console')) { mkdirSync('dist/console', { recursive: true }); writeFileSync('dist/console/index.html', '<html></html>'); }
`;

describe('npm start: build only when the sources changed', () => {
  let root: string;

  const builds = () => (existsSync(path.join(root, 'builds.txt')) ? Number(readFileSync(path.join(root, 'builds.txt'), 'utf8')) : 0);
  /** Sets a file's (or folder's) modification time `seconds` from now. */
  const age = (relative: string, seconds: number) => {
    const when = new Date(Date.now() + seconds * 1000);
    utimesSync(path.join(root, relative), when, when);
  };
  /** Everything the build reads is an hour old, what it wrote a minute old: up to date. */
  const settle = () => {
    for (const source of [
      'src',
      'src/model.ts',
      'src/nested',
      'src/nested/deep.ts',
      'tsconfig.json',
      'console',
      'console/main.ts',
      'scripts/build-console.mjs',
    ]) {
      if (existsSync(path.join(root, source))) age(source, -3600);
    }
    for (const output of ['dist/src/cli.js', 'dist/console/index.html']) if (existsSync(path.join(root, output))) age(output, -60);
  };
  const npmStart = (...args: string[]) => {
    const result = spawnSync('npm', ['start', '--silent', ...(args.length === 0 ? [] : ['--', ...args])], {
      cwd: root,
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' },
      timeout: 60_000,
    });
    return { status: result.status, output: `${result.stdout}${result.stderr}` };
  };

  before(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'gantry-start-'));
    mkdirSync(path.join(root, 'scripts'));
    for (const file of ['start.mjs', 'build-freshness.mjs']) copyFileSync(path.join(repositoryRoot, 'scripts', file), path.join(root, 'scripts', file));
    writeFileSync(path.join(root, 'scripts/build-console.mjs'), '// the console build (unused: build.mjs stands for the whole build)\n');
    writeFileSync(
      path.join(root, 'package.json'),
      JSON.stringify({ name: 'fake-gantry', private: true, type: 'module', scripts: { build: 'node build.mjs', start: 'node scripts/start.mjs' } }),
    );
    writeFileSync(path.join(root, 'build.mjs'), fakeBuild);
    writeFileSync(path.join(root, 'tsconfig.json'), '{}\n');
    mkdirSync(path.join(root, 'src/nested'), { recursive: true });
    writeFileSync(path.join(root, 'src/model.ts'), 'export const model = 1;\n');
    writeFileSync(path.join(root, 'src/nested/deep.ts'), 'export const deep = 1;\n');
    mkdirSync(path.join(root, 'console'));
    writeFileSync(path.join(root, 'console/main.ts'), 'export {};\n');
    // The launcher builds only where the compiler is installed.
    mkdirSync(path.join(root, 'node_modules/typescript'), { recursive: true });
  });
  after(() => {
    rmSync(root, { recursive: true, force: true });
  });

  test('no build yet: it builds, then runs `gantry start`', () => {
    const run = npmStart();
    assert.equal(run.status, 0, run.output);
    assert.equal(builds(), 1);
    assert.match(run.output, /building first \(dist\/src\/cli\.js is missing\)/);
    assert.match(run.output, /gantry ran: \["start"\]/);
  });

  test('an up-to-date build is run as it is: no build', () => {
    settle();
    const before = builds();
    for (let run = 0; run < 2; run++) {
      const started = npmStart();
      assert.equal(started.status, 0, started.output);
      assert.doesNotMatch(started.output, /building/);
      assert.match(started.output, /gantry ran: \["start"\]/);
    }
    assert.equal(builds(), before, 'no build ran');
  });

  test('the arguments after -- are the command', () => {
    settle();
    const run = npmStart('api');
    assert.equal(run.status, 0, run.output);
    assert.match(run.output, /gantry ran: \["api"\]/);
  });

  const changes: Array<[string, () => void]> = [
    ['a source edited', () => age('src/nested/deep.ts', 0)],
    ['tsconfig.json edited', () => age('tsconfig.json', 0)],
    ['a source deleted', () => rmSync(path.join(root, 'src/model.ts'))],
    ['a source added', () => writeFileSync(path.join(root, 'src/model.ts'), 'export const model = 2;\n')],
    ['a console source edited', () => age('console/main.ts', 0)],
    ['the console build script edited', () => age('scripts/build-console.mjs', 0)],
  ];
  for (const [change, make] of changes) {
    test(`stale after ${change}: it builds once, then runs`, () => {
      settle();
      make();
      const before = builds();
      const run = npmStart();
      assert.equal(run.status, 0, run.output);
      assert.equal(builds(), before + 1, run.output);
      assert.match(run.output, /building first/);
      assert.match(run.output, /gantry ran/);
      // And the next start is fast again.
      const next = npmStart();
      assert.doesNotMatch(next.output, /building/);
      assert.equal(builds(), before + 1);
    });
  }

  test('a failing build: gantry is not started, and npm start fails', () => {
    settle();
    age('src/model.ts', 0);
    writeFileSync(path.join(root, 'build-fails'), '');
    try {
      const run = npmStart();
      assert.notEqual(run.status, 0, run.output);
      assert.match(run.output, /the build failed .*not starting/);
      assert.doesNotMatch(run.output, /gantry ran/);
    } finally {
      rmSync(path.join(root, 'build-fails'));
    }
  });

  test('stale without TypeScript (no devDependencies): refused with what to do; up to date without it: runs', () => {
    settle();
    age('src/model.ts', 0);
    renameSync(path.join(root, 'node_modules/typescript'), path.join(root, 'node_modules/typescript-away'));
    try {
      const stale = npmStart();
      assert.notEqual(stale.status, 0, stale.output);
      assert.match(stale.output, /the build is out of date .* TypeScript is not installed/);
      assert.match(stale.output, /node dist\/src\/cli\.js start/);
      assert.doesNotMatch(stale.output, /gantry ran/);
      settle();
      const current = npmStart();
      assert.equal(current.status, 0, current.output);
      assert.match(current.output, /gantry ran: \["start"\]/);
    } finally {
      renameSync(path.join(root, 'node_modules/typescript-away'), path.join(root, 'node_modules/typescript'));
    }
  });
});
