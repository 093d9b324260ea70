import type { ModelSignature, TensorSpec } from '../../protocol/signature.js';
import { exampleInferBody, maxExampleElements } from './example-body.js';
import {
  binaryInferAnswer,
  binaryInferBody,
  inferenceHeaderLengthAnswerHeader,
  inferenceHeaderLengthParameter,
  protocolSchemaRef,
} from './protocol-components.js';

/** A READY model as one caller's document shows it. */
export interface ServedModel {
  /** The name the caller sends (bare within its tenant; `<tenant>~<name>` for an admin looking at another tenant's). */
  shown: string;
  /** The version an unpinned request is served by now. */
  version: string;
  signature: ModelSignature;
}

/** The tag every per-model operation carries, so swagger-ui shows them in one section. */
export const servedModelsTag = 'served models';

/** A declared shape as the document prints it: -1 is a dynamic dimension. */
function printedShape(shape: readonly number[]): string {
  return `[${shape.map((dimension) => (dimension < 0 ? '-1' : String(dimension))).join(', ')}]`;
}

function tensorTable(tensors: readonly TensorSpec[]): string {
  const rows = tensors.map((tensor) => `| \`${tensor.name}\` | ${tensor.datatype} | \`${printedShape(tensor.shape)}\` |`);
  return ['| name | datatype | shape |', '| --- | --- | --- |', ...rows].join('\n');
}

/** The schema of one declared input: its name, datatype and rank fixed, its data as the protocol reads it. */
function inputSchema(input: TensorSpec): Record<string, unknown> {
  return {
    type: 'object',
    required: ['name', 'shape', 'datatype'],
    properties: {
      name: { type: 'string', enum: [input.name] },
      datatype: { type: 'string', enum: [input.datatype] },
      shape: {
        type: 'array',
        items: { type: 'integer', minimum: 0 },
        minItems: input.shape.length,
        maxItems: input.shape.length,
        description: `Declared ${printedShape(input.shape)}; -1 takes any size.`,
      },
      parameters: protocolSchemaRef('InferInputParameters'),
      data: { type: 'array', items: {}, description: 'The elements, row-major, flat or nested (absent with parameters.binary_data_size).' },
    },
  };
}

/**
 * The infer operation of one served model (POST /v2/models/{its name}/infer, a concrete path beside the templated
 * one, which OpenAPI matches first): its inputs and outputs, a request schema that names them, and an example body
 * that the model answers with 200 as it is.
 * @param needs the security requirement and scope sentence of the generic infer operation, shared by this one.
 */
export function modelInferOperation(model: ServedModel, needs: { security: unknown; sentence: string }): Record<string, unknown> {
  const example = exampleInferBody(model.signature);
  const inputNames = model.signature.inputs.map((input) => input.name);
  const outputNames = model.signature.outputs.map((output) => output.name);
  const description = [
    `Version ${model.version} serves unpinned requests now (\`POST /v2/models/${model.shown}/versions/{version}/infer\` names one).`,
    '',
    '**Inputs**',
    '',
    tensorTable(model.signature.inputs),
    '',
    '**Outputs**',
    '',
    tensorTable(model.signature.outputs),
    '',
    example === undefined
      ? `No example: the inputs hold more than ${maxExampleElements} elements; send them with the binary tensor extension.`
      : 'The example sets every dynamic dimension (-1) to 1 and fills each input with one value.',
    '',
    needs.sentence,
  ].join('\n');
  const jsonBody = {
    schema: {
      type: 'object',
      required: ['inputs'],
      properties: {
        id: { type: 'string' },
        parameters: protocolSchemaRef('InferRequestParameters'),
        inputs: {
          type: 'array',
          minItems: 1,
          maxItems: inputNames.length,
          items: model.signature.inputs.length === 1 ? inputSchema(model.signature.inputs[0]!) : { oneOf: model.signature.inputs.map(inputSchema) },
        },
        outputs: {
          type: 'array',
          items: {
            type: 'object',
            required: ['name'],
            properties: { name: { type: 'string', enum: outputNames }, parameters: protocolSchemaRef('InferOutputParameters') },
          },
        },
      },
    },
    ...(example === undefined ? {} : { example }),
  };
  return {
    tags: [servedModelsTag],
    operationId: `infer-${model.shown}`,
    summary: `Infer with ${model.shown}: ${inputNames.join(', ')} → ${outputNames.join(', ')}`,
    description,
    security: needs.security,
    parameters: [inferenceHeaderLengthParameter],
    requestBody: { required: true, content: { 'application/json': jsonBody, 'application/octet-stream': binaryInferBody } },
    responses: {
      '200': {
        description: `The outputs of ${model.shown}.`,
        headers: { [String(inferenceHeaderLengthParameter.name)]: inferenceHeaderLengthAnswerHeader },
        content: { 'application/json': { schema: protocolSchemaRef('InferResponse') }, 'application/octet-stream': binaryInferAnswer },
      },
      '4XX': { description: 'The request does not fit the model (the message names the input and what is wrong), or no key/scope.', content: errorContent },
      '5XX': { description: 'Not served now (503, Retry-After), past its timeout (504), or a server fault.', content: errorContent },
    },
  };
}

const errorContent = { 'application/json': { schema: protocolSchemaRef('Error') } };
