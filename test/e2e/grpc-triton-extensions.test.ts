/**
 * Triton's gRPC extension methods and the standard health service against a real `gantry start`, called with a
 * client built from the protocol's own protos (test/helpers/grpc-client.ts): ModelConfig, ModelStatistics,
 * RepositoryIndex, RepositoryModelLoad and RepositoryModelUnload for every fixture model and the third-party
 * models, each answer compared field by field with its REST twin; the same scopes and tenants as REST; and
 * grpc.health.v1 Check and Watch following readiness, a draining server turning NOT_SERVING.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { credentials, loadPackageDefinition, status, type GrpcObject } from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { startGantry, testAdminKey, uploadModel, type GantryProcess } from '../helpers/gantry-process.js';
import { connectHealth, connectInference, keyMetadata, unaryCall, type GrpcClient } from '../helpers/grpc-client.js';
import { call, waitUntil } from './support.js';
import { Registry } from 'prom-client';
import { HealthService, maxHealthWatchers } from '../../src/grpc/health-service.js';
import { GrpcServer } from '../../src/grpc/grpc-server.js';
import { createGrpcMetrics } from '../../src/metrics/grpc-metrics.js';
import { createLogger } from '../../src/logger.js';
import { servedModelFiles } from '../helpers/served-models.js';

const models = servedModelFiles;

/** A decoded message or JSON body: the tests read fields and compare whole answers. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- generated clients and JSON bodies are untyped; the assertions check their shape
type Message = any;

/** A unary call with `key` (the admin's unless given; undefined sends none). */
function unary(client: GrpcClient, method: keyof GrpcClient & string, request: object, ...key: [string | undefined] | []): Promise<Message> {
  return unaryCall(client, method, request, { key: key.length === 0 ? testAdminKey : key[0] });
}

/**
 * The standard grpc.health.v1 contract with Watch (grpc/grpc-proto's health.proto: the same messages as Triton's
 * copy, which declares Check only), for a Watch client built from the protocol rather than the server's proto/.
 */
const standardHealthProto = `syntax = "proto3";
package grpc.health.v1;
message HealthCheckRequest { string service = 1; }
message HealthCheckResponse {
  enum ServingStatus { UNKNOWN = 0; SERVING = 1; NOT_SERVING = 2; SERVICE_UNKNOWN = 3; }
  ServingStatus status = 1;
}
service Health {
  rpc Check(HealthCheckRequest) returns (HealthCheckResponse);
  rpc Watch(HealthCheckRequest) returns (stream HealthCheckResponse);
}
`;

