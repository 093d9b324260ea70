/**
 * The README's gRPC call: examples/grpc-infer.mjs, run as a user runs it, against a real gantry. Its printed
 * outputs must be the REST answer to the same input (every element 1), and without a key it must fail with the
 * server's UNAUTHENTICATED message, so the example can neither rot nor hide a broken gRPC endpoint.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { fixturePath, inferJson, repositoryRoot, startGantry, testAdminKey, uploadModel, type GantryProcess } from '../helpers/gantry-process.js';

const run = promisify(execFile);
const example = path.join(repositoryRoot, 'examples/grpc-infer.mjs');

async function runExample(address: string, model: string, key: string | undefined): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, GANTRY_KEY: key ?? '' };
  try {
    const { stdout, stderr } = await run(process.execPath, [example, model, address], { env, timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

describe('README gRPC example (examples/grpc-infer.mjs)', () => {
  let gantry: GantryProcess;

  before(async () => {
    gantry = await startGantry();
    const upload = await uploadModel(gantry.baseUrl, 'tiny-mlp', fixturePath('tiny-mlp.onnx'));
    assert.equal(upload.status, 201, JSON.stringify(upload.body));
  });
  after(async () => {
    await gantry?.cleanup();
  });

  test('prints the model outputs, equal to the REST answer for the same input', async () => {
    const result = await runExample(gantry.grpcAddress, 'tiny-mlp', testAdminKey);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^ServerLive: true$/m);
    assert.match(result.stdout, /^ModelInfer: tiny-mlp version 1$/m);
    const line = result.stdout.split('\n').find((text) => text.trimStart().startsWith('output FP32 [1,16]: '));
    assert.ok(line !== undefined, result.stdout);
    const printed = line
      .slice(line.indexOf(': ') + 2)
      .split(', ')
      .map(Number);

    const rest = await inferJson(gantry.baseUrl, 'tiny-mlp', { inputs: [{ name: 'input', shape: [1, 256], datatype: 'FP32', data: new Array(256).fill(1) }] });
    assert.equal(rest.status, 200, JSON.stringify(rest.body));
    const restData = rest.body.outputs[0].data as number[];
    assert.deepEqual(printed, restData.slice(0, printed.length));
  });

  test("without a key it fails with the server's UNAUTHENTICATED message; an unknown model is NOT_FOUND", async () => {
    const keyless = await runExample(gantry.grpcAddress, 'tiny-mlp', undefined);
    assert.equal(keyless.code, 1);
    assert.match(keyless.stderr, /UNAUTHENTICATED: /);
    const unknown = await runExample(gantry.grpcAddress, 'no-such-model', testAdminKey);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /NOT_FOUND: Unknown model 'no-such-model'/);
  });
});
