/**
 * The data plane (InferenceService) called directly, as every transport calls it: the API role built by
 * ApiRole.create and a WorkerRole in this process, on a real Redis with a private prefix, running the fixture
 * models in onnxruntime. Covers each input content kind, the order of errors, output selection, classification,
 * the `timeout` parameter against the transport's own limit, a caller that went away, usage and metrics.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ApiRole } from '../../src/api/api-role.js';
import { anonymousAdmin, type Principal } from '../../src/auth/principal.js';
import { loadConfig } from '../../src/config.js';
import { ErrorCode, GantryError } from '../../src/errors.js';
import type { CallInput, InferenceCall, InferenceResult } from '../../src/inference/inference-call.js';
import { createLogger } from '../../src/logger.js';
import { readBytesElements, writeBytesElements } from '../../src/protocol/bytes-elements.js';
import { WorkerRole } from '../../src/worker/worker-role.js';
import { adminAuthorization, deleteKeys, fixturePath, testAdminKey } from '../helpers/gantry-process.js';
import { sampleValue } from '../helpers/metrics-text.js';

const redisUrl = 'redis://127.0.0.1:6379';

function bytesOf(array: ArrayBufferView): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

function floats(tensorData: Uint8Array): number[] {
  const copy = new Uint8Array(tensorData);
  return [...new Float32Array(copy.buffer)];
}

function floatInput(name: string, shape: number[], values: number[]): CallInput {
  return { name, datatype: 'FP32', shape, content: { kind: 'json', data: values } };
}

/** Awaits a call that must fail, and returns its GantryError. */
async function failure(promise: Promise<unknown>): Promise<GantryError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof GantryError, `not a GantryError: ${String(error)}`);
    return error;
  }
  assert.fail('the call succeeded');
}

