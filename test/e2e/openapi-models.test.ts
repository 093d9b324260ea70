/**
 * The OpenAPI document at /docs/json (issue 17), against a real `gantry start` (API + worker, real Redis and
 * onnxruntime): it validates as OpenAPI 3 (@apidevtools/swagger-parser), it has an infer operation for each READY
 * model the caller's key can see whose example body, sent as it is, answers 200, it follows uploads, unloads and
 * deletions at once, it never names one tenant's models to another (nor any model to a caller without a key), it
 * stops at GANTRY_OPENAPI_MAX_MODELS saying so, and it documents the upload bodies, the binary extension and the
 * schedule parameters. Also runs docs/protocol.md's "Binary tensors with curl" block as it is.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import SwaggerParser from '@apidevtools/swagger-parser';
import { fixturePath, repositoryRoot, startGantry, testAdminKey, type GantryProcess } from '../helpers/gantry-process.js';
import { call, waitUntil, type HttpReply } from './support.js';

const run = promisify(execFile);
const maxModels = 6;

/* An OpenAPI document, read loosely. */
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Models the admin uploads (default tenant), by name: [fixture, what the example must hold]. */
const adminModels: Record<string, string> = {
  'int64-identity': 'identity-int64.onnx',
  'multi-io': 'multi-io.onnx',
  scalar: 'scalar.onnx',
  'string-identity': 'identity-string.onnx',
  'tiny-mlp': 'tiny-mlp.onnx',
  // Sorted last among the admin's seven visible models: the one past GANTRY_OPENAPI_MAX_MODELS.
  'zz-left-out': 'identity-float.onnx',
};

