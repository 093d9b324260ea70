/**
 * The gantry binary's command line without a server: usage and exit code 2 for `gantry` alone and every misuse,
 * --version, help, and that a client command loads no server code (it must start fast and never open Redis).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { cliPath, repositoryRoot } from '../helpers/gantry-process.js';

/** Runs the built binary; REDIS_URL points nowhere, so a command that wrongly started a server would fail. */
function gantry(...args: string[]) {
  const result = spawnSync(process.execPath, [cliPath, ...args], {
    encoding: 'utf8',
    timeout: 20_000,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', REDIS_URL: 'redis://127.0.0.1:1', GANTRY_URL: 'http://127.0.0.1:1' },
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('gantry without a server', () => {
  test('gantry alone prints the usage on stderr and exits 2, starting nothing', () => {
    const { code, stdout, stderr } = gantry();
    assert.equal(code, 2);
    assert.equal(stdout, '');
    assert.match(stderr, /^Usage: gantry <command> \[options\]/);
    for (const word of [
      'start',
      'api',
      'worker',
      'models <command>',
      'infer',
      'keys <command>',
      'tenants <command>',
      'usage',
      'jobs <command>',
      'batches <command>',
      '--version',
    ])
      assert.ok(stderr.includes(`  ${word}`), `usage lists ${word}`);
    assert.match(stderr, /Exit codes: 0 ok, 1 server or network failure, 2 usage error, 3 not found/);
  });

  test('--version prints the package version', () => {
    const version = (JSON.parse(readFileSync(path.join(repositoryRoot, 'package.json'), 'utf8')) as { version: string }).version;
    for (const flag of ['--version', '-V']) {
      const { code, stdout } = gantry(flag);
      assert.equal(code, 0);
      assert.equal(stdout, `gantry ${version}\n`);
    }
  });

  test('help: the whole usage, a group, a command (stdout, exit 0)', () => {
    assert.match(gantry('--help').stdout, /^Usage: gantry <command>/);
    const group = gantry('models', '--help');
    assert.equal(group.code, 0);
    assert.match(group.stdout, /Usage: gantry models <command>[\s\S]*push FILE \[--name NAME\][\s\S]*\n {2}ls\n[\s\S]*show NAME[\s\S]*rm NAME/);
    const command = gantry('help', 'models', 'push');
    assert.equal(command.code, 0);
    assert.match(command.stdout, /Usage: gantry models push FILE[\s\S]*--no-wait[\s\S]*--url URL[\s\S]*Exit codes/);
    assert.match(gantry('infer', '--help').stdout, /--input NAME=@FILE[\s\S]*\.npy[\s\S]*\.png/);
    assert.match(gantry('export', '--help').stdout, /Usage: gantry export --out FILE/);
  });

  test('misuse exits 2 with what is wrong and the usage', () => {
    const unknown = gantry('serve');
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /^Unknown command 'serve'\.\n\nUsage: gantry <command>/);

    const groupAlone = gantry('models');
    assert.equal(groupAlone.code, 2);
    assert.match(groupAlone.stderr, /^'gantry models' needs a command\.\n\nUsage: gantry models <command>/);

    const unknownSub = gantry('keys', 'make');
    assert.equal(unknownSub.code, 2);
    assert.match(unknownSub.stderr, /Unknown command 'gantry keys make'/);

    const badOption = gantry('models', 'ls', '--colour');
    assert.equal(badOption.code, 2);
    assert.match(badOption.stderr, /error: Unknown option '--colour'[\s\S]*Usage: gantry models ls/);

    const missing = gantry('models', 'push');
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /'gantry models push' needs 1 argument/);

    const extra = gantry('models', 'ls', 'extra');
    assert.equal(extra.code, 2);
    assert.match(extra.stderr, /takes no arguments; unexpected 'extra'/);

    const noInput = gantry('infer', 'tiny-mlp');
    assert.equal(noInput.code, 2);
    assert.match(noInput.stderr, /Give at least one --input/);

    const missingFile = gantry('infer', 'tiny-mlp', '--input', 'input=@/nonexistent/x.npy');
    assert.equal(missingFile.code, 2);
    assert.match(missingFile.stderr, /--input input: cannot read '\/nonexistent\/x\.npy' \(ENOENT\)/);

    const badUrl = gantry('models', 'ls', '--url', 'not a url');
    assert.equal(badUrl.code, 2);
    assert.match(badUrl.stderr, /--url\/GANTRY_URL: The Gantry URL 'not a url' is not an absolute URL/);

    const badTimeout = gantry('models', 'ls', '--timeout', 'soon');
    assert.equal(badTimeout.code, 2);
    assert.match(badTimeout.stderr, /--timeout takes milliseconds/);
  });

  test('a server that cannot be reached is exit 1, with the address in the message', () => {
    const { code, stderr } = gantry('models', 'ls');
    assert.equal(code, 1);
    assert.match(stderr, /error: Could not reach Gantry at http:\/\/127\.0\.0\.1:1 .*\(UNAVAILABLE\)/);
  });
});

/** Package names the compiled module `file` imports statically (dynamic `import()` excluded), following local files. */
function staticPackages(file: string, seen = new Set<string>(), found = new Set<string>()): Set<string> {
  if (seen.has(file)) return found;
  seen.add(file);
  const source = readFileSync(file, 'utf8');
  for (const match of source.matchAll(/^\s*(?:import|export)\s[^;]*?\bfrom\s*['"]([^'"]+)['"]|^\s*import\s*['"]([^'"]+)['"]/gm)) {
    const specifier = (match[1] ?? match[2])!;
    if (specifier.startsWith('.')) {
      const target = path.resolve(path.dirname(file), specifier);
      if (existsSync(target)) staticPackages(target, seen, found);
    } else if (!specifier.startsWith('node:')) found.add(specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]!);
  }
  return found;
}

test('the client commands load no server code: the server roles are imported only when one runs', () => {
  const packages = staticPackages(cliPath);
  for (const server of ['fastify', 'bullmq', 'ioredis', 'onnxruntime-node', '@grpc/grpc-js', 'pino'])
    assert.ok(!packages.has(server), `dist/src/cli.js reaches ${server} by static imports: ${[...packages].join(', ')}`);
  assert.ok(packages.has('pngjs'), 'the walk follows local imports (the PNG reader is reached)');
});
