/**
 * The Open Inference Protocol over gRPC against a real `gantry start`, called with a client generated from the
 * protocol's own proto (test/helpers/grpc-client.ts), never the server's code: health and metadata; ModelInfer for
 * every fixture model and the third-party ones, with raw and with typed contents, outputs equal byte for byte to
 * what REST's binary extension answers for the same inputs; requested outputs, classification, priority and
 * timeout; ModelStreamInfer; the errors (same messages as REST), keys, tenants, scopes, limits, deadline, cancellation, the message
 * size limit, an unserved method; and a graceful shutdown that lets a call in flight finish.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { Socket } from 'node:net';
import { status, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import { fixturePath, startGantry, testAdminKey, uploadModel, type GantryProcess } from '../helpers/gantry-process.js';
import { connectInference, keyMetadata, unaryCall, type GrpcClient, type UnaryOptions } from '../helpers/grpc-client.js';
import { call, mulberry32, waitUntil } from './support.js';
import { servedModelFiles } from '../helpers/served-models.js';

const modelFiles = servedModelFiles;

const mebibyte = 1024 * 1024;
/** The request size limit of the gantry under test (GANTRY_MAX_REQUEST_BYTES): small, so a test can pass it. */
const maxRequestBytes = 8 * mebibyte;

/** One input as a test builds it: the values, and both wire forms of them. */
interface TestInput {
  name: string;
  datatype: string;
  shape: number[];
  /** Little-endian bytes (BYTES: 4-byte length before each element). */
  raw: Buffer;
  /** gRPC typed contents; undefined for FP16, which has no typed field. */
  typed: Record<string, unknown[]> | undefined;
}

const uint64Max = 18446744073709551615n;
const int64Min = -9223372036854775808n;
const int64Max = 9223372036854775807n;

/** Seeded values of `datatype`, `count` of them, with the datatype's extremes first. */
function makeInput(name: string, datatype: string, shape: number[], seed: number): TestInput {
  const count = shape.reduce((product, dimension) => product * dimension, 1);
  const random = mulberry32(seed);
  const integers = (low: number, high: number, extremes: number[]) =>
    Array.from({ length: count }, (_, index) => extremes[index] ?? Math.floor(low + random() * (high - low + 1)));
  const fixed = (bytesPerElement: number, write: (buffer: Buffer, value: never, offset: number) => void, values: unknown[]) => {
    const buffer = Buffer.alloc(count * bytesPerElement);
    values.forEach((value, index) => write(buffer, value as never, index * bytesPerElement));
    return buffer;
  };
  switch (datatype) {
    case 'BOOL': {
      const values = Array.from({ length: count }, () => random() < 0.5);
      return { name, datatype, shape, raw: Buffer.from(values.map((value) => (value ? 1 : 0))), typed: { bool_contents: values } };
    }
    case 'INT8':
    case 'INT16':
    case 'INT32': {
      const bits = Number(datatype.slice(3));
      const low = -(2 ** (bits - 1));
      const high = 2 ** (bits - 1) - 1;
      const values = integers(low, high, [low, high]);
      const writers = {
        INT8: (b: Buffer, v: number, o: number) => b.writeInt8(v, o),
        INT16: (b: Buffer, v: number, o: number) => b.writeInt16LE(v, o),
        INT32: (b: Buffer, v: number, o: number) => b.writeInt32LE(v, o),
      };
      return { name, datatype, shape, raw: fixed(bits / 8, writers[datatype], values), typed: { int_contents: values } };
    }
    case 'UINT8':
    case 'UINT16':
    case 'UINT32': {
      const bits = Number(datatype.slice(4));
      const high = 2 ** bits - 1;
      const values = integers(0, high, [0, high]);
      const writers = {
        UINT8: (b: Buffer, v: number, o: number) => b.writeUInt8(v, o),
        UINT16: (b: Buffer, v: number, o: number) => b.writeUInt16LE(v, o),
        UINT32: (b: Buffer, v: number, o: number) => b.writeUInt32LE(v, o),
      };
      return { name, datatype, shape, raw: fixed(bits / 8, writers[datatype], values), typed: { uint_contents: values } };
    }
    case 'INT64': {
      const values = Array.from(
        { length: count },
        (_, index) => [int64Min, int64Max, 9007199254740993n][index] ?? BigInt(Math.floor((random() - 0.5) * 2 ** 52)),
      );
      return {
        name,
        datatype,
        shape,
        raw: fixed(8, (b: Buffer, v: bigint, o: number) => b.writeBigInt64LE(v, o), values),
        typed: { int64_contents: values.map(String) },
      };
    }
    case 'UINT64': {
      const values = Array.from({ length: count }, (_, index) => [uint64Max, 0n, 9007199254740993n][index] ?? BigInt(Math.floor(random() * 2 ** 53)));
      return {
        name,
        datatype,
        shape,
        raw: fixed(8, (b: Buffer, v: bigint, o: number) => b.writeBigUInt64LE(v, o), values),
        typed: { uint64_contents: values.map(String) },
      };
    }
    case 'FP16': {
      // Random half-precision bit patterns of finite numbers (exponent below all-ones).
      const values = Array.from({ length: count }, () => (Math.floor(random() * 0x7c00) | (random() < 0.5 ? 0x8000 : 0)) >>> 0);
      return { name, datatype, shape, raw: fixed(2, (b: Buffer, v: number, o: number) => b.writeUInt16LE(v, o), values), typed: undefined };
    }
    case 'FP32': {
      const values = Array.from(Float32Array.from({ length: count }, () => random() * 2 - 1));
      return { name, datatype, shape, raw: fixed(4, (b: Buffer, v: number, o: number) => b.writeFloatLE(v, o), values), typed: { fp32_contents: values } };
    }
    case 'FP64': {
      const values = Array.from({ length: count }, () => random() * 2e6 - 1e6);
      return { name, datatype, shape, raw: fixed(8, (b: Buffer, v: number, o: number) => b.writeDoubleLE(v, o), values), typed: { fp64_contents: values } };
    }
    case 'BYTES': {
      const values = Array.from({ length: count }, (_, index) => Buffer.from(index === 0 ? '' : `élément ${index} ${Math.floor(random() * 1e6)}`));
      const raw = Buffer.concat(values.flatMap((value) => [Buffer.from(Uint32Array.of(value.length).buffer), value]));
      return { name, datatype, shape, raw, typed: { bytes_contents: values } };
    }
    default:
      throw new Error(`no test values for ${datatype}`);
  }
}

