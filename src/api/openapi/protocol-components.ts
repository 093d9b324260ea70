import { datatypes } from '../../protocol/datatypes.js';
import { lowestPriority } from '../../protocol/schedule-parameters.js';

/**
 * The protocol's objects as OpenAPI 3.0 schemas, shared by the generic infer operations and every per-model one
 * (`#/components/schemas/…`). The routes' zod schemas keep `parameters` and `data` loose on purpose (they are read
 * once, while decoding); these say what the server really reads, with enums and examples, so "Try it out" starts
 * from a body that means something instead of `"data": "string"` and `{"additionalProp1": "string"}`.
 */

/** The longest timeout a request may ask for, in microseconds (one hour: src/protocol/schedule-parameters.ts). */
const maxTimeoutMicroseconds = 3_600_000_000;

type Schema = Record<string, unknown>;

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });

/** A `$ref` to one of the schemas below. */
export const protocolSchemaRef = ref;

export const inferenceHeaderLengthHeader = 'Inference-Header-Content-Length';

const requestParameters: Schema = {
  type: 'object',
  description:
    'Request parameters. `priority` and `timeout` are the schedule policy extension; `binary_data_output` the binary tensor extension. ' +
    'Unknown parameters are ignored.',
  properties: {
    priority: {
      type: 'integer',
      minimum: 0,
      maximum: lowestPriority,
      description: "1 is the highest priority, larger numbers lower; absent or 0: the model's defaultPriority (10 unless configured).",
      example: 1,
    },
    timeout: {
      type: 'integer',
      minimum: 0,
      maximum: maxTimeoutMicroseconds,
      description:
        "Microseconds. Absent or 0: the model's inferTimeoutMs, else GANTRY_INFER_TIMEOUT_MS. Past it the answer is 504 DEADLINE_EXCEEDED and a request still queued never runs.",
      example: 200000,
    },
    binary_data_output: {
      type: 'boolean',
      description: 'true: every output comes back as raw bytes after the JSON header (unless the output says binary_data: false).',
      example: false,
    },
  },
  additionalProperties: true,
};

const inputParameters: Schema = {
  type: 'object',
  properties: {
    binary_data_size: {
      type: 'integer',
      minimum: 0,
      description:
        'Binary tensor extension: the input has no `data`; its bytes (little-endian, row-major; BYTES: 4-byte length + bytes per element) follow the JSON header, in the order of `inputs`.',
    },
  },
  additionalProperties: true,
};

const outputParameters: Schema = {
  type: 'object',
  properties: {
    binary_data: { type: 'boolean', description: 'true: this output comes back as raw bytes after the JSON header; false wins over binary_data_output.' },
    classification: {
      type: 'integer',
      minimum: 1,
      description: 'Classification extension: answer the top N classes of the last dimension as BYTES "value:index[:label]", highest first.',
    },
  },
  additionalProperties: true,
};

const answeredOutputParameters: Schema = {
  type: 'object',
  properties: {
    binary_data_size: {
      type: 'integer',
      minimum: 0,
      description: 'The output is binary: this many bytes of it follow the JSON header, in the order of `outputs`.',
    },
  },
  additionalProperties: true,
};

const tensorData: Schema = {
  description:
    'The elements, row-major, flat or nested: numbers (INT64/UINT64 exact at any magnitude, or decimal strings), booleans for BOOL, strings for BYTES. ' +
    'Absent when the tensor is binary (binary_data_size).',
  type: 'array',
  items: {},
  example: [0.5, 0.5, 0.5, 0.5],
};

const datatype: Schema = {
  type: 'string',
  enum: [...datatypes],
  description: 'The tensor element type (BF16 is refused: onnxruntime-node has none).',
  example: 'FP32',
};

const shape: Schema = {
  type: 'array',
  items: { type: 'integer', minimum: 0 },
  description: 'The tensor\'s dimensions; [] is a scalar. A model\'s -1 ("dynamic") dimensions take any size here.',
  example: [1, 4],
};

const inferInput: Schema = {
  type: 'object',
  required: ['name', 'shape', 'datatype'],
  properties: {
    name: { type: 'string', minLength: 1, description: "One of the model's inputs (GET /v2/models/{model} lists them).", example: 'input' },
    shape,
    datatype,
    parameters: ref('InferInputParameters'),
    data: tensorData,
  },
};