describe('OpenAPI document with per-model operations', { timeout: 240_000 }, () => {
  let gantry: GantryProcess;
  const keys = { admin: testAdminKey, acme: '', globex: '', acmeUsage: '' };
  type Caller = keyof typeof keys | 'nobody';

  const as = (caller: Caller, method: string, urlPath: string, body?: unknown) =>
    call(gantry.baseUrl, method, urlPath, body, caller === 'nobody' ? {} : { authorization: `Bearer ${keys[caller]}` });

  const documentFor = async (caller: Caller): Promise<Json> => {
    const reply = await as(caller, 'GET', '/docs/json');
    assert.equal(reply.status, 200, reply.text);
    return reply.body as Json;
  };

  /** The concrete per-model infer paths of a document (the templated generic ones excluded). */
  const modelPaths = (document: Json) => Object.keys(document.paths as Json).filter((key) => /^\/v2\/models\/[^{}]+\/infer$/.test(key));

  const exampleOf = (document: Json, model: string): Json => {
    const operation = document.paths[`/v2/models/${model}/infer`]?.post as Json | undefined;
    assert.ok(operation, `no operation for ${model}: ${modelPaths(document).join(', ')}`);
    const example = operation.requestBody.content['application/json'].example as Json | undefined;
    assert.ok(example, `no example for ${model}`);
    return example;
  };

  const upload = async (caller: Caller, name: string, fixture: string) => {
    const bytes = await readFile(fixturePath(fixture));
    const response = await fetch(`${gantry.baseUrl}/v1/models/${name}/versions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${keys[caller as keyof typeof keys]}`, 'content-type': 'application/octet-stream' },
      body: bytes,
    });
    assert.equal(response.status, 201, await response.text());
  };

  before(async () => {
    gantry = await startGantry({ env: { GANTRY_OPENAPI_MAX_MODELS: String(maxModels) } });
    for (const tenant of ['acme', 'globex']) assert.equal((await as('admin', 'POST', '/v1/tenants', { id: tenant })).status, 201);
    const makeKey = async (tenant: string, scopes: string[]) => {
      const reply = await as('admin', 'POST', '/v1/keys', { tenant, name: `${tenant} docs test`, scopes });
      assert.equal(reply.status, 201, reply.text);
      return reply.body.key as string;
    };
    keys.acme = await makeKey('acme', ['models:read', 'models:write', 'infer']);
    keys.globex = await makeKey('globex', ['models:read', 'models:write', 'infer']);
    keys.acmeUsage = await makeKey('acme', ['usage:read']);
    for (const [name, fixture] of Object.entries(adminModels)) await upload('admin', name, fixture);
    await upload('acme', 'acme-secret', 'identity-bool.onnx');
  });
  after(async () => {
    await gantry?.cleanup();
  });

  test("a well-kept validator (swagger-parser) accepts every caller's document, and refuses a broken one", async () => {
    for (const caller of ['nobody', 'admin', 'acme', 'globex', 'acmeUsage'] as const) {
      const document = await documentFor(caller);
      assert.match(String(document.openapi), /^3\./);
      // validate() dereferences in place: give it a copy (typed `never`: it takes any OpenAPI.Document, read loosely here).
      await SwaggerParser.validate(structuredClone(document) as never);
    }
    // The validator is not a rubber stamp: the same document with one operation broken is refused.
    const broken = await documentFor('admin');
    broken.paths['/v2/models/tiny-mlp/infer'].post.responses = { '200': { content: {} } };
    await assert.rejects(SwaggerParser.validate(broken as never), /description|responses|200/i);
  });

  test('each READY model visible to the admin has an infer operation whose example answers 200 as it is', async () => {
    const document = await documentFor('admin');
    const shown = modelPaths(document).map((key) => key.split('/')[3]);
    assert.deepEqual(shown.sort(), ['acme~acme-secret', 'int64-identity', 'multi-io', 'scalar', 'string-identity', 'tiny-mlp']);
    for (const model of shown) {
      const example = exampleOf(document, model!);
      const reply = await as('admin', 'POST', `/v2/models/${model}/infer`, example);
      assert.equal(reply.status, 200, `${model}: ${reply.text}`);
      const declared = (await as('admin', 'GET', `/v2/models/${model}`)).body as Json;
      assert.deepEqual(reply.body.outputs.map((output: Json) => output.name).sort(), declared.outputs.map((output: Json) => output.name).sort());
      // The example names the real inputs, with their datatypes and ranks.
      assert.deepEqual(
        example.inputs.map((input: Json) => [input.name, input.datatype, input.shape.length]),
        declared.inputs.map((input: Json) => [input.name, input.datatype, input.shape.length]),
      );
    }
    // Several inputs, other datatypes, a rank-0 input: the examples say so.
    assert.deepEqual(
      exampleOf(document, 'multi-io').inputs.map((input: Json) => [input.name, input.datatype, input.shape]),
      [
        ['a', 'FP32', [1, 4]],
        ['b', 'FP32', [1, 4]],
      ],
    );
    assert.deepEqual(exampleOf(document, 'scalar').inputs[0].shape, []);
    assert.equal(exampleOf(document, 'int64-identity').inputs[0].datatype, 'INT64');
    assert.equal(exampleOf(document, 'string-identity').inputs[0].datatype, 'BYTES');
    const tinyMlp = document.paths['/v2/models/tiny-mlp/infer'].post as Json;
    assert.match(tinyMlp.description, /\| `input` \| FP32 \| `\[-1, 256\]` \|/);
    assert.match(tinyMlp.description, /scope 'infer'/);
    assert.deepEqual(tinyMlp.security, document.paths['/v2/models/{model}/infer'].post.security);
  });

  test(`at most GANTRY_OPENAPI_MAX_MODELS (${maxModels}) models get an operation, and the document says what it left out`, async () => {
    const document = await documentFor('admin');
    assert.equal(modelPaths(document).length, maxModels);
    assert.equal(document.paths['/v2/models/zz-left-out/infer'], undefined);
    assert.deepEqual(document['x-gantry-served-models'], { shown: maxModels, visible: maxModels + 1, notReady: 0, leftOut: 1, anonymous: false });
    assert.match(document.info.description, /1 left out: at most GANTRY_OPENAPI_MAX_MODELS/);
    // The one left out is served as ever; it is only not described.
    assert.equal((await as('admin', 'GET', '/v2/models/zz-left-out')).status, 200);
  });

  test("no key: no model names; a tenant's key: its own models only; a key that may not read models: none", async () => {
    const secretNames = ['acme-secret', 'tiny-mlp', 'int64-identity', 'string-identity', 'zz-left-out', 'multi-io'];
    const anonymous = await documentFor('nobody');
    assert.deepEqual(modelPaths(anonymous), []);
    const anonymousText = JSON.stringify(anonymous);
    for (const name of secretNames) assert.ok(!anonymousText.includes(name), `the anonymous document names '${name}'`);
    assert.equal(anonymous['x-gantry-served-models'].anonymous, true);
    assert.match(anonymous.info.description, /sends its key with this request/);

    const acme = await documentFor('acme');
    assert.deepEqual(modelPaths(acme), ['/v2/models/acme-secret/infer']);
    const acmeText = JSON.stringify(acme);
    for (const name of secretNames.filter((name) => name !== 'acme-secret')) assert.ok(!acmeText.includes(name), `acme's document names '${name}'`);
    assert.ok(!acmeText.includes('acme~'), 'a tenant is shown its own qualified name');
    const reply = await as('acme', 'POST', '/v2/models/acme-secret/infer', exampleOf(acme, 'acme-secret'));
    assert.equal(reply.status, 200, reply.text);
    assert.deepEqual(reply.body.outputs[0].data, [false]);

    const globexText = JSON.stringify(await documentFor('globex'));
    for (const name of secretNames) assert.ok(!globexText.includes(name), `globex's document names '${name}'`);

    const usageOnly = await documentFor('acmeUsage');
    assert.deepEqual(modelPaths(usageOnly), []);
    assert.ok(!JSON.stringify(usageOnly).includes('acme-secret'));
    assert.match(usageOnly.info.description, /neither 'infer' nor 'models:read'/);

    // A bad key is refused as on any route, not quietly given the anonymous document.
    const refused = await call(gantry.baseUrl, 'GET', '/docs/json', undefined, { authorization: 'Bearer gk_notakey' });
    assert.equal(refused.status, 401, refused.text);
    assert.equal(refused.body.code, 'UNAUTHENTICATED');
    // Nobody between the caller and the API may keep one caller's document for another.
    const response = await fetch(`${gantry.baseUrl}/docs/json`, { headers: { authorization: `Bearer ${keys.acme}` } });
    assert.equal(response.headers.get('cache-control'), 'private, no-store');
    assert.match(response.headers.get('vary') ?? '', /authorization/i);
    await response.arrayBuffer();
  });

  test('the document follows the registry: an upload appears at once, an unload and a deletion take the model out', async () => {
    const before = await documentFor('acme');
    assert.equal(before.paths['/v2/models/fresh-model/infer'], undefined);
    await upload('acme', 'fresh-model', 'two-batch-axes.onnx');
    const after = await documentFor('acme');
    const reply = await as('acme', 'POST', '/v2/models/fresh-model/infer', exampleOf(after, 'fresh-model'));
    assert.equal(reply.status, 200, reply.text);

    assert.equal((await as('acme', 'POST', '/v2/repository/models/fresh-model/unload', {})).status, 200);
    await waitUntil(
      async () => (await documentFor('acme')).paths['/v2/models/fresh-model/infer'] === undefined,
      5000,
      'the unloaded model to leave the document',
    );
    assert.equal((await documentFor('acme'))['x-gantry-served-models'].notReady, 1);
    assert.equal((await as('acme', 'DELETE', '/v1/models/fresh-model')).status, 204);
    await waitUntil(async () => (await documentFor('acme'))['x-gantry-served-models'].visible === 1, 5000, 'the deleted model to leave the count');
  });

  test('generic operations: enums and examples, the upload bodies, the binary extension and the schedule parameters', async () => {
    const document = await documentFor('nobody');
    const schemas = document.components.schemas as Json;
    assert.ok(schemas.InferInput.properties.datatype.enum.includes('FP32'));
    assert.ok(schemas.InferInput.properties.datatype.enum.includes('BYTES'));
    assert.ok(!schemas.InferInput.properties.datatype.enum.includes('BF16'));
    const parameters = schemas.InferRequestParameters.properties as Json;
    assert.equal(parameters.priority.type, 'integer');
    assert.match(parameters.timeout.description, /Microseconds/);
    assert.equal(parameters.binary_data_output.type, 'boolean');
    assert.equal(schemas.InferInputParameters.properties.binary_data_size.type, 'integer');
    assert.equal(schemas.InferOutputParameters.properties.binary_data.type, 'boolean');

    for (const key of ['/v2/models/{model}/infer', '/v2/models/{model}/versions/{version}/infer']) {
      const infer = document.paths[key].post as Json;
      const example = infer.requestBody.content['application/json'].example as Json;
      // Not swagger-ui's guesses from a loose schema: real numbers, real parameters.
      assert.ok(example.inputs[0].data.every((value: unknown) => typeof value === 'number'));
      assert.deepEqual(Object.keys(example.parameters).sort(), ['priority', 'timeout']);
      assert.ok(infer.requestBody.content['application/octet-stream'], 'the binary body form');
      assert.ok(infer.parameters.some((parameter: Json) => parameter.in === 'header' && parameter.name === 'Inference-Header-Content-Length'));
      assert.ok(infer.responses['200'].content['application/octet-stream'], 'the binary answer form');
      assert.match(infer.description, /Binary tensor extension/);
      assert.match(infer.description, /parameters\.priority/);
    }
    for (const [key, method] of [
      ['/v1/models/{model}/versions', 'post'],
      ['/v1/models/{model}/versions/{version}', 'put'],
    ] as const) {
      const content = document.paths[key][method].requestBody.content as Json;
      assert.equal(content['application/octet-stream'].schema.format, 'binary');
      assert.deepEqual(Object.keys(content['multipart/form-data'].schema.properties).sort(), ['file', 'warmup']);
      assert.deepEqual(content['multipart/form-data'].schema.required, ['file']);
    }
    assert.equal(document.paths['/v1/tenants/{tenant}/limits'].put.requestBody.content['application/json'].schema.type, 'object');
    assert.ok(document.paths['/v1/tenants/{tenant}/limits'].put.requestBody.content['application/json'].schema.properties, 'the limits body names its fields');
  });

  test("an upload shaped as the document's multipart body (as swagger-ui sends it) makes a version", async () => {
    const document = await documentFor('nobody');
    const form = document.paths['/v1/models/{model}/versions'].post.requestBody.content['multipart/form-data'].schema as Json;
    const body = new FormData();
    const fileField = Object.keys(form.properties).find((field) => form.properties[field].format === 'binary')!;
    body.append(fileField, new Blob([await readFile(fixturePath('tiny-mlp.onnx'))]), 'tiny-mlp.onnx');
    const sample = { inputs: [{ name: 'input', shape: [1, 256], datatype: 'FP32', data: new Array(256).fill(0.5) }] };
    body.append('warmup', JSON.stringify(sample));
    const response = await fetch(`${gantry.baseUrl}/v1/models/form-upload/versions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${keys.globex}` },
      body,
    });
    const answer = (await response.json()) as Json;
    assert.equal(response.status, 201, JSON.stringify(answer));
    assert.equal(answer.state, 'READY');
    assert.equal(answer.warmup.status, 'ok');
    assert.deepEqual(modelPaths(await documentFor('globex')), ['/v2/models/form-upload/infer']);
  });

  test('docs/protocol.md "Binary tensors with curl" runs as written and answers what JSON answers', async () => {
    const protocol = await readFile(path.join(repositoryRoot, 'docs/protocol.md'), 'utf8');
    const section = protocol.split('### Binary tensors with curl')[1];
    assert.ok(section !== undefined, 'docs/protocol.md has the section');
    const script = /```sh\n([\s\S]*?)```/.exec(section)?.[1];
    assert.ok(script !== undefined, 'the section has a sh block');
    await run('curl', ['--version']).catch(() => assert.fail('curl is needed by this test (apt-get install curl)'));
    const directory = await mkdtemp(path.join(os.tmpdir(), 'gantry-curl-'));
    try {
      const { stdout } = await run('sh', ['-e', '-c', script], {
        cwd: directory,
        env: { PATH: process.env.PATH ?? '', GANTRY_URL: gantry.baseUrl, GANTRY_KEY: testAdminKey },
        timeout: 30_000,
      });
      const [jsonLine, ...floatLines] = stdout.trim().split('\n');
      const header = JSON.parse(jsonLine!) as Json;
      assert.equal(header.model_name, 'tiny-mlp');
      assert.deepEqual(header.outputs[0].parameters, { binary_data_size: 64 });
      const binaryValues = floatLines.join(' ').trim().split(/\s+/).map(Number);
      assert.equal(binaryValues.length, 16);
      const jsonHeaderBytes = Buffer.byteLength(jsonLine!);
      assert.equal((await stat(path.join(directory, 'response.bin'))).size, jsonHeaderBytes + 64);
      const json: HttpReply = await as('admin', 'POST', '/v2/models/tiny-mlp/infer', {
        inputs: [{ name: 'input', shape: [1, 256], datatype: 'FP32', data: new Array(256).fill(1) }],
      });
      assert.equal(json.status, 200, json.text);
      const expected = json.body.outputs[0].data as number[];
      // od prints about 7 significant digits.
      binaryValues.forEach((value, index) =>
        assert.ok(Math.abs(value - expected[index]!) <= 1e-5 * Math.max(1, Math.abs(expected[index]!)), `${value} vs ${expected[index]}`),
      );
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});