/** Inputs for a model from its REST metadata: dynamic dimensions as 2 (1 for the first of a fixed-batch model's). */
function inputsFor(model: string, metadata: Pick<ModelMetadataBody, 'inputs'>): TestInput[] {
  if (model === 'slow') return slowInputs(3);
  if (model === 'amplifier') return [shapeInput([3, 5])];
  if (model === 'silero-vad') {
    return [
      makeInput('input', 'FP32', [1, 512], 101),
      exactInt64('sr', 16000n),
      makeInput('h', 'FP32', [2, 1, 64], 102),
      makeInput('c', 'FP32', [2, 1, 64], 103),
    ];
  }
  return metadata.inputs.map((spec, index) =>
    makeInput(
      spec.name,
      spec.datatype,
      spec.shape.map((dimension) => (dimension < 0 ? 2 : dimension)),
      1000 + index,
    ),
  );
}

/** An INT64 scalar input of one exact value. */
function exactInt64(name: string, value: bigint): TestInput {
  const raw = Buffer.alloc(8);
  raw.writeBigInt64LE(value);
  return { name, datatype: 'INT64', shape: [], raw, typed: { int64_contents: [String(value)] } };
}

/** The amplifier's `shape` input: the output's shape. */
function shapeInput(shape: number[]): TestInput {
  const raw = Buffer.alloc(8 * shape.length);
  shape.forEach((dimension, index) => raw.writeBigInt64LE(BigInt(dimension), index * 8));
  return { name: 'shape', datatype: 'INT64', shape: [shape.length], raw, typed: { int64_contents: shape.map(String) } };
}

function iterationsInput(iterations: number): TestInput {
  return exactInt64('iterations', BigInt(iterations));
}

function slowInputs(iterations: number): TestInput[] {
  return [iterationsInput(iterations), makeInput('x', 'FP32', [1, 256], 7)];
}

/** A ModelInferRequest sending every input raw or every input typed. */
function inferRequest(model: string, inputs: TestInput[], form: 'raw' | 'typed', extra: object = {}): object {
  return {
    model_name: model,
    inputs: inputs.map((input) => ({
      name: input.name,
      datatype: input.datatype,
      shape: input.shape.map(String),
      ...(form === 'typed' ? { contents: input.typed } : {}),
    })),
    ...(form === 'raw' ? { raw_input_contents: inputs.map((input) => input.raw) } : {}),
    ...extra,
  };
}

interface TensorMetadata {
  name: string;
  datatype: string;
  shape: number[];
}

/** REST's model metadata answer. */
interface ModelMetadataBody {
  name: string;
  versions: string[];
  platform: string;
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
}

/** A ModelInferResponse as the protocol's client decodes it (64-bit shapes as strings). */
interface WireInferResponse {
  model_name: string;
  model_version: string;
  id: string;
  outputs: Array<{ name: string; datatype: string; shape: string[] }>;
  raw_output_contents: Buffer[];
}

interface RawOutput {
  name: string;
  datatype: string;
  shape: number[];
  bytes: Buffer;
}