const requestedOutput: Schema = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', minLength: 1, example: 'output' }, parameters: ref('InferOutputParameters') },
};

/** A body for the generic operations' example: one FP32 input of shape [1, 4] (a model taking that answers it). */
export const genericInferExample = {
  id: 'request-1',
  inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [0.5, 0.5, 0.5, 0.5] }],
  parameters: { priority: 1, timeout: 200000 },
};

const inferRequest: Schema = {
  type: 'object',
  required: ['inputs'],
  properties: {
    id: { type: 'string', description: 'Echoed in the answer.' },
    parameters: ref('InferRequestParameters'),
    inputs: { type: 'array', minItems: 1, items: ref('InferInput') },
    outputs: { type: 'array', items: ref('InferRequestedOutput'), description: 'The outputs to answer (all of them when absent), and how.' },
  },
  example: genericInferExample,
};

const inferOutput: Schema = {
  type: 'object',
  required: ['name', 'shape', 'datatype'],
  properties: {
    name: { type: 'string' },
    shape: { type: 'array', items: { type: 'integer' } },
    datatype,
    parameters: ref('InferOutputAnswerParameters'),
    data: { ...tensorData, description: 'The elements, flat, row-major (absent for a binary output).' },
  },
};

const inferResponse: Schema = {
  type: 'object',
  required: ['model_name', 'outputs'],
  properties: {
    model_name: { type: 'string' },
    model_version: { type: 'string', description: 'The version that answered.' },
    id: { type: 'string' },
    parameters: { type: 'object', additionalProperties: true },
    outputs: { type: 'array', items: ref('InferOutput') },
  },
  example: { model_name: 'my-model', model_version: '1', id: 'request-1', outputs: [{ name: 'output', shape: [1, 2], datatype: 'FP32', data: [0.25, 0.75] }] },
};

const errorBody: Schema = {
  type: 'object',
  required: ['error', 'code', 'requestId'],
  properties: {
    error: { type: 'string', description: 'What was wrong and how to fix it (5xx: generic; the detail is in the log).' },
    code: { type: 'string', example: 'INVALID_ARGUMENT' },
    requestId: { type: 'string', description: 'The x-request-id of the answer, to find the request in the logs.' },
  },
};

/** The schemas the per-model and generic infer operations refer to, merged into `components.schemas`. */
export const protocolSchemas: Record<string, Schema> = {
  InferRequestParameters: requestParameters,
  InferInputParameters: inputParameters,
  InferOutputParameters: outputParameters,
  InferOutputAnswerParameters: answeredOutputParameters,
  InferInput: inferInput,
  InferRequestedOutput: requestedOutput,
  InferRequest: inferRequest,
  InferOutput: inferOutput,
  InferResponse: inferResponse,
  Error: errorBody,
};

/** The binary tensor extension's request header, as an operation parameter. */
export const inferenceHeaderLengthParameter: Schema = {
  in: 'header',
  name: inferenceHeaderLengthHeader,
  required: false,
  schema: { type: 'integer', minimum: 1 },
  description:
    'Binary tensor extension: the body is this many bytes of JSON (the request as usual, binary inputs carrying parameters.binary_data_size instead of data), ' +
    'then the binary inputs\' raw bytes. Without it the body is JSON. See docs/protocol.md, "Binary tensors with curl".',
};

/** The binary form of an infer body (any Content-Type is read; application/octet-stream is the usual one). */
export const binaryInferBody: Schema = {
  schema: { type: 'string', format: 'binary' },
  // No example: swagger-ui cannot build a JSON-then-bytes body; curl can (docs/protocol.md).
};

/** The binary form of an infer answer: the JSON header, then the binary outputs' bytes. */
export const binaryInferAnswer: Schema = {
  schema: { type: 'string', format: 'binary', description: `The JSON answer (its length in ${inferenceHeaderLengthHeader}), then the binary outputs' bytes.` },
};

/** The answer header of a binary answer. */
export const inferenceHeaderLengthAnswerHeader: Schema = {
  description: 'Present when any output is binary: the length of the JSON part of the body.',
  schema: { type: 'integer' },
};
