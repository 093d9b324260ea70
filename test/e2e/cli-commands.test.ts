/**
 * Every client command of the gantry CLI, run as the real built binary (`node dist/src/cli.js …`, a child process)
 * against a real `gantry start` (API + worker, real Redis and onnxruntime): models push (progress on a pipe and on
 * a pseudo-terminal, the READY signature), ls, show, rm; infer from .npy, JSON, inline JSON and PNG inputs, outputs
 * printed, as JSON and written to .npy; keys, tenants, usage, jobs and batches; and the exit codes that tell a
 * missing model (3) from a refused request (4), a bad key (5) and an unreachable server (1). Answers are compared
 * with what the HTTP API itself answers for the same request.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import { readNpy, writeNpy } from '../../src/cli/npy.js';
import { cliPath, fixturePath, inferJson, repositoryRoot, startGantry, testAdminKey, type GantryProcess } from '../helpers/gantry-process.js';
import { randomFloats } from './support.js';

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** JSON a command printed with --json (the CLI prints one document). */
function parsed<T = Record<string, unknown>>(result: CliResult): T {
  assert.equal(result.code, 0, `exit ${result.code}: ${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}

describe('gantry CLI against a real server', () => {
  let gantry: GantryProcess;
  let directory: string;
  /** Runs the binary with GANTRY_URL and GANTRY_KEY (the admin key unless `key` says otherwise). */
  let cli: (args: string[], options?: { key?: string | null }) => Promise<CliResult>;

  before(async () => {
    gantry = await startGantry();
    directory = await mkdtemp(path.join(os.tmpdir(), 'gantry-cli-'));
    cli = (args, options = {}) =>
      new Promise((resolve) => {
        const key = options.key === undefined ? testAdminKey : options.key;
        execFile(
          process.execPath,
          [cliPath, ...args],
          {
            cwd: directory,
            timeout: 60_000,
            env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', GANTRY_URL: gantry.baseUrl, ...(key === null ? {} : { GANTRY_KEY: key }) },
          },
          (error, stdout, stderr) => resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stdout, stderr }),
        );
      });
  });

  after(async () => {
    await gantry?.cleanup();
    if (directory !== undefined) await rm(directory, { recursive: true, force: true });
  });

  describe('models', () => {
    test('push shows progress lines on a pipe and prints the READY signature', async () => {
      const result = await cli(['models', 'push', path.join(repositoryRoot, 'models/tiny-mlp.onnx')]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, /^Uploading tiny-mlp\.onnx: 100% \(70\.\d KB\/70\.\d KB, [\d.]+ [KMG]?B\/s\)$/m);
      assert.ok(!result.stderr.includes('\r'), 'no terminal redraws on a pipe');
      assert.match(result.stderr, /waiting for tiny-mlp to load \(READY\)/);
      assert.match(result.stdout, /^tiny-mlp version 1 {2}READY\n/);
      assert.match(result.stdout, /warm-up ok/);
      assert.match(
        result.stdout,
        /inputs:\n {2}NAME +DATATYPE +SHAPE\n {2}input +FP32 +\[-1,256\]\noutputs:\n {2}NAME +DATATYPE +SHAPE\n {2}output +FP32 +\[-1,16\]\n$/,
      );
    });

    test('push of a large file on a pipe: a line at each 10%, with rate and ETA; an invalid model is refused (4)', async () => {
      const junk = path.join(directory, 'junk.onnx');
      await writeFile(junk, randomBytes(6 * 1024 * 1024));
      const result = await cli(['models', 'push', junk]);
      assert.equal(result.code, 4, `${result.stdout}\n${result.stderr}`);
      const percentages = [...result.stderr.matchAll(/^Uploading junk\.onnx: (\d+)% \(/gm)].map((match) => Number(match[1]));
      assert.ok(percentages.length >= 5 && percentages.at(-1) === 100, `progress lines: ${percentages.join(', ')}`);
      assert.deepEqual(
        [...percentages].sort((a, b) => a - b),
        percentages,
        'progress only goes up',
      );
      assert.match(result.stderr, /ETA \d+s\)/);
      assert.match(result.stderr, /error: .*\(HTTP 4\d\d [A-Z_]+, requestId [\w-]+\)/);
    });

    const haveScript = spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;
    test('push on a terminal redraws one bar in place', { skip: haveScript ? false : 'no script(1) to make a pseudo-terminal' }, async () => {
      const command = [process.execPath, cliPath, 'models', 'push', fixturePath('multi-io.onnx'), '--name', 'tty-model'].map((word) => `'${word}'`).join(' ');
      const result = spawnSync('script', ['-qec', command, '/dev/null'], {
        encoding: 'utf8',
        timeout: 60_000,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', GANTRY_URL: gantry.baseUrl, GANTRY_KEY: testAdminKey, TERM: 'xterm' },
      });
      assert.equal(result.status, 0, result.stdout);
      // Each draw goes back to the line's start (\r) and clears it (ESC [2K) before the bar.
      assert.ok(result.stdout.includes('\r\x1b[2KUploading multi-io.onnx ['), result.stdout);
      assert.match(result.stdout, /Uploading multi-io\.onnx \[█+\] 100% {2}[\d.]+ [KM]?B\/[\d.]+ [KM]?B/);
      assert.match(result.stdout, /tty-model version 1 {2}READY/);
    });

    test('the same file again answers its version; --no-wait --duplicate makes another, --json for scripts', async () => {
      const again = await cli(['models', 'push', path.join(repositoryRoot, 'models/tiny-mlp.onnx')]);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, /^The file is already version 1 of tiny-mlp: no version was made/);
      const duplicate = parsed<{ version: string; state: string; status: number; name: string }>(
        await cli(['models', 'push', fixturePath('tiny-mlp.onnx'), '--name', 'tiny-mlp', '--duplicate', '--no-wait', '--json', '--quiet']),
      );
      assert.equal(duplicate.name, 'tiny-mlp');
      assert.equal(duplicate.version, '2');
      assert.equal(duplicate.status, 202);
      assert.equal(duplicate.state, 'LOADING');
    });

    test('ls and show, for people and as JSON', async () => {
      const table = await cli(['models', 'ls']);
      assert.equal(table.code, 0, table.stderr);
      assert.match(table.stdout, /^MODEL +VERSION +STATE +SIZE +CREATED\n/);
      assert.match(table.stdout, /^tiny-mlp +1 +READY +70\.\d KB +\d{4}-/m);
      const listed = parsed<{ models: Array<{ name: string; versions: Array<{ version: string }> }> }>(await cli(['models', 'ls', '--json']));
      assert.deepEqual(
        listed.models.find((model) => model.name === 'tiny-mlp')?.versions.map((version) => version.version),
        ['1', '2'],
      );
      const shown = await cli(['models', 'show', 'tiny-mlp']);
      assert.equal(shown.code, 0, shown.stderr);
      assert.match(shown.stdout, /tiny-mlp version 1 {2}READY[\s\S]*tiny-mlp version 2/);
      const one = parsed<{ version: string; inputs: unknown }>(await cli(['models', 'show', 'tiny-mlp', '--version', '1', '--json']));
      assert.equal(one.version, '1');
      assert.deepEqual(one.inputs, [{ name: 'input', datatype: 'FP32', shape: [-1, 256] }]);
      const missing = await cli(['models', 'show', 'no-such-model']);
      assert.equal(missing.code, 3);
      assert.match(missing.stderr, /error: .*no-such-model.* \(HTTP 404 NOT_FOUND, requestId /);
    });
  });

  describe('infer', () => {
    const input = randomFloats(17, 2 * 256);
    let expected: number[];

    before(async () => {
      await writeFile(path.join(directory, 'x.npy'), writeNpy({ datatype: 'FP32', shape: [2, 256], data: new Uint8Array(new Float32Array(input).buffer) }));
      const reference = await inferJson(gantry.baseUrl, 'tiny-mlp', { inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 256], data: input }] }, '1');
      assert.equal(reference.status, 200);
      expected = (reference.body as { outputs: Array<{ data: number[] }> }).outputs[0]!.data;
    });

    test('gantry infer tiny-mlp --input input=@x.npy prints the outputs', async () => {
      const result = await cli(['infer', 'tiny-mlp', '--version', '1', '--input', 'input=@x.npy']);
      assert.equal(result.code, 0, result.stderr);
      const [header, shapeLine, ...rows] = result.stdout.trimEnd().split('\n');
      assert.equal(header, 'model tiny-mlp version 1');
      assert.equal(shapeLine, 'output  FP32  [2,16]');
      assert.equal(rows.length, 2, 'one printed row per batch entry');
      const printed = rows
        .join(' ')
        .match(/-?\d+(\.\d+)?(e-?\d+)?/g)!
        .map(Number);
      assert.equal(printed.length, 32);
      printed.forEach((value, index) => assert.ok(Math.abs(value - expected[index]!) <= Math.abs(expected[index]!) * 1e-5 + 1e-9, `value ${index}`));
    });

    test('--json prints the OIP answer; --output writes an output to .npy; --binary sends the binary extension', async () => {
      const answer = parsed<{ model_name: string; outputs: Array<{ name: string; datatype: string; shape: number[]; data: number[] }> }>(
        await cli(['infer', 'tiny-mlp', '--version', '1', '--input', 'input=@x.npy', '--json', '--binary']),
      );
      assert.equal(answer.model_name, 'tiny-mlp');
      assert.deepEqual(answer.outputs[0]!.shape, [2, 16]);
      assert.deepEqual(answer.outputs[0]!.data, expected);

      const written = await cli(['infer', 'tiny-mlp', '--version', '1', '-i', 'input=@x.npy', '--output', 'output=@y.npy']);
      assert.equal(written.code, 0, written.stderr);
      assert.match(written.stderr, /^wrote output \(FP32 \[2,16\]\) to y\.npy$/m);
      assert.doesNotMatch(written.stdout, /output {2}FP32/, 'a written output is not printed as well');
      const array = readNpy(await readFile(path.join(directory, 'y.npy')));
      assert.deepEqual(array.shape, [2, 16]);
      assert.deepEqual([...new Float32Array(array.data.buffer, 0, 32)], expected);
    });

    test('JSON file, inline JSON and a big-endian .npy give the same answer', async () => {
      await writeFile(path.join(directory, 'x.json'), JSON.stringify([input.slice(0, 256), input.slice(256)]));
      const fromJson = parsed<{ outputs: Array<{ data: number[] }> }>(await cli(['infer', 'tiny-mlp', '--version', '1', '--input', 'input=@x.json', '--json']));
      assert.deepEqual(fromJson.outputs[0]!.data, expected);
      const inline = parsed<{ outputs: Array<{ data: number[] }> }>(
        await cli(['infer', 'tiny-mlp', '--version', '1', '--input', `input=${JSON.stringify({ data: input, shape: [2, 256] })}`, '--json']),
      );
      assert.deepEqual(inline.outputs[0]!.data, expected);
      const bigEndian = Buffer.from(new Float32Array(input).buffer);
      for (let offset = 0; offset < bigEndian.length; offset += 4) bigEndian.subarray(offset, offset + 4).reverse();
      const littleFile = writeNpy({ datatype: 'FP32', shape: [2, 256], data: new Uint8Array(0) });
      const header = littleFile.toString('latin1').replace("'<f4'", "'>f4'");
      await writeFile(path.join(directory, 'x-be.npy'), Buffer.concat([Buffer.from(header, 'latin1'), bigEndian]));
      const fromBigEndian = parsed<{ outputs: Array<{ data: number[] }> }>(
        await cli(['infer', 'tiny-mlp', '--version', '1', '--input', 'input=@x-be.npy', '--json']),
      );
      assert.deepEqual(fromBigEndian.outputs[0]!.data, expected);
    });

    test('a PNG fills an image input as the model declares it (grey [H,W] UINT8 here; FP32 scaled to 0..1)', async () => {
      const png = new PNG({ width: 3, height: 2 });
      for (let pixel = 0; pixel < 6; pixel++) png.data.set([40 * pixel, 10 * pixel, 5 * pixel, 255], pixel * 4);
      await writeFile(path.join(directory, 'image.png'), PNG.sync.write(png));
      const luma = Array.from({ length: 6 }, (_, pixel) => Math.round(0.299 * 40 * pixel + 0.587 * 10 * pixel + 0.114 * 5 * pixel));
      for (const [model, datatype] of [
        ['identity-uint8', 'UINT8'],
        ['identity-float', 'FP32'],
      ] as const) {
        const pushed = await cli(['models', 'push', fixturePath(`${model}.onnx`), '--quiet']);
        assert.equal(pushed.code, 0, pushed.stderr);
        const answer = parsed<{ outputs: Array<{ datatype: string; shape: number[]; data: number[] }> }>(
          await cli(['infer', model, '--input', 'input=@image.png', '--json']),
        );
        assert.equal(answer.outputs[0]!.datatype, datatype);
        assert.deepEqual(answer.outputs[0]!.shape, [2, 3]);
        const wanted = datatype === 'UINT8' ? luma : luma.map((value) => Math.fround(value / 255));
        assert.deepEqual(answer.outputs[0]!.data, wanted, model);
      }
    });

    test('exit codes: unknown model 3, a refused input 4, a bad key 5, a bad input file 2, an unreachable server 1', async () => {
      const unknown = await cli(['infer', 'no-such-model', '--input', 'input=@x.npy']);
      assert.equal(unknown.code, 3, unknown.stderr);
      const refused = await cli(['infer', 'tiny-mlp', '--input', 'input=[[1,2,3]]']);
      assert.equal(refused.code, 4, refused.stderr);
      assert.match(refused.stderr, /error: Input 'input': dimension 1 must be 256.*\(HTTP 400 INVALID_ARGUMENT, requestId [\w-]+\)/);
      const noKey = await cli(['infer', 'tiny-mlp', '--input', 'input=@x.npy'], { key: null });
      assert.equal(noKey.code, 5, noKey.stderr);
      const wrongKey = await cli(['infer', 'tiny-mlp', '--input', 'input=@x.npy', '--key', 'gk_nope_nope']);
      assert.equal(wrongKey.code, 5, wrongKey.stderr);
      assert.doesNotMatch(wrongKey.stderr, /gk_nope_nope/, 'the key is never printed back');
      await writeFile(path.join(directory, 'bad.npy'), 'not numpy');
      const badFile = await cli(['infer', 'tiny-mlp', '--input', 'input=@bad.npy']);
      assert.equal(badFile.code, 2);
      assert.match(badFile.stderr, /--input input=@bad\.npy: Not a \.npy file/);
      const outOfRange = await cli(['infer', 'identity-uint8', '--input', 'input=[[256]]']);
      assert.equal(outOfRange.code, 2, 'refused before sending: the model declares UINT8');
      const unreachable = await cli(['models', 'ls', '--url', 'http://127.0.0.1:1']);
      assert.equal(unreachable.code, 1);
    });
  });

  describe('keys and tenants', () => {
    test('tenants create, ls, show, disable, enable, rm', async () => {
      const created = parsed<{ id: string; name: string; disabled: boolean }>(await cli(['tenants', 'create', 'cli-acme', '--name', 'Acme', '--json']));
      assert.deepEqual([created.id, created.name, created.disabled], ['cli-acme', 'Acme', false]);
      const again = await cli(['tenants', 'create', 'cli-acme']);
      assert.equal(again.code, 4, 'an existing tenant is a conflict');
      const listed = await cli(['tenants', 'ls']);
      assert.match(listed.stdout, /^ID +NAME +DISABLED +CREATED\n/);
      assert.match(listed.stdout, /^cli-acme +Acme +false /m);
      assert.match((await cli(['tenants', 'disable', 'cli-acme'])).stdout, /^disabled: true$/m);
      assert.match((await cli(['tenants', 'enable', 'cli-acme'])).stdout, /^disabled: false$/m);
      assert.match((await cli(['tenants', 'show', 'cli-acme'])).stdout, /^id: +cli-acme\nname: +Acme\n/);
      const removed = await cli(['tenants', 'rm', 'cli-acme']);
      assert.equal(removed.code, 0, removed.stderr);
      assert.equal((await cli(['tenants', 'show', 'cli-acme'])).code, 3);
    });

    test('keys create prints the key once; ls and show never do; a revoked key is refused (5)', async () => {
      const created = await cli(['keys', 'create', '--name', 'cli-test', '--scope', 'infer', '--scope', 'models:read']);
      assert.equal(created.code, 0, created.stderr);
      const key = /^key: +(gk_\S+)$/m.exec(created.stdout)?.[1];
      const id = /^id: +(\S+)$/m.exec(created.stdout)?.[1];
      assert.ok(key !== undefined && id !== undefined, created.stdout);
      assert.match(created.stderr, /not shown again/);

      const inferred = await cli(['infer', 'tiny-mlp', '--version', '1', '--input', 'input=@x.npy', '--json'], { key });
      assert.equal(inferred.code, 0, `the new key infers: ${inferred.stderr}`);
      const notAllowed = await cli(['models', 'push', fixturePath('scalar.onnx'), '--quiet'], { key });
      assert.equal(notAllowed.code, 5, 'a key without models:write may not push');

      const listed = await cli(['keys', 'ls']);
      assert.match(listed.stdout, new RegExp(`^${id} +cli-test +default +active +infer,models:read`, 'm'));
      assert.ok(!listed.stdout.includes(key!) && !(await cli(['keys', 'show', id!, '--json'])).stdout.includes(key!), 'the secret is never listed');
      const revoked = parsed<{ status: string }>(await cli(['keys', 'revoke', id!, '--json']));
      assert.equal(revoked.status, 'revoked');
      assert.equal((await cli(['models', 'ls'], { key })).code, 5);
      assert.equal((await cli(['keys', 'show', 'nokey123'])).code, 3);
      const noScope = await cli(['keys', 'create', '--name', 'x']);
      assert.equal(noScope.code, 2);
      assert.match(noScope.stderr, /--scope is required/);
    });
  });

  describe('usage, jobs and batches', () => {
    test('usage: a table, JSON per model, and the CSV', async () => {
      const table = await cli(['usage']);
      assert.equal(table.code, 0, table.stderr);
      assert.match(table.stdout, /^Usage from \S+ to \S+\nTENANT +REQUESTS +ROWS +COMPUTE_S +IN +OUT\ndefault +\d+ /);
      const report = parsed<{ usage: Array<{ model?: string; requests: number }> }>(await cli(['usage', '--group-by', 'model', '--json']));
      assert.ok((report.usage.find((row) => row.model === 'tiny-mlp')?.requests ?? 0) > 0, JSON.stringify(report.usage));
      const csv = await cli(['usage', '--csv']);
      assert.match(csv.stdout, /^tenant,requests,/);
      assert.equal((await cli(['usage', '--group-by', 'colour'])).code, 2);
    });

    test('jobs create --wait prints the result; create, show, ls, result, cancel', async () => {
      const waited = await cli(['jobs', 'create', 'tiny-mlp', '--version', '1', '--input', 'input=@x.npy', '--wait']);
      assert.equal(waited.code, 0, waited.stderr);
      assert.match(waited.stdout, /^model tiny-mlp version 1\noutput {2}FP32 {2}\[2,16\]\n/);

      const job = parsed<{ id: string; state: string }>(await cli(['jobs', 'create', 'tiny-mlp', '--input', 'input=@x.npy', '--json']));
      assert.ok(['queued', 'running', 'succeeded'].includes(job.state));
      const finished = await cli(['jobs', 'show', job.id, '--wait', '--json']);
      assert.equal(parsed<{ model_name: string }>(finished).model_name, 'tiny-mlp');
      assert.match((await cli(['jobs', 'show', job.id])).stdout, /^state: +succeeded$/m);
      assert.match((await cli(['jobs', 'ls'])).stdout, new RegExp(`^${job.id} +tiny-mlp +\\d+ +succeeded`, 'm'));
      const result = await cli(['jobs', 'result', job.id, '--output', 'output=@job.npy']);
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(readNpy(await readFile(path.join(directory, 'job.npy'))).shape, [2, 16]);
      const cancelFinished = await cli(['jobs', 'cancel', job.id]);
      assert.equal(cancelFinished.code, 4, 'a finished job cannot be cancelled (409)');
      assert.equal((await cli(['jobs', 'show', 'nojob'])).code, 3);
    });

    test('batches submit shows progress until done; ls, show, wait, results, cancel', async () => {
      const lines = Array.from({ length: 40 }, (_, index) =>
        JSON.stringify({ id: `line-${index}`, inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 256], data: randomFloats(100 + index, 256) }] }),
      );
      await writeFile(path.join(directory, 'batch.jsonl'), `${lines.join('\n')}\n`);
      const submitted = await cli(['batches', 'submit', 'tiny-mlp', 'batch.jsonl']);
      assert.equal(submitted.code, 0, submitted.stderr);
      assert.match(submitted.stderr, /^Uploading batch\.jsonl: 100% \([\d.]+ KB\/[\d.]+ KB, /m);
      assert.match(submitted.stderr, /^Batch \S+: 100% \(40\/40 lines, [\d.]+\/s\)$/m);
      assert.match(submitted.stdout, /^state: +succeeded\nlines: +40 \(succeeded 40, failed 0/m);
      const id = /^id: +(\S+)$/m.exec(submitted.stdout)![1]!;

      assert.match((await cli(['batches', 'ls'])).stdout, new RegExp(`^${id} +tiny-mlp +\\d+ +succeeded +40/40 +0 `, 'm'));
      assert.equal(parsed<{ total: number }>(await cli(['batches', 'show', id, '--json'])).total, 40);
      assert.equal((await cli(['batches', 'wait', id, '--quiet'])).code, 0);
      const results = await cli(['batches', 'results', id, '--out', 'results.jsonl']);
      assert.equal(results.code, 0, results.stderr);
      const resultLines = (await readFile(path.join(directory, 'results.jsonl'), 'utf8')).trimEnd().split('\n');
      assert.equal(resultLines.length, 40);
      assert.equal((JSON.parse(resultLines[3]!) as { id: string }).id, 'line-3');
      const toStdout = await cli(['batches', 'results', id]);
      assert.equal(toStdout.stdout.trimEnd().split('\n').length, 40);
      assert.equal((await cli(['batches', 'cancel', id])).code, 4, 'a finished batch cannot be cancelled (409)');

      const accepted = parsed<{ id: string }>(await cli(['batches', 'submit', 'tiny-mlp', 'batch.jsonl', '--no-wait', '--json']));
      assert.notEqual(accepted.id, id);
      await writeFile(
        path.join(directory, 'bad.jsonl'),
        `${lines[0]}\n{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3]}]}\n`,
      );
      const partly = await cli(['batches', 'submit', 'tiny-mlp', 'bad.jsonl', '--quiet']);
      assert.equal(partly.code, 1, 'a batch with a failed line exits 1');
      assert.match(partly.stdout, /succeeded 1, failed 1/);
      assert.equal((await cli(['batches', 'show', 'nobatch'])).code, 3);
    });
  });

  test('models rm: one version, then the whole model', async () => {
    const version = await cli(['models', 'rm', 'tiny-mlp', '--version', '2']);
    assert.equal(version.code, 0, version.stderr);
    assert.equal(version.stdout, 'Deleted version 2 of tiny-mlp.\n');
    const model = await cli(['models', 'rm', 'tiny-mlp', '--json']);
    assert.deepEqual(parsed(model), { deleted: { name: 'tiny-mlp' } });
    assert.equal((await cli(['models', 'show', 'tiny-mlp'])).code, 3);
    assert.equal((await cli(['models', 'rm', 'tiny-mlp'])).code, 3);
  });
});