/** The outputs of a ModelInferResponse: metadata with its raw_output_contents entry. */
function grpcOutputs(response: WireInferResponse): RawOutput[] {
  assert.equal(response.outputs.length, response.raw_output_contents.length, 'one raw_output_contents entry per output');
  return response.outputs.map((output, index) => ({
    name: output.name,
    datatype: output.datatype,
    shape: output.shape.map(Number),
    bytes: Buffer.from(response.raw_output_contents[index]!),
  }));
}

/**
 * The same inference over REST's binary tensor extension (inputs raw, every output asked for as binary): the
 * outputs' raw bytes as REST answers them, or the error body.
 */
async function restBinaryInfer(
  gantry: GantryProcess,
  model: string,
  inputs: TestInput[],
  outputs?: object[],
  key = testAdminKey,
): Promise<{ status: number; outputs: RawOutput[]; error?: { error: string; code: string } }> {
  const header = Buffer.from(
    JSON.stringify({
      inputs: inputs.map((input) => ({ name: input.name, datatype: input.datatype, shape: input.shape, parameters: { binary_data_size: input.raw.length } })),
      ...(outputs === undefined ? { parameters: { binary_data_output: true } } : { outputs }),
    }),
  );
  const response = await fetch(`${gantry.baseUrl}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
    body: Buffer.concat([header, ...inputs.map((input) => input.raw)]),
  });
  const body = Buffer.from(await response.arrayBuffer());
  if (response.status !== 200) return { status: response.status, outputs: [], error: JSON.parse(body.toString()) };
  const headerLength = Number(response.headers.get('inference-header-content-length') ?? body.length);
  const answer = JSON.parse(body.subarray(0, headerLength).toString()) as { outputs: Array<TensorMetadata & { parameters: { binary_data_size: number } }> };
  let offset = headerLength;
  return {
    status: 200,
    outputs: answer.outputs.map((output) => {
      const size = output.parameters.binary_data_size;
      const bytes = body.subarray(offset, offset + size);
      offset += size;
      return { name: output.name, datatype: output.datatype, shape: output.shape, bytes };
    }),
  };
}

/** Asserts a call fails with `code` and, when given, exactly `message`; returns the error. */
async function assertFails(promise: Promise<unknown>, code: status, message?: string | RegExp): Promise<ServiceError> {
  try {
    await promise;
  } catch (error) {
    const failure = error as ServiceError;
    assert.equal(failure.code, code, `expected ${status[code]}, got ${status[failure.code]}: ${failure.details}`);
    if (typeof message === 'string') assert.equal(failure.details, message);
    else if (message !== undefined) assert.match(failure.details, message);
    return failure;
  }
  assert.fail(`expected ${status[code]}, but the call succeeded`);
}

describe('Open Inference Protocol over gRPC (real gantry, client from the protocol proto)', () => {
  let gantry: GantryProcess;
  let client: GrpcClient;
  const restMetadata = new Map<string, ModelMetadataBody>();
  const metadataOf = (model: string): ModelMetadataBody => {
    const metadata = restMetadata.get(model);
    assert.ok(metadata !== undefined, `no metadata of ${model}`);
    return metadata;
  };
  const grpc = (method: Parameters<typeof unaryCall>[1], request: object, options: UnaryOptions = { key: testAdminKey }) =>
    unaryCall(client, method, request, options);

  before(async () => {
    gantry = await startGantry({ env: { GANTRY_MAX_REQUEST_BYTES: String(maxRequestBytes) } });
    client = connectInference(gantry.grpcAddress);
    for (const [name, file] of Object.entries(modelFiles)) {
      const upload = await uploadModel(gantry.baseUrl, name, file);
      assert.equal(upload.status, 201, `${name}: ${JSON.stringify(upload.body)}`);
      const metadata = await call(gantry.baseUrl, 'GET', `/v2/models/${name}`);
      assert.equal(metadata.status, 200, metadata.text);
      restMetadata.set(name, metadata.body);
    }
  });
  after(async () => {
    client?.close();
    await gantry?.cleanup();
  });

  test('ServerLive, ServerReady, ServerMetadata (same as GET /v2)', async () => {
    assert.deepEqual(await grpc('ServerLive', {}, {}), { live: true });
    assert.deepEqual(await grpc('ServerReady', {}, {}), { ready: true });
    const rest = await call(gantry.baseUrl, 'GET', '/v2');
    assert.deepEqual(await grpc('ServerMetadata', {}), rest.body);
  });

  test('ModelReady and ModelMetadata of every model equal REST', async () => {
    for (const [name, rest] of restMetadata) {
      assert.deepEqual(await grpc('ModelReady', { name, version: '' }), { ready: true }, name);
      assert.deepEqual(await grpc('ModelReady', { name, version: '1' }), { ready: true }, name);
      const metadata = await grpc('ModelMetadata', { name, version: '' });
      const tensors = (list: Array<{ name: string; datatype: string; shape: string[] }>) =>
        list.map((tensor) => ({ name: tensor.name, datatype: tensor.datatype, shape: tensor.shape.map(Number) }));
      assert.deepEqual({ ...metadata, inputs: tensors(metadata.inputs), outputs: tensors(metadata.outputs) }, rest, name);
    }
    await assertFails(grpc('ModelReady', { name: 'no-such-model', version: '' }), status.NOT_FOUND, "Unknown model 'no-such-model'.");
  });

  test('ModelInfer for every model, raw and typed contents: outputs equal REST binary outputs byte for byte', async () => {
    for (const [model, metadata] of restMetadata) {
      const inputs = inputsFor(model, metadata);
      const rest = await restBinaryInfer(gantry, model, inputs);
      assert.equal(rest.status, 200, `${model}: REST ${JSON.stringify(rest.error)}`);
      const forms: Array<'raw' | 'typed'> = inputs.every((input) => input.typed !== undefined) ? ['raw', 'typed'] : ['raw'];
      for (const form of forms) {
        const response = await grpc('ModelInfer', inferRequest(model, inputs, form, { id: `${model}-${form}` }));
        assert.equal(response.model_name, model);
        assert.equal(response.model_version, '1');
        assert.equal(response.id, `${model}-${form}`);
        const outputs = grpcOutputs(response);
        assert.deepEqual(
          outputs.map(({ name, datatype, shape }) => ({ name, datatype, shape })),
          rest.outputs.map(({ name, datatype, shape }) => ({ name, datatype, shape })),
          `${model} (${form}): output metadata`,
        );
        outputs.forEach((output, index) =>
          assert.ok(output.bytes.equals(rest.outputs[index]!.bytes), `${model} (${form}): output ${output.name} bytes differ from REST`),
        );
      }
    }
  });

  test('requested outputs: only those, in the order asked', async () => {
    const metadata = metadataOf('multi-io');
    const names = metadata.outputs.map((output) => output.name);
    assert.ok(names.length >= 2, 'multi-io has several outputs');
    const inputs = inputsFor('multi-io', metadata);
    const wanted = [names[1], names[0]];
    const response = await grpc('ModelInfer', inferRequest('multi-io', inputs, 'raw', { outputs: wanted.map((name) => ({ name })) }));
    assert.deepEqual(
      grpcOutputs(response).map((output) => output.name),
      wanted,
    );
    const rest = await restBinaryInfer(
      gantry,
      'multi-io',
      inputs,
      wanted.map((name) => ({ name, parameters: { binary_data: true } })),
    );
    grpcOutputs(response).forEach((output, index) => assert.ok(output.bytes.equals(rest.outputs[index]!.bytes)));
    await assertFails(grpc('ModelInfer', inferRequest('multi-io', inputs, 'raw', { outputs: [{ name: 'nope' }] })), status.INVALID_ARGUMENT, /nope/);
  });

  test('classification: the top N as BYTES, equal to REST', async () => {
    const metadata = metadataOf('labelled-classifier');
    const inputs = inputsFor('labelled-classifier', metadata);
    const output = metadata.outputs[0]!.name;
    const response = await grpc(
      'ModelInfer',
      inferRequest('labelled-classifier', inputs, 'raw', { outputs: [{ name: output, parameters: { classification: { int64_param: '2' } } }] }),
    );
    const [classified] = grpcOutputs(response);
    assert.equal(classified!.datatype, 'BYTES');
    const rest = await restBinaryInfer(gantry, 'labelled-classifier', inputs, [{ name: output, parameters: { classification: 2, binary_data: true } }]);
    assert.equal(rest.status, 200, JSON.stringify(rest.error));
    assert.ok(classified!.bytes.equals(rest.outputs[0]!.bytes));
    assert.deepEqual(classified!.shape, rest.outputs[0]!.shape);
  });

  test('schedule parameters: priority is taken, a timeout parameter shorter than the run is DEADLINE_EXCEEDED; bad ones as REST says', async () => {
    const answered = await grpc('ModelInfer', inferRequest('slow', slowInputs(3), 'raw', { parameters: { priority: { uint64_param: '1' } } }));
    assert.equal(grpcOutputs(answered).length, 1);
    await assertFails(
      grpc('ModelInfer', inferRequest('slow', slowInputs(500_000), 'raw', { parameters: { timeout: { int64_param: '150000' } } })),
      status.DEADLINE_EXCEEDED,
      'The inference did not finish within its timeout of 150 ms.',
    );
    const restBad = await call(gantry.baseUrl, 'POST', '/v2/models/slow/infer', {
      inputs: [
        { name: 'iterations', datatype: 'INT64', shape: [], data: [1] },
        { name: 'x', datatype: 'FP32', shape: [1, 256], data: new Array(256).fill(0) },
      ],
      parameters: { timeout: -1 },
    });
    assert.equal(restBad.status, 400, restBad.text);
    await assertFails(
      grpc('ModelInfer', inferRequest('slow', slowInputs(1), 'raw', { parameters: { timeout: { int64_param: '-1' } } })),
      status.INVALID_ARGUMENT,
      restBad.body.error,
    );
  });

  test('errors carry REST messages: unknown model NOT_FOUND, bad shape INVALID_ARGUMENT, raw and typed mixed INVALID_ARGUMENT', async () => {
    const inputs = inputsFor('tiny-mlp', metadataOf('tiny-mlp'));
    const unknownRest = await restBinaryInfer(gantry, 'no-such-model', inputs);
    assert.equal(unknownRest.status, 404);
    await assertFails(grpc('ModelInfer', inferRequest('no-such-model', inputs, 'raw')), status.NOT_FOUND, unknownRest.error?.error);
    // Nothing set at all (proto3 sends no empty fields): a bad name, not a server error.
    await assertFails(grpc('ModelInfer', {}), status.INVALID_ARGUMENT, /Invalid model name ''/);
    await assertFails(grpc('ModelMetadata', {}), status.INVALID_ARGUMENT, /Invalid model name ''/);

    const badShape = inputs.map((input) => ({ ...input, shape: [...input.shape.slice(0, -1), input.shape.at(-1)! + 1] }));
    const badRest = await restBinaryInfer(gantry, 'tiny-mlp', badShape);
    assert.equal(badRest.status, 400);
    await assertFails(grpc('ModelInfer', inferRequest('tiny-mlp', badShape, 'raw')), status.INVALID_ARGUMENT, badRest.error?.error);

    const mixed = inferRequest('tiny-mlp', inputs, 'raw') as { inputs: Array<{ contents?: unknown }> };
    mixed.inputs[0]!.contents = inputs[0]!.typed;
    await assertFails(grpc('ModelInfer', mixed), status.INVALID_ARGUMENT, /raw_input_contents/);
    const short = inferRequest('multi-io', inputsFor('multi-io', metadataOf('multi-io')), 'raw') as { raw_input_contents: Buffer[] };
    short.raw_input_contents = short.raw_input_contents.slice(1);
    await assertFails(grpc('ModelInfer', short), status.INVALID_ARGUMENT, /raw_input_contents/);
  });

  test("keys: none or a bad one UNAUTHENTICATED, a key without the scope PERMISSION_DENIED, another tenant's model NOT_FOUND", async () => {
    const inputs = inputsFor('tiny-mlp', metadataOf('tiny-mlp'));
    const noKeyRest = await restBinaryInfer(gantry, 'tiny-mlp', inputs, undefined, '');
    assert.equal(noKeyRest.status, 401);
    await assertFails(grpc('ModelInfer', inferRequest('tiny-mlp', inputs, 'raw'), {}), status.UNAUTHENTICATED, noKeyRest.error?.error);
    await assertFails(
      grpc('ModelInfer', inferRequest('tiny-mlp', inputs, 'raw'), { key: 'gk_nope_not-a-real-key-at-all' }),
      status.UNAUTHENTICATED,
      noKeyRest.error?.error,
    );
    await assertFails(grpc('ServerMetadata', {}, {}), status.UNAUTHENTICATED);

    assert.equal((await call(gantry.baseUrl, 'POST', '/v1/tenants', { id: 'grpc-other' })).status, 201);
    const makeKey = async (scopes: string[]) => {
      const created = await call(gantry.baseUrl, 'POST', '/v1/keys', { tenant: 'grpc-other', name: 'grpc test key', scopes });
      assert.equal(created.status, 201, created.text);
      return created.body.key as string;
    };
    const readerKey = await makeKey(['models:read']);
    const inferKey = await makeKey(['infer', 'models:read']);
    await assertFails(grpc('ModelInfer', inferRequest('tiny-mlp', inputs, 'raw'), { key: readerKey }), status.PERMISSION_DENIED, /needs scope 'infer'/);
    const otherRest = await restBinaryInfer(gantry, 'tiny-mlp', inputs, undefined, inferKey);
    assert.equal(otherRest.status, 404);
    await assertFails(grpc('ModelInfer', inferRequest('tiny-mlp', inputs, 'raw'), { key: inferKey }), status.NOT_FOUND, otherRest.error?.error);
    await assertFails(grpc('ModelMetadata', { name: 'tiny-mlp', version: '' }, { key: inferKey }), status.NOT_FOUND);
  });

  test("limits: a key's rate limit refuses gRPC calls like REST ones (RESOURCE_EXHAUSTED, retry-after), and calls are metered", async () => {
    assert.equal((await call(gantry.baseUrl, 'POST', '/v1/tenants', { id: 'grpc-limited' })).status, 201);
    const created = await call(gantry.baseUrl, 'POST', '/v1/keys', {
      tenant: 'grpc-limited',
      name: 'limited',
      scopes: ['infer', 'models:write', 'models:read', 'usage:read'],
    });
    const { key, id } = created.body as { key: string; id: string };
    const upload = await fetch(`${gantry.baseUrl}/v1/models/mlp/versions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/octet-stream' },
      body: await readFile(fixturePath('tiny-mlp.onnx')),
    });
    assert.equal(upload.status, 201);
    assert.equal((await call(gantry.baseUrl, 'PUT', `/v1/keys/${id}/limits`, { requestsPerMinute: 3 })).status, 200);
    // The key's limits are cached for up to a second in the API.
    await new Promise((resolve) => setTimeout(resolve, 1200));
    const inputs = inputsFor('tiny-mlp', metadataOf('tiny-mlp'));
    const outcomes: string[] = [];
    let refusal: ServiceError | undefined;
    for (let index = 0; index < 5; index++) {
      try {
        await grpc('ModelInfer', inferRequest('mlp', inputs, 'raw'), { key });
        outcomes.push('OK');
      } catch (error) {
        refusal = error as ServiceError;
        outcomes.push(status[refusal.code]!);
      }
    }
    // The upload and the limits call came before the limit (or on the admin's key); 3 calls pass in the minute.
    assert.deepEqual(outcomes, ['OK', 'OK', 'OK', 'RESOURCE_EXHAUSTED', 'RESOURCE_EXHAUSTED']);
    assert.match(refusal!.details, new RegExp(`^Rate limit reached: key '${id}' may send 3 requests per minute; retry after \\d+ s`));
    assert.ok(Number(refusal!.metadata.get('retry-after')[0]) >= 1, 'retry-after trailing metadata');
    await waitUntil(
      async () => {
        const report = await call(gantry.baseUrl, 'GET', '/v1/usage?tenant=grpc-limited&groupBy=model');
        const row = (report.body.usage as Array<{ model: string; outcomes: Record<string, number> }> | undefined)?.find(
          (candidate) => candidate.model === 'grpc-limited~mlp',
        );
        return row !== undefined && row.outcomes.success === 3;
      },
      10_000,
      'the three answered gRPC calls in the usage report',
    );
  });

  test('a deadline shorter than the run: DEADLINE_EXCEEDED; one that passes while queued: the request never runs', async () => {
    await assertFails(grpc('ModelInfer', inferRequest('slow', slowInputs(500_000), 'raw'), { key: testAdminKey, deadlineMs: 200 }), status.DEADLINE_EXCEEDED);

    // A model of its own: the first call keeps it busy for about a second; the second, with a 200 ms deadline,
    // waits behind it. Had the deadline not reached the queue, it would run once the first is done.
    assert.equal((await uploadModel(gantry.baseUrl, 'slow-deadline', fixturePath('slow.onnx'))).status, 201);
    const first = grpc('ModelInfer', inferRequest('slow-deadline', slowInputs(300_000), 'raw'));
    await new Promise((resolve) => setTimeout(resolve, 100));
    await assertFails(
      grpc('ModelInfer', inferRequest('slow-deadline', slowInputs(300_000), 'raw'), { key: testAdminKey, deadlineMs: 200 }),
      status.DEADLINE_EXCEEDED,
    );
    await first;
    await new Promise((resolve) => setTimeout(resolve, 2500));
    const statistics = await call(gantry.baseUrl, 'GET', '/v2/models/slow-deadline/stats');
    assert.equal(statistics.body.model_stats[0].inference_stats.success.count, 1, 'only the first call ran');
  });

  test('a cancelled call is dropped from the queue: it never runs', async () => {
    // A model of its own, so no earlier test's run is still ahead of these.
    assert.equal((await uploadModel(gantry.baseUrl, 'slow-cancel', fixturePath('slow.onnx'))).status, 201);
    const runs = async () => {
      const reply = await call(gantry.baseUrl, 'GET', '/v2/models/slow-cancel/stats');
      const statistics = reply.body.model_stats[0].inference_stats;
      return (statistics.success.count as number) + (statistics.fail.count as number);
    };
    // The first call keeps the model busy for about a second; the second waits behind it and is cancelled.
    const first = grpc('ModelInfer', inferRequest('slow-cancel', slowInputs(300_000), 'raw'));
    await new Promise((resolve) => setTimeout(resolve, 100));
    let cancel: (() => void) | undefined;
    const second = grpc('ModelInfer', inferRequest('slow-cancel', slowInputs(300_000), 'raw'), {
      key: testAdminKey,
      onCall: (handle) => (cancel = () => handle.cancel()),
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    cancel!();
    await assertFails(second, status.CANCELLED);
    await first;
    // Long enough for the cancelled call to have run, had it stayed queued.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    assert.equal(await runs(), 1, 'only the first call ran');
  });

  test('a message over GANTRY_MAX_REQUEST_BYTES: RESOURCE_EXHAUSTED', async () => {
    const huge = makeInput('input', 'FP32', [1, maxRequestBytes / 4 + 1024], 5);
    await assertFails(grpc('ModelInfer', inferRequest('identity-float', [huge], 'raw')), status.RESOURCE_EXHAUSTED);
  });

  test('ModelStreamInfer: each request answered as ModelInfer answers it, a failed one in the stream; no key refuses the stream', async () => {
    const inputs = inputsFor('tiny-mlp', metadataOf('tiny-mlp'));
    const unary = grpcOutputs(await grpc('ModelInfer', inferRequest('tiny-mlp', inputs, 'raw')));
    const badShape = inputs.map((input) => ({ ...input, shape: [...input.shape.slice(0, -1), input.shape.at(-1)! + 1] }));
    const badRest = await restBinaryInfer(gantry, 'tiny-mlp', badShape);
    const stream = client.ModelStreamInfer(keyMetadata(testAdminKey)) as ClientDuplexStream<
      object,
      { error_message: string; infer_response: WireInferResponse | null }
    >;
    const answers: Array<{ error_message: string; infer_response: WireInferResponse | null }> = [];
    const ended = new Promise<void>((resolve, reject) => {
      stream.on('data', (answer) => answers.push(answer));
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    stream.write(inferRequest('tiny-mlp', inputs, 'raw', { id: 'first' }));
    stream.write(inferRequest('tiny-mlp', badShape, 'raw', { id: 'bad' }));
    stream.write(inferRequest('tiny-mlp', inputs, 'typed', { id: 'second' }));
    stream.end();
    await ended;
    assert.equal(answers.length, 3);
    const byId = new Map(answers.filter((answer) => answer.infer_response !== null).map((answer) => [answer.infer_response!.id, answer.infer_response!]));
    assert.deepEqual([...byId.keys()].sort(), ['first', 'second']);
    for (const response of byId.values()) grpcOutputs(response).forEach((output, index) => assert.ok(output.bytes.equals(unary[index]!.bytes)));
    assert.deepEqual(
      answers.filter((answer) => answer.infer_response === null).map((answer) => answer.error_message),
      [badRest.error?.error],
    );

    const refused = client.ModelStreamInfer(keyMetadata(undefined)) as ClientDuplexStream<object, unknown>;
    const failure = await new Promise<ServiceError>((resolve) => {
      refused.on('error', resolve);
      refused.on('data', () => undefined);
      refused.write(inferRequest('tiny-mlp', inputs, 'raw'));
    });
    assert.equal(failure.code, status.UNAUTHENTICATED);
  });

  test('metrics: gRPC calls counted by method and status code', async () => {
    await assertFails(grpc('ModelMetadata', { name: 'no-such-model', version: '' }), status.NOT_FOUND);
    const metrics = await fetch(`${gantry.baseUrl}/metrics`, { headers: { authorization: `Bearer ${testAdminKey}` } }).then((response) => response.text());
    const count = (method: string, code: string) =>
      Number(new RegExp(`^gantry_grpc_requests_total\\{method="${method}",code="${code}"\\} (\\d+)`, 'm').exec(metrics)?.[1] ?? 0);
    assert.ok(count('ModelInfer', 'OK') > 0, 'ModelInfer OK counted');
    assert.ok(count('ModelMetadata', 'NOT_FOUND') >= 1, 'ModelMetadata NOT_FOUND counted');
    assert.ok(count('ModelInfer', 'INVALID_ARGUMENT') > 0, 'ModelInfer INVALID_ARGUMENT counted');
    assert.match(metrics, /^gantry_grpc_request_duration_seconds_count\{method="ModelInfer"\} \d+/m);
  });

  test('methods Gantry does not serve: UNIMPLEMENTED, saying so', async () => {
    await assertFails(grpc('SystemSharedMemoryStatus', {}), status.UNIMPLEMENTED, /SystemSharedMemoryStatus is not served by Gantry/);
    await assertFails(grpc('CudaSharedMemoryRegister' as never, {}), status.UNIMPLEMENTED);
    await assertFails(grpc('TraceSetting', {}), status.UNIMPLEMENTED);
  });
});

describe('gRPC graceful shutdown', () => {
  test('a call in flight when SIGTERM arrives gets its answer', async () => {
    const gantry = await startGantry();
    const client = connectInference(gantry.grpcAddress);
    try {
      assert.equal((await uploadModel(gantry.baseUrl, 'slow', fixturePath('slow.onnx'))).status, 201);
      const inFlight = unaryCall(client, 'ModelInfer', inferRequest('slow', slowInputs(300_000), 'raw'), { key: testAdminKey });
      await new Promise((resolve) => setTimeout(resolve, 200));
      const stopped = gantry.stop('SIGTERM');
      const response = await inFlight;
      assert.equal(grpcOutputs(response)[0]!.name, 'y');
      assert.equal(await stopped, 0);
    } finally {
      client.close();
      await gantry.cleanup();
    }
  });
});

describe('gRPC and REST share one in-flight byte budget (GANTRY_MAX_INFLIGHT_BYTES)', () => {
  const budgetBytes = 600_000;

  /** Tries `attempt` every 100 ms until it gives a value (the API reads the held body's headers asynchronously). */
  async function eventually<T>(attempt: () => Promise<T | undefined>, what: string): Promise<T> {
    let found: T | undefined;
    await waitUntil(async () => (found = await attempt()) !== undefined, 10_000, what);
    return found!;
  }

  test('a REST body held open leaves a gRPC call no room: UNAVAILABLE naming the limit, with retry-after; answered once it is gone', async () => {
    const gantry = await startGantry({ env: { GANTRY_MAX_INFLIGHT_BYTES: String(budgetBytes) } });
    const client = connectInference(gantry.grpcAddress);
    const socket = new Socket();
    try {
      assert.equal((await uploadModel(gantry.baseUrl, 'identity-float', fixturePath('identity-float.onnx'))).status, 201);
      const input = makeInput('input', 'FP32', [1, 50_000], 11); // 200 kB raw
      const request = inferRequest('identity-float', [input], 'raw');
      assert.equal(grpcOutputs(await unaryCall(client, 'ModelInfer', request, { key: testAdminKey }))[0]!.name, 'output');

      // A REST body that announces 500 kB and sends none of it holds 500 kB of the budget from its headers on.
      const { port } = new URL(gantry.baseUrl);
      await new Promise<void>((resolve, reject) => socket.once('error', reject).connect(Number(port), '127.0.0.1', resolve));
      socket.write(
        `POST /v2/models/identity-float/infer HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${testAdminKey}\r\n` +
          `Content-Type: application/json\r\nContent-Length: 500000\r\n\r\n`,
      );
      const refused = await eventually(async () => {
        try {
          await unaryCall(client, 'ModelInfer', request, { key: testAdminKey });
          return undefined;
        } catch (error) {
          return error as ServiceError;
        }
      }, 'a gRPC call refused while the REST body holds the budget');
      assert.equal(refused.code, status.UNAVAILABLE, refused.details);
      assert.match(refused.details, /GANTRY_MAX_INFLIGHT_BYTES/);
      assert.equal(refused.metadata.get('retry-after')[0], '1');

      socket.destroy();
      const answered = await eventually(async () => {
        try {
          return await unaryCall<WireInferResponse>(client, 'ModelInfer', request, { key: testAdminKey });
        } catch {
          return undefined;
        }
      }, 'the gRPC call answered once the REST body is gone');
      assert.equal(grpcOutputs(answered)[0]!.name, 'output');
      const metrics = await (await fetch(`${gantry.baseUrl}/metrics`)).text();
      assert.match(metrics, /gantry_limit_rejections_total\{limit="inflight_bytes"\} [1-9]/);
    } finally {
      socket.destroy();
      client.close();
      await gantry.cleanup();
    }
  });
  test('one ModelStreamInfer stream holds at most 32 requests at once: a burst of 64 waits for room instead of being refused', async () => {
    // Each request holds ~1 kB of the budget; the budget fits 40 of them and the tenant runs one at a time, so
    // a stream that read its whole burst at once would have 24 requests refused for the budget.
    const requestBytes = slowInputs(1).reduce((total, input) => total + input.raw.length, 0);
    const gantry = await startGantry({ env: { GANTRY_MAX_INFLIGHT_BYTES: String(40 * requestBytes), GANTRY_TENANT_MAX_INFLIGHT: '1' } });
    const client = connectInference(gantry.grpcAddress);
    try {
      assert.equal((await call(gantry.baseUrl, 'POST', '/v1/tenants', { id: 'streamer' })).status, 201);
      assert.equal((await uploadModel(gantry.baseUrl, 'streamer~slow', fixturePath('slow.onnx'))).status, 201);
      const created = await call(gantry.baseUrl, 'POST', '/v1/keys', { tenant: 'streamer', name: 'stream test', scopes: ['infer', 'models:read'] });
      assert.equal(created.status, 201, created.text);
      const stream = client.ModelStreamInfer(keyMetadata(created.body.key as string)) as ClientDuplexStream<object, { error_message: string }>;
      const answers: Array<{ error_message: string }> = [];
      const ended = new Promise<void>((resolve, reject) => {
        stream.on('data', (answer) => answers.push(answer));
        stream.on('end', resolve);
        stream.on('error', reject);
      });
      for (let index = 0; index < 64; index++) stream.write(inferRequest('slow', slowInputs(1000), 'raw', { id: String(index) }));
      stream.end();
      await ended;
      assert.equal(answers.length, 64);
      assert.deepEqual(
        answers.filter((answer) => answer.error_message !== ''),
        [],
        'no request of the burst was refused',
      );
    } finally {
      client.close();
      await gantry.cleanup();
    }
  });
});