async function connectHealthWatch(address: string): Promise<GrpcClient> {
  const folder = await mkdtemp(path.join(os.tmpdir(), 'grpc-health-'));
  try {
    await writeFile(path.join(folder, 'health.proto'), standardHealthProto);
    const definition = protoLoader.loadSync('health.proto', { keepCase: true, enums: String, defaults: true, includeDirs: [folder] });
    const v1 = ((loadPackageDefinition(definition).grpc as GrpcObject).health as GrpcObject).v1 as GrpcObject;
    return new (v1.Health as unknown as new (address: string, channel: ReturnType<typeof credentials.createInsecure>) => GrpcClient)(
      address,
      credentials.createInsecure(),
    );
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}

/** Asserts that a call fails with `code` and a message matching `message`. */
async function assertGrpcError(promise: Promise<unknown>, code: status, message?: RegExp): Promise<{ details: string }> {
  try {
    await promise;
  } catch (error) {
    const failure = error as { code: number; details: string };
    assert.equal(failure.code, code, `expected ${status[code]}, got ${status[failure.code]}: ${failure.details}`);
    assert.ok(failure.details.length > 0, 'the error says what was wrong');
    if (message !== undefined) assert.match(failure.details, message);
    return failure;
  }
  assert.fail(`expected ${status[code]}, the call succeeded`);
}

/** 64-bit fields arrive as decimal strings (longs: String); REST's JSON has numbers. */
const number = (value: unknown): number => (value === undefined ? 0 : Number(value));
const duration = (value: Message) => ({ count: number(value?.count), ns: number(value?.ns) });

/** Triton's ModelConfig message in the shape of REST's config answer (less `versions` and `gantry`, which the message lacks). */
function configAsRest(config: Message) {
  const tensor = (spec: Message) => ({ name: spec.name, data_type: spec.data_type, dims: (spec.dims ?? []).map(number) });
  const batching = config.dynamic_batching;
  return {
    name: config.name,
    platform: config.platform,
    backend: config.backend,
    max_batch_size: number(config.max_batch_size),
    input: (config.input ?? []).map(tensor),
    output: (config.output ?? []).map(tensor),
    instance_group: (config.instance_group ?? []).map((group: Message) => ({ name: group.name, count: number(group.count), kind: group.kind ?? 'KIND_AUTO' })),
    ...(batching === undefined || batching === null
      ? {}
      : {
          dynamic_batching: {
            preferred_batch_size: (batching.preferred_batch_size ?? []).map(number),
            max_queue_delay_microseconds: number(batching.max_queue_delay_microseconds),
            default_queue_policy: {
              max_queue_size: number(batching.default_queue_policy?.max_queue_size),
              default_timeout_microseconds: number(batching.default_queue_policy?.default_timeout_microseconds),
            },
          },
        }),
    parameters: Object.fromEntries(
      Object.entries(config.parameters ?? {}).map(([name, value]: [string, Message]) => [name, { string_value: value.string_value ?? '' }]),
    ),
  };
}

/** Triton's ModelStatistics message in the shape of REST's statistics answer. */
function statisticsAsRest(stats: Message) {
  const inference = stats.inference_stats ?? {};
  return {
    name: stats.name,
    version: stats.version,
    last_inference: number(stats.last_inference),
    inference_count: number(stats.inference_count),
    execution_count: number(stats.execution_count),
    inference_stats: {
      success: duration(inference.success),
      fail: duration(inference.fail),
      queue: duration(inference.queue),
      compute_input: duration(inference.compute_input),
      compute_infer: duration(inference.compute_infer),
      compute_output: duration(inference.compute_output),
    },
    batch_stats: (stats.batch_stats ?? []).map((batch: Message) => ({
      batch_size: number(batch.batch_size),
      compute_input: duration(batch.compute_input),
      compute_infer: duration(batch.compute_infer),
      compute_output: duration(batch.compute_output),
    })),
  };
}

function restConfigWithoutGantryFields(body: Message) {
  const rest = { ...body };
  delete rest.versions;
  delete rest.gantry;
  return rest;
}

function indexEntry(entry: Message) {
  return { name: entry.name, version: entry.version ?? '', state: entry.state ?? '', reason: entry.reason ?? '' };
}

describe('gRPC: Triton extensions and grpc.health.v1', () => {
  let gantry: GantryProcess;
  let inference: GrpcClient;
  let health: GrpcClient;

  before(async () => {
    gantry = await startGantry();
    for (const [name, file] of Object.entries(models)) {
      const upload = await uploadModel(gantry.baseUrl, name, file);
      assert.equal(upload.status, 201, `${name}: ${JSON.stringify(upload.body)}`);
    }
    // A second version of one model, so per-version answers have more than one version to choose from.
    assert.equal((await uploadModel(gantry.baseUrl, 'tiny-mlp', models['tiny-mlp']!, '?duplicate=true')).status, 201);
    // Some statistics to compare: two inferences of the tiny MLP.
    for (let round = 0; round < 2; round++) {
      const reply = await call(gantry.baseUrl, 'POST', '/v2/models/tiny-mlp/infer', {
        inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 256], data: new Array(256).fill(0.5) }],
      });
      assert.equal(reply.status, 200, reply.text);
    }
    inference = connectInference(gantry.grpcAddress);
    health = connectHealth(gantry.grpcAddress);
  });
  after(async () => {
    inference?.close();
    health?.close();
    await gantry?.cleanup();
  });

  test('ModelConfig: every model, with and without a version, equals the REST configuration', async () => {
    for (const name of Object.keys(models)) {
      const rest = await call(gantry.baseUrl, 'GET', `/v2/models/${name}/config`);
      assert.equal(rest.status, 200, rest.text);
      const answer = await unary(inference, 'ModelConfig', { name });
      assert.deepEqual(configAsRest(answer.config), restConfigWithoutGantryFields(rest.body), name);
      for (const version of rest.body.versions as string[]) {
        const restVersion = await call(gantry.baseUrl, 'GET', `/v2/models/${name}/versions/${version}/config`);
        const versionAnswer = await unary(inference, 'ModelConfig', { name, version });
        assert.deepEqual(configAsRest(versionAnswer.config), restConfigWithoutGantryFields(restVersion.body), `${name} version ${version}`);
      }
    }
    // Triton's enum names, read by a client built from Triton's own model_config.proto.
    const mlp = (await unary(inference, 'ModelConfig', { name: 'tiny-mlp' })).config;
    assert.equal(mlp.input[0].data_type, 'TYPE_FP32');
    assert.equal(mlp.instance_group[0].kind, 'KIND_CPU');
    assert.equal((await unary(inference, 'ModelConfig', { name: 'identity-string' })).config.input[0].data_type, 'TYPE_STRING');
  });

  test('ModelConfig errors: the REST messages with the matching gRPC codes', async () => {
    const unknown = await call(gantry.baseUrl, 'GET', '/v2/models/no-such-model/config');
    const failure = await assertGrpcError(unary(inference, 'ModelConfig', { name: 'no-such-model' }), status.NOT_FOUND, /no-such-model/);
    assert.equal(failure.details, unknown.body.error);
    await assertGrpcError(unary(inference, 'ModelConfig', { name: 'tiny-mlp', version: '99' }), status.NOT_FOUND, /99/);
    await assertGrpcError(unary(inference, 'ModelConfig', { name: 'tiny-mlp', version: 'latest' }), status.INVALID_ARGUMENT, /latest/);
    await assertGrpcError(unary(inference, 'ModelConfig', { name: 'bad name!' }), status.INVALID_ARGUMENT, /Invalid model name/);
  });

  test('ModelStatistics: all models, one model, one version, each equal to REST', async () => {
    const all = await call(gantry.baseUrl, 'GET', '/v2/models/stats');
    const allAnswer = await unary(inference, 'ModelStatistics', {});
    assert.deepEqual(allAnswer.model_stats.map(statisticsAsRest), all.body.model_stats);
    assert.equal(all.body.model_stats.length, Object.keys(models).length + 1, 'one entry per version');

    for (const name of Object.keys(models)) {
      const rest = await call(gantry.baseUrl, 'GET', `/v2/models/${name}/stats`);
      const answer = await unary(inference, 'ModelStatistics', { name });
      assert.deepEqual(answer.model_stats.map(statisticsAsRest), rest.body.model_stats, name);
    }
    const restVersion = await call(gantry.baseUrl, 'GET', '/v2/models/tiny-mlp/versions/1/stats');
    const versionAnswer = await unary(inference, 'ModelStatistics', { name: 'tiny-mlp', version: '1' });
    assert.deepEqual(versionAnswer.model_stats.map(statisticsAsRest), restVersion.body.model_stats);
    // The statistics are real: the two inferences above reached the serving version (the newest).
    const served = statisticsAsRest((await unary(inference, 'ModelStatistics', { name: 'tiny-mlp', version: '2' })).model_stats[0]);
    assert.equal(served.inference_stats.success.count, 2);
    assert.ok(served.inference_stats.success.ns > 0);

    await assertGrpcError(unary(inference, 'ModelStatistics', { name: 'no-such-model' }), status.NOT_FOUND);
    await assertGrpcError(unary(inference, 'ModelStatistics', { name: 'tiny-mlp', version: '7' }), status.NOT_FOUND);
    await assertGrpcError(unary(inference, 'ModelStatistics', { version: '1' }), status.INVALID_ARGUMENT, /name/);
  });

  test('RepositoryIndex equals the REST index, ready filter included; a named repository is refused', async () => {
    const rest = await call(gantry.baseUrl, 'POST', '/v2/repository/index', {});
    const answer = await unary(inference, 'RepositoryIndex', {});
    assert.deepEqual(answer.models.map(indexEntry), rest.body);
    assert.equal(rest.body.length, Object.keys(models).length + 1);
    const restReady = await call(gantry.baseUrl, 'POST', '/v2/repository/index', { ready: true });
    assert.deepEqual((await unary(inference, 'RepositoryIndex', { ready: true })).models.map(indexEntry), restReady.body);
    await assertGrpcError(unary(inference, 'RepositoryIndex', { repository_name: 'models' }), status.INVALID_ARGUMENT, /repository_name/);
  });

  test('RepositoryModelUnload and RepositoryModelLoad, every model: the REST index shows each change', async () => {
    const restIndex = async (name: string) =>
      ((await call(gantry.baseUrl, 'POST', '/v2/repository/index', {})).body as Message[]).filter((entry) => entry.name === name);
    for (const name of Object.keys(models)) {
      await unary(inference, 'RepositoryModelUnload', { model_name: name });
      const unloaded = await restIndex(name);
      assert.ok(
        unloaded.length > 0 && unloaded.every((entry) => entry.state === 'UNAVAILABLE' && entry.reason === 'unloaded'),
        `${name}: ${JSON.stringify(unloaded)}`,
      );
      await unary(inference, 'RepositoryModelLoad', { model_name: name });
      const loaded = await restIndex(name);
      assert.ok(
        loaded.every((entry) => entry.state === 'READY' && entry.reason === ''),
        `${name}: ${JSON.stringify(loaded)}`,
      );
    }
  });

  test('RepositoryModelUnload and RepositoryModelLoad change what runs, as REST does', async () => {
    await unary(inference, 'RepositoryModelUnload', { model_name: 'amplifier', parameters: { unload_dependents: { bool_param: true } } });
    const unloaded = (await unary(inference, 'RepositoryIndex', {})).models.map(indexEntry).filter((entry: Message) => entry.name === 'amplifier');
    assert.deepEqual(unloaded, [{ name: 'amplifier', version: '1', state: 'UNAVAILABLE', reason: 'unloaded' }]);
    assert.equal((await unary(inference, 'ModelReady', { name: 'amplifier' })).ready ?? false, false);
    assert.ok(!(await unary(inference, 'RepositoryIndex', { ready: true })).models.some((entry: Message) => entry.name === 'amplifier'));

    await unary(inference, 'RepositoryModelLoad', { model_name: 'amplifier' });
    assert.equal((await unary(inference, 'ModelReady', { name: 'amplifier' })).ready, true);
    const rest = await call(gantry.baseUrl, 'POST', '/v2/repository/index', { ready: true });
    assert.ok(rest.body.some((entry: Message) => entry.name === 'amplifier' && entry.state === 'READY'));

    // Load parameters are refused with REST's message; unknown models are NOT_FOUND.
    const restRefusal = await call(gantry.baseUrl, 'POST', '/v2/repository/models/amplifier/load', { parameters: { config: '{}' } });
    const refusal = await assertGrpcError(
      unary(inference, 'RepositoryModelLoad', { model_name: 'amplifier', parameters: { config: { string_param: '{}' } } }),
      status.UNIMPLEMENTED,
      /config/,
    );
    assert.equal(refusal.details, restRefusal.body.error);
    await assertGrpcError(unary(inference, 'RepositoryModelLoad', { model_name: 'no-such-model' }), status.NOT_FOUND, /no-such-model/);
    await assertGrpcError(unary(inference, 'RepositoryModelUnload', { model_name: 'no-such-model' }), status.NOT_FOUND, /no-such-model/);
    await assertGrpcError(unary(inference, 'RepositoryModelLoad', { model_name: '' }), status.INVALID_ARGUMENT);
  });

  test('scopes and tenants: the same keys get the same answers as over REST', async () => {
    const created = await call(gantry.baseUrl, 'POST', '/v1/tenants', { id: 'grpc-ext' });
    assert.equal(created.status, 201, created.text);
    const makeKey = async (scopes: string[]) => {
      const reply = await call(gantry.baseUrl, 'POST', '/v1/keys', { tenant: 'grpc-ext', name: `grpc ext ${scopes.join(' ')}`, scopes });
      assert.equal(reply.status, 201, reply.text);
      return reply.body.key as string;
    };
    const writer = await makeKey(['models:read', 'models:write']);
    const reader = await makeKey(['models:read']);
    const inferOnly = await makeKey(['infer']);
    const upload = await fetch(`${gantry.baseUrl}/v1/models/own-mlp/versions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${writer}`, 'content-type': 'application/octet-stream' },
      body: await readFile(models['tiny-mlp']!),
    });
    assert.equal(upload.status, 201, await upload.text());

    // The tenant sees its own model only, by its bare name, in every listing.
    const index = (await unary(inference, 'RepositoryIndex', {}, reader)).models.map(indexEntry);
    assert.deepEqual(index, [{ name: 'own-mlp', version: '1', state: 'READY', reason: '' }]);
    const stats = (await unary(inference, 'ModelStatistics', {}, reader)).model_stats;
    assert.deepEqual(
      stats.map((entry: Message) => entry.name),
      ['own-mlp'],
    );
    assert.equal((await unary(inference, 'ModelConfig', { name: 'own-mlp' }, reader)).config.name, 'own-mlp');
    // Another tenant's model is not found, never forbidden; the admin sees it by its qualified name.
    await assertGrpcError(unary(inference, 'ModelConfig', { name: 'tiny-mlp' }, reader), status.NOT_FOUND);
    await assertGrpcError(unary(inference, 'RepositoryModelUnload', { model_name: 'tiny-mlp' }, writer), status.NOT_FOUND);
    assert.equal((await unary(inference, 'ModelConfig', { name: 'grpc-ext~own-mlp' })).config.name, 'grpc-ext~own-mlp');

    // Scopes: reading needs models:read, load and unload models:write, as their REST twins.
    for (const method of ['ModelConfig', 'ModelStatistics', 'RepositoryIndex'] as const) {
      await assertGrpcError(unary(inference, method, { name: 'own-mlp' }, inferOnly), status.PERMISSION_DENIED, /models:read/);
    }
    await assertGrpcError(unary(inference, 'RepositoryModelUnload', { model_name: 'own-mlp' }, reader), status.PERMISSION_DENIED, /models:write/);
    await assertGrpcError(unary(inference, 'RepositoryModelLoad', { model_name: 'own-mlp' }, reader), status.PERMISSION_DENIED, /models:write/);
    await unary(inference, 'RepositoryModelUnload', { model_name: 'own-mlp' }, writer);
    await unary(inference, 'RepositoryModelLoad', { model_name: 'own-mlp' }, writer);
    // No key: UNAUTHENTICATED, for every method but health.
    await assertGrpcError(unary(inference, 'RepositoryIndex', {}, undefined), status.UNAUTHENTICATED);
    assert.equal((await unary(health, 'Check', {}, undefined)).status, 'SERVING');
  });

  test('health Check: SERVING for the server and the inference service, NOT_FOUND for another service', async () => {
    assert.equal((await unary(health, 'Check', { service: '' })).status, 'SERVING');
    assert.equal((await unary(health, 'Check', { service: 'inference.GRPCInferenceService' })).status, 'SERVING');
    await assertGrpcError(unary(health, 'Check', { service: 'no.such.Service' }), status.NOT_FOUND, /no\.such\.Service/);
  });

  test('health Watch: SERVING, then NOT_SERVING when the server drains, then the stream ends', async () => {
    const draining = await startGantry();
    const client = await connectHealthWatch(draining.grpcAddress);
    try {
      const statuses: string[] = [];
      const stream = client.Watch({ service: '' }, keyMetadata(undefined));
      const ended = new Promise<void>((resolve) => {
        stream.on('end', () => resolve());
        stream.on('error', () => resolve());
      });
      const first = new Promise<void>((resolve) =>
        stream.on('data', (message: { status?: string }) => {
          statuses.push(message.status ?? 'UNKNOWN');
          resolve();
        }),
      );
      await first;
      assert.deepEqual(statuses, ['SERVING']);
      // An unknown service is answered SERVICE_UNKNOWN on its own stream, which stays open.
      const unknownStream = client.Watch({ service: 'no.such.Service' }, keyMetadata(undefined));
      // Cancelling it below ends it with CANCELLED on this side.
      unknownStream.on('error', () => {});
      const unknownStatus = await new Promise<string>((resolve) =>
        unknownStream.once('data', (message: { status?: string }) => resolve(message.status ?? 'UNKNOWN')),
      );
      assert.equal(unknownStatus, 'SERVICE_UNKNOWN');
      unknownStream.cancel();

      await draining.stop('SIGTERM');
      await ended;
      assert.equal(statuses[0], 'SERVING');
      assert.equal(statuses.at(-1), 'NOT_SERVING', `statuses seen: ${statuses.join(', ')}`);
    } finally {
      client.close();
      await draining.cleanup();
    }
  });
});

