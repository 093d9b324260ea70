import {
  binaryInferAnswer,
  binaryInferBody,
  genericInferExample,
  inferenceHeaderLengthAnswerHeader,
  inferenceHeaderLengthHeader,
  inferenceHeaderLengthParameter,
  protocolSchemaRef,
  protocolSchemas,
} from './protocol-components.js';

/**
 * What the generated document (from the routes' zod schemas) cannot say by itself, added once when it is built:
 * the protocol's objects with their enums and examples, the binary tensor extension's second body form and header,
 * the schedule parameters, and the upload's two request bodies. The routes' validation is untouched: the upload's
 * body is read raw by its handler, and infer bodies are read by inference-body.ts whatever their type.
 */

/* The document is plain JSON from @fastify/swagger: walked loosely, each step checked. */
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const inferPaths = ['/v2/models/{model}/infer', '/v2/models/{model}/versions/{version}/infer'];
const jobPaths = ['/v1/models/{model}/jobs', '/v1/models/{model}/versions/{version}/jobs'];
const uploadOperations: Array<[string, string]> = [
  ['/v1/models/{model}/versions', 'post'],
  ['/v1/models/{model}/versions/{version}', 'put'],
];
const limitOperations = ['/v1/tenants/{tenant}/limits', '/v1/keys/{keyId}/limits'];
const repositoryActions = ['/v2/repository/models/{model}/load', '/v2/repository/models/{model}/unload'];

const binaryExtensionText =
  `Binary tensor extension: send \`${inferenceHeaderLengthHeader}: <bytes of JSON>\` and a body of that JSON followed by the binary inputs' bytes ` +
  "(`parameters.binary_data_size` on each binary input); ask for binary outputs with `parameters.binary_data_output` or an output's `binary_data`. " +
  'Schedule policy: `parameters.priority` (1 highest) and `parameters.timeout` (microseconds). ' +
  '`Prefer: respond-async` makes an asynchronous job instead (202). Per-model operations with real input names and a working example are under "served models" ' +
  '(with a key that may infer or read models).';

function jsonSchemaOf(body: Json | undefined): Json | undefined {
  return body?.content?.['application/json']?.schema as Json | undefined;
}

/** Points an infer-shaped request schema's loose parts (parameters, inputs, outputs) at the protocol's schemas. */
function describeInferRequestSchema(schema: Json | undefined): void {
  const properties = schema?.properties as Json | undefined;
  if (properties === undefined) return;
  if (properties.parameters !== undefined) properties.parameters = protocolSchemaRef('InferRequestParameters');
  if (properties.inputs !== undefined) properties.inputs = { type: 'array', minItems: 1, items: protocolSchemaRef('InferInput') };
  if (properties.outputs !== undefined) properties.outputs = { type: 'array', items: protocolSchemaRef('InferRequestedOutput') };
}

function describeInferOperation(operation: Json): void {
  operation.requestBody = {
    required: true,
    content: {
      'application/json': { schema: protocolSchemaRef('InferRequest'), example: genericInferExample },
      'application/octet-stream': binaryInferBody,
    },
  };
  operation.parameters = [...((operation.parameters as unknown[] | undefined) ?? []), inferenceHeaderLengthParameter];
  const ok = operation.responses?.['200'] as Json | undefined;
  if (ok !== undefined) {
    ok.description = 'The outputs (JSON, or the JSON header then binary outputs when any output is binary).';
    ok.headers = { [inferenceHeaderLengthHeader]: inferenceHeaderLengthAnswerHeader };
    ok.content = { 'application/json': { schema: protocolSchemaRef('InferResponse') }, 'application/octet-stream': binaryInferAnswer };
  }
  operation.description = `${binaryExtensionText}\n\n${String(operation.description ?? '')}`;
}

/** The two bodies an upload takes; the handler reads them raw (model-management.ts), nothing validates them here. */
const uploadBody = {
  required: true,
  description: 'The ONNX file: the raw body, or multipart with the file in `file` and an optional warm-up sample in `warmup`.',
  content: {
    'application/octet-stream': { schema: { type: 'string', format: 'binary', description: 'The ONNX file, as it is.' } },
    'multipart/form-data': {
      schema: {
        type: 'object',
        required: ['file'],
        properties: {
          file: { type: 'string', format: 'binary', description: 'The ONNX file.' },
          warmup: {
            type: 'string',
            description:
              'Optional warm-up sample, a JSON infer request body for this model (at most GANTRY_MAX_WARMUP_BYTES): run on every instance before the version is READY. Leave the field out for none (in /docs: untick "Send empty value"; an empty field is refused as a bad sample).',
            example: '',
          },
        },
      },
      // No `encoding`: swagger-ui would then send `warmup` as a second file part, which the upload refuses (one file).
    },
  },
};

/**
 * Adds what the routes' schemas cannot say to the generated document (`@fastify/swagger`'s transformObject: once,
 * before the document is cached), in place.
 */
export function describeGenericOperations(document: Json): Json {
  const components = (document.components ??= {}) as Json;
  components.schemas = { ...((components.schemas as Json | undefined) ?? {}), ...protocolSchemas };
  const paths = (document.paths ?? {}) as Json;
  for (const path of inferPaths) {
    const operation = paths[path]?.post as Json | undefined;
    if (operation !== undefined) describeInferOperation(operation);
  }
  for (const path of jobPaths) describeInferRequestSchema(jsonSchemaOf(paths[path]?.post?.requestBody as Json | undefined));
  const jobResult = paths['/v1/jobs/{jobId}/result']?.get?.responses?.['200'] as Json | undefined;
  if (jobResult?.content?.['application/json'] !== undefined) jobResult.content['application/json'].schema = protocolSchemaRef('InferResponse');
  for (const [path, method] of uploadOperations) {
    const operation = paths[path]?.[method] as Json | undefined;
    if (operation !== undefined) operation.requestBody = uploadBody;
  }
  // A PUT of limits takes what the GET answers (every field optional; {} removes them all).
  for (const path of limitOperations) {
    const answer = jsonSchemaOf(paths[path]?.get?.responses?.['200'] as Json | undefined);
    const body = paths[path]?.put?.requestBody?.content?.['application/json'] as Json | undefined;
    if (answer !== undefined && body !== undefined) body.schema = answer;
  }
  for (const path of repositoryActions) {
    const parameters = jsonSchemaOf(paths[path]?.post?.requestBody as Json | undefined)?.properties?.parameters as Json | undefined;
    if (parameters !== undefined) {
      parameters.description =
        "Triton's repository parameters: `unload_dependents` is accepted (no Gantry model has dependents); `config` and `file:…` are 501.";
      parameters.example = {};
    }
  }
  return document;
}
