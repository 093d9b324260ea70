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

/**
 * Inputs or outputs one operation describes one by one. A model may declare thousands (nothing bounds them at
 * upload): past this the table stops, saying how many more there are, and the request schema names no input, so one
 * model cannot make every document of its tenant (and the admin's) megabytes long.
 */
export const maxTensorsDescribed = 64;

function tensorTable(tensors: readonly TensorSpec[]): string {
  const rows = tensors.slice(0, maxTensorsDescribed).map((tensor) => `| \`${tensor.name}\` | ${tensor.datatype} | \`${printedShape(tensor.shape)}\` |`);
  const more = tensors.length - rows.length;
  const rest = more > 0 ? [`| … ${more} more (GET /v2/models/{model} lists them all) | | |`] : [];
  return ['| name | datatype | shape |', '| --- | --- | --- |', ...rows, ...rest].join('\n');
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
  const { inputs, outputs } = model.signature;
  const described = inputs.length <= maxTensorsDescribed && outputs.length <= maxTensorsDescribed;
  const example = described ? exampleInferBody(model.signature) : undefined;
  const inputNames = inputs.map((input) => input.name);
  const outputNames = outputs.map((output) => output.name);
  const names = (all: string[]) => (all.length <= 4 ? all.join(', ') : `${all.slice(0, 3).join(', ')} and ${all.length - 3} more`);
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
    !described
      ? `No example: the model has more than ${maxTensorsDescribed} inputs or outputs.`
      : example === undefined
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
          items: !described ? protocolSchemaRef('InferInput') : inputs.length === 1 ? inputSchema(inputs[0]!) : { oneOf: inputs.map(inputSchema) },
        },
        outputs: {
          type: 'array',
          items: !described
            ? protocolSchemaRef('InferRequestedOutput')
            : {
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
    summary: `Infer with ${model.shown}: ${names(inputNames)} → ${names(outputNames)}`,
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