/**
 * Watch against readiness that the test changes (a real grpc-js server and the protocol's client; the readiness
 * sources are plain values standing for Redis' connection state, the registry guardian and shutdown): every
 * change reaches every watcher, the number of watchers is bounded and drops as clients leave, close ends them.
 */
describe('grpc.health.v1 Watch follows readiness', () => {
  test('SERVING, NOT_SERVING while Redis is away, SERVING again; bounded watchers; close ends the streams', async () => {
    let accepting = true;
    let guardianReason: string | undefined;
    const redis = { status: 'ready' as string };
    const metrics = createGrpcMetrics(new Registry());
    const healthService = new HealthService(
      { redis: redis as never, guardian: { unreadyReason: () => guardianReason }, isAcceptingWork: () => accepting },
      metrics,
    );
    const server = new GrpcServer({
      services: { 'grpc.health.v1.Health': healthService.handlers },
      authenticator: undefined,
      gate: undefined,
      metrics,
      logger: createLogger({ LOG_LEVEL: 'warn' }, 'test'),
      maxReceiveMessageBytes: 1 << 20,
      maxSendMessageBytes: 1 << 20,
    });
    const port = await server.listen('127.0.0.1', 0);
    const client = await connectHealthWatch(`127.0.0.1:${port}`);
    try {
      const seen: string[] = [];
      const stream = client.Watch({ service: 'inference.GRPCInferenceService' }, keyMetadata(undefined));
      stream.on('data', (message: { status?: string }) => seen.push(message.status ?? 'UNKNOWN'));
      const ended = new Promise<void>((resolve) => stream.on('end', () => resolve()));
      stream.on('error', () => {});
      const check = async () => (await unaryCall(client, 'Check', { service: '' })).status as string;

      await waitUntil(async () => seen.length === 1, 5000, 'the first status');
      assert.deepEqual(seen, ['SERVING']);
      redis.status = 'reconnecting';
      await waitUntil(async () => seen.length === 2, 5000, 'NOT_SERVING while Redis is away');
      assert.equal(await check(), 'NOT_SERVING');
      redis.status = 'ready';
      await waitUntil(async () => seen.length === 3, 5000, 'SERVING again');
      assert.equal(await check(), 'SERVING');
      guardianReason = 'The model registry has not been checked against the model store yet.';
      await waitUntil(async () => seen.length === 4, 5000, 'NOT_SERVING while the registry is unchecked');
      guardianReason = undefined;
      await waitUntil(async () => seen.length === 5, 5000, 'SERVING once checked');
      assert.deepEqual(seen, ['SERVING', 'NOT_SERVING', 'SERVING', 'NOT_SERVING', 'SERVING']);

      // Up to maxHealthWatchers streams at once; the next is refused, and leaving frees the places.
      const others = Array.from({ length: maxHealthWatchers - 1 }, () => {
        const other = client.Watch({ service: '' }, keyMetadata(undefined));
        other.on('error', () => {});
        other.on('data', () => {});
        return other;
      });
      await waitUntil(async () => healthService.watcherCount === maxHealthWatchers, 5000, 'every watcher registered');
      const refused = client.Watch({ service: '' }, keyMetadata(undefined));
      const refusal = await new Promise<{ code: number; details: string }>((resolve) => refused.on('error', resolve));
      assert.equal(refusal.code, status.RESOURCE_EXHAUSTED);
      assert.match(refusal.details, /health Watch streams/);
      for (const other of others) other.cancel();
      await waitUntil(async () => healthService.watcherCount === 1, 5000, 'cancelled watchers forgotten');

      // Shutdown: readiness turns false, close sends the last NOT_SERVING and ends the stream.
      accepting = false;
      healthService.close();
      await ended;
      assert.equal(seen.at(-1), 'NOT_SERVING');
      assert.equal(healthService.watcherCount, 0);
      // Every Watch outcome is counted where the other calls are.
      const counted = Object.fromEntries(
        (await metrics.requests.get()).values.filter((value) => value.labels.method === 'Watch').map((value) => [value.labels.code, value.value]),
      );
      assert.deepEqual(counted, { RESOURCE_EXHAUSTED: 1, CANCELLED: maxHealthWatchers - 1, OK: 1 });
    } finally {
      client.close();
      await server.close(1000);
    }
  });
});