describe('InferenceService (the data plane) with a real worker', { timeout: 180_000 }, () => {
  const prefix = `itest-${randomBytes(4).toString('hex')}`;
  let dataDirectory: string;
  let role: ApiRole;
  let worker: WorkerRole;
  const infer = (call: Omit<InferenceCall, 'principal' | 'protocol'> & Partial<InferenceCall>): Promise<InferenceResult> =>
    role.inference.infer({ principal: anonymousAdmin, protocol: 'rest', ...call });

  async function upload(name: string, fixture: string): Promise<void> {
    const response = await role.app.inject({
      method: 'POST',
      url: `/v1/models/${name}/versions`,
      headers: { authorization: adminAuthorization, 'content-type': 'application/octet-stream' },
      payload: await readFile(fixturePath(fixture)),
    });
    assert.equal(response.statusCode, 201, `upload ${name}: ${response.body}`);
  }

  async function setLabels(name: string, labels: string[]): Promise<void> {
    const response = await role.app.inject({
      method: 'PUT',
      url: `/v1/models/${name}/config`,
      headers: { authorization: adminAuthorization },
      payload: { labels },
    });
    assert.ok(response.statusCode < 300, `config ${name}: ${response.body}`);
  }

  before(async () => {
    dataDirectory = await mkdtemp(path.join(os.tmpdir(), 'gantry-inference-service-'));
    const config = loadConfig({
      GANTRY_QUEUE_PREFIX: prefix,
      GANTRY_DATA_DIR: dataDirectory,
      GANTRY_WORKER_METRICS_PORT: '0',
      GANTRY_MAX_BYTES_ELEMENTS: '8',
      LOG_LEVEL: 'silent',
      REDIS_URL: redisUrl,
      GANTRY_ADMIN_KEY: testAdminKey,
    });
    const logger = createLogger(config, 'test');
    worker = new WorkerRole({ ...config, REDIS_URL: redisUrl }, logger);
    await worker.start();
    role = await ApiRole.create({ ...config, REDIS_URL: redisUrl }, logger);
    await role.app.ready();
    for (const [name, fixture] of [
      ['multi-io', 'multi-io.onnx'],
      ['identity-int64', 'identity-int64.onnx'],
      ['identity-uint64', 'identity-uint64.onnx'],
      ['identity-float16', 'identity-float16.onnx'],
      ['identity-string', 'identity-string.onnx'],
      ['identity-bool', 'identity-bool.onnx'],
      ['classifier', 'labelled-classifier.onnx'],
      ['slow', 'slow.onnx'],
    ]) {
      await upload(name!, fixture!);
    }
    await setLabels('classifier', ['cat', 'dog', 'bird', 'fish', 'horse']);
  });

  after(async () => {
    await role?.close(1000);
    await worker?.close();
    await deleteKeys(redisUrl, prefix);
    if (dataDirectory !== undefined) await rm(dataDirectory, { recursive: true, force: true });
  });

  test('JSON content: every output in the model order, the version that served and the id', async () => {
    const result = await infer({
      model: 'multi-io',
      id: 'request-1',
      inputs: [floatInput('a', [1, 4], [1, 2, 3, 4]), floatInput('b', [1, 4], [10, 20, 30, 40])],
    });
    assert.equal(result.modelName, 'multi-io');
    assert.equal(result.modelVersion, '1');
    assert.equal(result.id, 'request-1');
    assert.deepEqual(
      result.outputs.map((output) => [output.tensor.name, output.tensor.shape, output.binary]),
      [
        ['sum', [1, 4], false],
        ['product', [1, 4], false],
      ],
    );
    assert.deepEqual(floats(result.outputs[0]!.tensor.data), [11, 22, 33, 44]);
    assert.deepEqual(floats(result.outputs[1]!.tensor.data), [10, 40, 90, 160]);
  });

  test('raw content gives the same answer as JSON; a wrong byte count is refused naming the input', async () => {
    const a = bytesOf(new Float32Array([1, 2, 3, 4]));
    const b = bytesOf(new Float32Array([10, 20, 30, 40]));
    const raw = await infer({
      model: 'multi-io',
      inputs: [
        { name: 'a', datatype: 'FP32', shape: [1, 4], content: { kind: 'raw', bytes: a } },
        { name: 'b', datatype: 'FP32', shape: [1, 4], content: { kind: 'raw', bytes: b } },
      ],
    });
    assert.deepEqual(floats(raw.outputs[0]!.tensor.data), [11, 22, 33, 44]);
    const short = await failure(
      infer({
        model: 'multi-io',
        inputs: [
          { name: 'a', datatype: 'FP32', shape: [1, 4], content: { kind: 'raw', bytes: a.subarray(0, 12) } },
          { name: 'b', datatype: 'FP32', shape: [1, 4], content: { kind: 'raw', bytes: b } },
        ],
      }),
    );
    assert.equal(short.code, ErrorCode.InvalidArgument);
    assert.equal(short.message, "Input 'a': FP32 shape [1,4] needs 16 bytes but its binary data holds 12.");
  });

  test('raw BYTES content is counted by elements', async () => {
    const elements = [Buffer.from('alpha'), Buffer.from(''), Buffer.from('γ')];
    const result = await infer({
      model: 'identity-string',
      inputs: [{ name: 'input', datatype: 'BYTES', shape: [1, 3], content: { kind: 'raw', bytes: writeBytesElements(elements) } }],
    });
    assert.deepEqual(
      readBytesElements(result.outputs[0]!.tensor.data).map((element) => Buffer.from(element).toString()),
      ['alpha', '', 'γ'],
    );
    const error = await failure(
      infer({
        model: 'identity-string',
        inputs: [{ name: 'input', datatype: 'BYTES', shape: [1, 4], content: { kind: 'raw', bytes: writeBytesElements(elements) } }],
      }),
    );
    assert.equal(error.message, "Input 'input': shape [1,4] needs 4 BYTES elements but its binary data holds 3.");
  });

  test('typed content (gRPC): 64-bit integers exact at their extremes, FP16 from fp32_contents, BOOL; every output binary', async () => {
    const int64 = await infer({
      model: 'identity-int64',
      protocol: 'grpc',
      inputs: [
        {
          name: 'input',
          datatype: 'INT64',
          shape: [1, 3],
          content: { kind: 'typed', contents: { int64_contents: ['-9223372036854775808', '9223372036854775807', 9007199254740993n] } },
        },
      ],
    });
    assert.equal(int64.outputs[0]!.binary, true);
    assert.deepEqual([...new BigInt64Array(new Uint8Array(int64.outputs[0]!.tensor.data).buffer)], [-(2n ** 63n), 2n ** 63n - 1n, 9007199254740993n]);

    const uint64 = await infer({
      model: 'identity-uint64',
      protocol: 'grpc',
      inputs: [{ name: 'input', datatype: 'UINT64', shape: [1, 2], content: { kind: 'typed', contents: { uint64_contents: ['18446744073709551615', '0'] } } }],
    });
    assert.deepEqual([...new BigUint64Array(new Uint8Array(uint64.outputs[0]!.tensor.data).buffer)], [2n ** 64n - 1n, 0n]);

    const half = await infer({
      model: 'identity-float16',
      protocol: 'grpc',
      inputs: [{ name: 'input', datatype: 'FP16', shape: [1, 2], content: { kind: 'typed', contents: { fp32_contents: [1, -2.5] } } }],
    });
    assert.deepEqual([...new Uint16Array(new Uint8Array(half.outputs[0]!.tensor.data).buffer)], [0x3c00, 0xc100]);

    const bool = await infer({
      model: 'identity-bool',
      protocol: 'grpc',
      inputs: [{ name: 'input', datatype: 'BOOL', shape: [1, 3], content: { kind: 'typed', contents: { bool_contents: [true, false, true] } } }],
    });
    assert.deepEqual([...bool.outputs[0]!.tensor.data], [1, 0, 1]);
  });

  test('typed content in the wrong field, with the wrong count or out of range is refused naming the input', async () => {
    const call = (contents: object) =>
      failure(
        infer({
          model: 'identity-int64',
          protocol: 'grpc',
          inputs: [{ name: 'input', datatype: 'INT64', shape: [1, 2], content: { kind: 'typed', contents } }],
        }),
      );
    assert.match(
      (await call({ int_contents: [1, 2] })).message,
      /^Input 'input': INT64 elements go in 'int64_contents', but 'int_contents' holds 2 elements\.$/,
    );
    assert.match((await call({ int64_contents: ['1'] })).message, /^Input 'input': shape \[1,2\] needs 2 elements but 'int64_contents' holds 1\.$/);
    const outOfRange = await call({ int64_contents: ['1', '9223372036854775808'] });
    assert.equal(outOfRange.code, ErrorCode.InvalidArgument);
    assert.match(outOfRange.message, /^Input 'input': element 1 of 'int64_contents' .* is outside INT64's range/);
  });

  test('parse-thread decoded content: its bytes, or the error the thread gave', async () => {
    const result = await infer({
      model: 'multi-io',
      inputs: [
        { name: 'a', datatype: 'FP32', shape: [1, 4], content: { kind: 'decoded', decoded: { bytes: bytesOf(new Float32Array([1, 1, 1, 1])) } } },
        floatInput('b', [1, 4], [2, 2, 2, 2]),
      ],
    });
    assert.deepEqual(floats(result.outputs[0]!.tensor.data), [3, 3, 3, 3]);
    const error = await failure(
      infer({
        model: 'multi-io',
        inputs: [
          {
            name: 'a',
            datatype: 'FP32',
            shape: [1, 4],
            content: { kind: 'decoded', decoded: { error: { code: ErrorCode.InvalidArgument, message: "Input 'a': decoded badly.", nestingTooDeep: false } } },
          },
          floatInput('b', [1, 4], [2, 2, 2, 2]),
        ],
      }),
    );
    assert.equal(error.code, ErrorCode.InvalidArgument);
    assert.equal(error.message, "Input 'a': decoded badly.");
  });

  test('errors come in order: model, then datatypes, then the signature, then limits, then deferred reads, then data', async () => {
    let reads = 0;
    const deferred = (values: number[]): CallInput['content'] => ({
      kind: 'deferred',
      read: () => {
        reads++;
        return { kind: 'raw', bytes: bytesOf(new Float32Array(values)) };
      },
    });
    const unknownModel = await failure(infer({ model: 'no-such-model', inputs: [{ name: 'a', datatype: 'BF16', shape: [1], content: deferred([1]) }] }));
    assert.equal(unknownModel.code, ErrorCode.NotFound);
    const bf16 = await failure(infer({ model: 'multi-io', inputs: [{ name: 'a', datatype: 'BF16', shape: [1, 4], content: deferred([1, 2, 3, 4]) }] }));
    assert.match(bf16.message, /^Input 'a': Datatype BF16 is not supported/);
    const unknownInput = await failure(infer({ model: 'multi-io', inputs: [{ name: 'c', datatype: 'FP32', shape: [1, 4], content: deferred([1, 2, 3, 4]) }] }));
    assert.match(unknownInput.message, /^Unknown input 'c'; this model's inputs are 'a', 'b'\.$/);
    assert.equal(reads, 0, 'a deferred content was read before the inputs were checked');
    const tooManyElements = await failure(
      infer({ model: 'identity-string', inputs: [{ name: 'input', datatype: 'BYTES', shape: [3, 3], content: { kind: 'json', data: [] } }] }),
    );
    assert.equal(tooManyElements.code, ErrorCode.InvalidArgument);
    assert.match(tooManyElements.message, /GANTRY_MAX_BYTES_ELEMENTS/);

    // Every deferred content is read before any content is decoded: the bad JSON of 'a' is found after 'b' was read.
    const badJson = await failure(
      infer({
        model: 'multi-io',
        inputs: [
          { name: 'a', datatype: 'FP32', shape: [1, 4], content: { kind: 'json', data: [1, 2] } },
          { name: 'b', datatype: 'FP32', shape: [1, 4], content: deferred([1, 2, 3, 4]) },
        ],
      }),
    );
    assert.match(badJson.message, /'a'/);
    assert.equal(reads, 1);
  });

  test('another tenant cannot see the model, and the error names it as the caller wrote it', async () => {
    const tenantCaller: Principal = { tenant: 'acme', keyId: 'test', scopes: new Set(['infer']) };
    const error = await failure(
      role.inference.infer({
        principal: tenantCaller,
        protocol: 'rest',
        model: 'multi-io',
        inputs: [floatInput('a', [1, 4], [1, 2, 3, 4]), floatInput('b', [1, 4], [1, 2, 3, 4])],
      }),
    );
    assert.equal(error.code, ErrorCode.NotFound);
    assert.match(error.message, /'multi-io'/);
    assert.doesNotMatch(error.message, /acme/);
  });

  test('output selection: only those asked for, in the order asked; an unknown one is refused', async () => {
    const inputs = [floatInput('a', [1, 4], [1, 2, 3, 4]), floatInput('b', [1, 4], [1, 1, 1, 1])];
    const one = await infer({ model: 'multi-io', inputs, outputs: [{ name: 'product' }] });
    assert.deepEqual(
      one.outputs.map((output) => output.tensor.name),
      ['product'],
    );
    const reversed = await infer({ model: 'multi-io', inputs, outputs: [{ name: 'product' }, { name: 'sum', parameters: { binary_data: true } }] });
    assert.deepEqual(
      reversed.outputs.map((output) => [output.tensor.name, output.binary]),
      [
        ['product', false],
        ['sum', true],
      ],
    );
    const unknown = await failure(infer({ model: 'multi-io', inputs, outputs: [{ name: 'difference' }] }));
    assert.equal(unknown.message, "Unknown output 'difference'; this model's outputs are 'sum', 'product'.");
    const allBinary = await infer({ model: 'multi-io', inputs, parameters: { binary_data_output: true } });
    assert.deepEqual(
      allBinary.outputs.map((output) => output.binary),
      [true, true],
    );
  });

  test('classification: the top classes with their labels; a bad parameter is refused', async () => {
    const result = await infer({
      model: 'classifier',
      inputs: [floatInput('input', [1, 4], [0.5, -0.2, 0.1, 0.9])],
      outputs: [{ name: 'scores', parameters: { classification: 2 } }],
    });
    const output = result.outputs[0]!.tensor;
    assert.equal(output.datatype, 'BYTES');
    assert.deepEqual(output.shape, [1, 2]);
    for (const element of readBytesElements(output.data)) assert.match(Buffer.from(element).toString(), /^[0-9.e-]+:[0-4]:(cat|dog|bird|fish|horse)$/);
    const bad = await failure(
      infer({ model: 'classifier', inputs: [floatInput('input', [1, 4], [0, 0, 0, 0])], outputs: [{ name: 'scores', parameters: { classification: 0 } }] }),
    );
    assert.equal(bad.message, "Output 'scores': parameter 'classification' must be a positive integer, got 0.");
  });

  const slowInputs = (iterations: number): CallInput[] => [
    { name: 'iterations', datatype: 'INT64', shape: [], content: { kind: 'json', data: [iterations] } },
    floatInput('x', [1, 256], new Array<number>(256).fill(0.5)),
  ];

  test('the timeout parameter and the transport limit: the sooner wins', async () => {
    // About 1 s of work (test/fixtures/README.md): far longer than either limit below.
    const byTransport = await failure(infer({ model: 'slow', inputs: slowInputs(300_000), parameters: { timeout: 60_000_000 }, timeoutMs: 150 }));
    assert.equal(byTransport.code, ErrorCode.DeadlineExceeded);
    assert.equal(byTransport.message, 'The inference did not finish within its timeout of 150 ms.');
    const byParameter = await failure(infer({ model: 'slow', inputs: slowInputs(300_000), parameters: { timeout: 120_000 }, timeoutMs: 60_000 }));
    assert.equal(byParameter.message, 'The inference did not finish within its timeout of 120 ms.');
    const badParameter = await failure(infer({ model: 'slow', inputs: slowInputs(0), parameters: { timeout: -1 } }));
    assert.equal(badParameter.message, "Request parameter 'timeout' must be a non-negative integer, got -1.");
  });

  test('a caller that went away: aborted before submission is never queued; aborted while waiting is dropped', async () => {
    const gone = new AbortController();
    gone.abort();
    const before = await failure(
      infer({ model: 'multi-io', inputs: [floatInput('a', [1, 4], [1, 2, 3, 4]), floatInput('b', [1, 4], [1, 2, 3, 4])], signal: gone.signal }),
    );
    assert.equal(before.code, ErrorCode.Cancelled);

    const leaving = new AbortController();
    const running = infer({ model: 'slow', inputs: slowInputs(300_000), signal: leaving.signal });
    setTimeout(() => leaving.abort(), 100);
    const during = await failure(running);
    assert.equal(during.code, ErrorCode.Cancelled);

    // The model still answers (after the runs nobody waits for any more: the worker ends with none in flight).
    const after = await infer({ model: 'slow', inputs: slowInputs(0) });
    assert.deepEqual(
      after.outputs.map((output) => output.tensor.shape),
      [[1, 256]],
    );
  });

  test('usage is filled in as the call goes, and the metrics carry the protocol', async () => {
    const usage: NonNullable<InferenceCall['usage']> = {};
    await infer({
      model: 'multi-io',
      protocol: 'grpc',
      inputs: [floatInput('a', [2, 4], [1, 2, 3, 4, 5, 6, 7, 8]), floatInput('b', [2, 4], [1, 2, 3, 4, 5, 6, 7, 8])],
      usage,
    });
    assert.equal(usage.model, 'multi-io');
    assert.equal(usage.version, '1');
    assert.equal(usage.rows, 2);
    assert.equal(typeof usage.computeNs, 'number');

    const failedUsage: NonNullable<InferenceCall['usage']> = {};
    await failure(infer({ model: 'multi-io', protocol: 'grpc', inputs: [floatInput('a', [1, 4], [1, 2, 3, 4])], usage: failedUsage }));
    assert.deepEqual(failedUsage, { model: 'multi-io', version: '1' });

    const metrics = await role.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: adminAuthorization } });
    const counted = (name: string, labels: Record<string, string>) => sampleValue(metrics.body, name, labels);
    assert.ok(counted('gantry_inference_requests_total', { model: 'multi-io', version: '1', outcome: 'success', protocol: 'grpc' }) >= 1);
    assert.ok(counted('gantry_inference_requests_total', { model: 'multi-io', version: '1', outcome: 'client_error', protocol: 'grpc' }) >= 1);
    assert.ok(counted('gantry_inference_requests_total', { model: 'multi-io', version: '1', outcome: 'success', protocol: 'rest' }) >= 1);
    assert.ok(counted('gantry_inference_request_duration_seconds_count', { model: 'multi-io', version: '1', protocol: 'grpc' }) >= 1);
  });

  // Last: it shuts the API role down (after() closing it again is a no-op).
  test('once shutdown began, calls are refused as unavailable, before anything is looked up', async () => {
    await role.close(1000);
    const error = await failure(infer({ model: 'no-such-model', inputs: [] }));
    assert.equal(error.code, ErrorCode.Unavailable);
    assert.equal(error.message, 'The server is shutting down; retry on another instance.');
    assert.equal(error.retryAfterSeconds, 1);
  });
});
