/**
 * The per-model infer operation (src/api/openapi/): example bodies for every kind of declared shape and datatype,
 * and its bounds: a model with huge inputs or thousands of tensors still makes a small, valid operation.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import SwaggerParser from '@apidevtools/swagger-parser';
import { exampleInferBody, exampleShape, maxExampleElements } from '../../src/api/openapi/example-body.js';
import { callerDocument } from '../../src/api/openapi/caller-document.js';
import { maxTensorsDescribed, modelInferOperation, type ServedModel } from '../../src/api/openapi/model-operation.js';
import { protocolSchemas } from '../../src/api/openapi/protocol-components.js';
import type { ModelSignature } from '../../src/protocol/signature.js';

const needs = { security: [{ bearerAuth: [] }], sentence: "Needs scope 'infer'." };

/** A minimal valid document around the served models, as plugins/openapi.ts builds it from the generated one. */
function documentWith(models: ServedModel[]): Record<string, unknown> {
  const base = {
    openapi: '3.0.3',
    info: { title: 'Gantry', version: '0.0.0' },
    components: { schemas: structuredClone(protocolSchemas), securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer' } } },
    paths: {},
  };
  return callerDocument(base, { models, visible: models.length, notReady: 0, leftOut: 0 });
}

describe('OpenAPI per-model operations', () => {
  test('dynamic dimensions become 1, fixed ones stay, a scalar stays []', () => {
    assert.deepEqual(exampleShape([-1, 3, -1]), [1, 3, 1]);
    assert.deepEqual(exampleShape([]), []);
    const body = exampleInferBody({
      inputs: [
        { name: 'x', datatype: 'FP16', shape: [-1, 2] },
        { name: 'flag', datatype: 'BOOL', shape: [] },
        { name: 'text', datatype: 'BYTES', shape: [2] },
        { name: 'ids', datatype: 'INT64', shape: [1, 3] },
      ],
      outputs: [],
    });
    assert.deepEqual(body, {
      inputs: [
        { name: 'x', shape: [1, 2], datatype: 'FP16', data: [0.5, 0.5] },
        { name: 'flag', shape: [], datatype: 'BOOL', data: [false] },
        { name: 'text', shape: [2], datatype: 'BYTES', data: ['text', 'text'] },
        { name: 'ids', shape: [1, 3], datatype: 'INT64', data: [0, 0, 0] },
      ],
    });
  });

  test(`inputs of more than ${maxExampleElements} elements together get no example, and the operation says why`, async () => {
    const image: ModelSignature = {
      inputs: [{ name: 'image', datatype: 'FP32', shape: [-1, 3, 224, 224] }],
      outputs: [{ name: 'logits', datatype: 'FP32', shape: [-1, 1000] }],
    };
    assert.equal(exampleInferBody(image), undefined);
    assert.ok(exampleInferBody({ inputs: [{ name: 'x', datatype: 'FP32', shape: [maxExampleElements] }], outputs: [] }));
    assert.equal(exampleInferBody({ inputs: [{ name: 'x', datatype: 'FP32', shape: [maxExampleElements + 1] }], outputs: [] }), undefined);
    const operation = modelInferOperation({ shown: 'resnet', version: '3', signature: image }, needs) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.equal(operation.requestBody.content['application/json'].example, undefined);
    assert.match(operation.description, /No example: the inputs hold more than 4096 elements/);
    assert.match(operation.description, /\| `image` \| FP32 \| `\[-1, 3, 224, 224\]` \|/);
    await SwaggerParser.validate(documentWith([{ shown: 'resnet', version: '3', signature: image }]) as never);
  });

  test(`a model with thousands of inputs makes a small operation (tables stop at ${maxTensorsDescribed}), and the document stays valid`, async () => {
    const many = (prefix: string, count: number) =>
      Array.from({ length: count }, (_, index) => ({ name: `${prefix}${index}`, datatype: 'FP32' as const, shape: [1] }));
    const wide: ServedModel = { shown: 'wide', version: '1', signature: { inputs: many('in', 5000), outputs: many('out', 5000) } };
    const document = documentWith([wide]);
    const size = JSON.stringify(document).length;
    assert.ok(size < 60_000, `${size} characters`);
    const operation = (document.paths as Record<string, any>)['/v2/models/wide/infer'].post; // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.match(operation.description, /… 4936 more/);
    assert.match(operation.summary, /in0, in1, in2 and 4997 more/);
    await SwaggerParser.validate(document as never);
  });

  test('several models: one operation each, with unique operation ids, in a valid document', async () => {
    const signature: ModelSignature = {
      inputs: [
        { name: 'a', datatype: 'FP32', shape: [-1, 4] },
        { name: 'b', datatype: 'INT32', shape: [-1, 4] },
      ],
      outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 4] }],
    };
    const document = documentWith([
      { shown: 'first', version: '1', signature },
      { shown: 'acme~second', version: '7', signature },
    ]);
    await SwaggerParser.validate(structuredClone(document) as never);
    const paths = document.paths as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.deepEqual(Object.keys(paths).sort(), ['/v2/models/acme~second/infer', '/v2/models/first/infer']);
    assert.notEqual(paths['/v2/models/first/infer'].post.operationId, paths['/v2/models/acme~second/infer'].post.operationId);
    assert.deepEqual(
      paths['/v2/models/first/infer'].post.requestBody.content['application/json'].example.inputs.map((input: { name: string }) => input.name),
      ['a', 'b'],
    );
    assert.equal(paths['/v2/models/first/infer'].post.requestBody.content['application/json'].schema.properties.inputs.items.oneOf.length, 2);
  });
});
