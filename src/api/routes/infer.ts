import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { Readable } from 'node:stream';
import type { z } from 'zod';
import { ErrorCode, GantryError, describeValue, errors } from '../../errors.js';
import {
  bf16Message,
  encodeInferResponseParts,
  inferenceHeaderContentLength,
  takeBinaryInputs,
  wantsBinaryOutput,
  type ResponseOutput,
} from '../../protocol/binary-extension.js';
import { classificationParameter, classify } from '../../protocol/classification.js';
import { isDatatype } from '../../protocol/datatypes.js';
import type { DecodedInputData } from '../../protocol/decoded-json-body.js';
import { decodeErrorFromWire, decodeJsonData, isNestingTooDeep } from '../../protocol/json-tensor-codec.js';
import { errorBodySchema, inferRequestSchema, inferResponseSchema, type InferRequestBody } from '../../protocol/oip-schemas.js';
import { readScheduleParameters } from '../../protocol/schedule-parameters.js';
import type { Tensor, TensorDescriptor } from '../../protocol/tensor.js';
import { checkBytesElementCount, resolveRequestedOutputs, validateInputs } from '../../protocol/validate-inputs.js';
import { executionConfigOf } from '../../registry/model-config.js';
import { inCallersTerms, requestedModel } from '../../inference/requested-model.js';
import { checkVersion } from '../../inference/requested-version.js';
import { modelParamsSchema, modelVersionParamsSchema } from '../route-params.js';
import { registerInferenceBodyReading } from '../inference-body.js';
import type { ApiServices } from '../services.js';

function outcomeLabel(error: unknown): string {
  if (!(error instanceof GantryError)) return 'error';
  switch (error.code) {
    case ErrorCode.InvalidArgument:
    case ErrorCode.NotFound:
    case ErrorCode.PayloadTooLarge:
    case ErrorCode.Cancelled:
      return 'client_error';
    case ErrorCode.DeadlineExceeded:
      return 'timeout';
    case ErrorCode.Unavailable:
    case ErrorCode.ResourceExhausted:
      return 'unavailable';
    default:
      return 'error';
  }
}

function describeInputs(body: InferRequestBody): TensorDescriptor[] {
  return body.inputs.map((input) => {
    if (input.datatype === 'BF16') throw errors.invalidArgument(`Input '${input.name}': ${bf16Message}`);
    if (!isDatatype(input.datatype)) {
      throw errors.invalidArgument(
        `Input '${input.name}': unsupported datatype ${describeValue(input.datatype)}; supported are BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64 and BYTES.`,
      );
    }
    return { name: input.name, datatype: input.datatype, shape: input.shape };
  });
}

/** An input's data as a parse thread decoded it: its bytes, or the error decodeJsonData threw there. */
function takeDecoded(decoded: DecodedInputData | undefined, inputName: string): Uint8Array {
  // The thread decodes every input whose name, datatype and shape passed the checks that come before this.
  if (decoded === undefined) throw errors.internal(`Input '${inputName.slice(0, 100)}' was not decoded by the JSON parse thread.`);
  if (decoded.error !== undefined) throw decodeErrorFromWire(decoded.error);
  return decoded.bytes;
}

/**
 * Decodes every input once into raw bytes: binary-extension inputs are taken as they are, JSON ones parsed, or,
 * for a body a parse thread decoded (`decoded`, by input index), taken from there in the same order, so the
 * first bad input gives the same error either way.
 */
function decodeInputs(
  body: InferRequestBody,
  descriptors: TensorDescriptor[],
  binary: Buffer | undefined,
  decoded: Array<DecodedInputData | undefined> | undefined,
): Tensor[] {
  const usesBinary = binary !== undefined || body.inputs.some((input) => input.parameters?.binary_data_size !== undefined);
  const binaryInputs = usesBinary
    ? takeBinaryInputs(body.inputs.map((input, index) => ({ ...input, datatype: descriptors[index]!.datatype })), binary ?? Buffer.alloc(0))
    : new Map<string, Uint8Array>();
  return body.inputs.map((input, index) => {
    const descriptor = descriptors[index]!;
    const data =
      binaryInputs.get(input.name) ??
      (decoded === undefined ? decodeJsonData(input.name, descriptor.datatype, input.shape, input.data) : takeDecoded(decoded[index], input.name));
    return { ...descriptor, data };
  });
}

/** Aborts when the client closes the connection before its response was written. */
function clientGone(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  return controller.signal;
}

function readClassification(outputName: string, parameters: Record<string, unknown> | undefined): number | undefined {
  const value = parameters?.[classificationParameter];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw errors.invalidArgument(`Output '${outputName}': parameter 'classification' must be a positive integer, got ${describeValue(value)}.`);
  }
  return value;
}

/**
 * POST /v2/models/{m}[/versions/{v}]/infer — the protocol's inference call, with JSON tensors or the binary
 * tensor extension in both directions, the schedule policy parameters and the classification extension.
 */
export async function inferRoutes(app: FastifyInstance, services: ApiServices): Promise<void> {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  const { catalog, producer, config, metrics } = services;

  registerInferenceBodyReading(app, services);

  /** Runs `check`; when it throws a limit's error (all its errors, or those `isLimit` picks), counts the limit. */
  const checkLimit = <T>(limit: string, check: () => T, isLimit: (error: unknown) => boolean = () => true): T => {
    try {
      return check();
    } catch (error) {
      if (isLimit(error)) metrics.limitRejections.inc({ limit });
      throw error;
    }
  };

  const handle = async (request: FastifyRequest, body: InferRequestBody, modelName: string, requestedVersion: string | undefined, reply: FastifyReply) => {
    const started = process.hrtime.bigint();
    // Resolved in the caller's tenant before anything is looked up: another tenant's model is not found.
    const requested = requestedModel(request.principal, modelName);
    const model = requested.qualified;
    const version = checkVersion(requestedVersion);
    // Until the model is known the label stays generic: names from the URL would make the label unbounded.
    let labels = { model: '', version: '' };
    try {
      if (!services.isAcceptingWork()) throw errors.shuttingDown();
      const serving = await catalog.serving(model, version);
      labels = { model, version: serving.version };
      request.usage = { model, version: serving.version }; // metered by plugins/usage-metering.ts
      const modelConfig = await catalog.config(model);
      const descriptors = describeInputs(body);
      validateInputs(serving.signature, descriptors);
      checkLimit('bytes_elements', () => checkBytesElementCount(descriptors, config.GANTRY_MAX_BYTES_ELEMENTS));
      const inputs = checkLimit('nesting_depth', () => decodeInputs(body, descriptors, request.inferBody?.binary, request.inferBody?.decoded), isNestingTooDeep);
      const outputParameters = new Map((body.outputs ?? []).map((output) => [output.name, output.parameters]));
      const outputNames = resolveRequestedOutputs(serving.signature, body.outputs?.map((output) => output.name));
      const classifications = new Map(outputNames.map((name) => [name, readClassification(name, outputParameters.get(name))]));
      const binaryOutputs = new Map(outputNames.map((name) => [name, wantsBinaryOutput(body.parameters, outputParameters.get(name), name)]));
      const schedule = readScheduleParameters(body.parameters);
      const timeoutMs = schedule.timeoutMicroseconds !== undefined ? schedule.timeoutMicroseconds / 1000 : (modelConfig.inferTimeoutMs ?? config.GANTRY_INFER_TIMEOUT_MS);

      const outcome = await producer.submit(
        { model, version: serving.version, sha256: serving.sha256, settings: executionConfigOf(modelConfig) },
        {
          inputs,
          outputs: outputNames,
          deadline: Date.now() + timeoutMs,
          timeoutMs,
          priority: schedule.priority ?? modelConfig.defaultPriority,
          signal: clientGone(reply),
          maxQueueSize: modelConfig.maxQueueSize,
          // The worker refuses outputs past these before sending them (classified outputs are small: not JSON-limited).
          outputLimits: {
            maxOutputBytes: config.GANTRY_MAX_RESPONSE_BYTES,
            maxJsonOutputElements: config.GANTRY_MAX_JSON_OUTPUT_ELEMENTS,
            jsonOutputs: outputNames.filter((name) => binaryOutputs.get(name) !== true && classifications.get(name) === undefined),
          },
        },
      );
      request.usage = { model, version: serving.version, rows: outcome.rows, computeNs: outcome.computeNs };

      const outputs: ResponseOutput[] = outcome.outputs.map((tensor) => {
        const topN = classifications.get(tensor.name);
        return { tensor: topN === undefined ? tensor : classify(tensor, topN, modelConfig.labels), binary: binaryOutputs.get(tensor.name) ?? false };
      });
      const response = encodeInferResponseParts({ model_name: requested.shown, model_version: serving.version, ...(body.id === undefined ? {} : { id: body.id }) }, outputs);
      metrics.inferenceRequests.inc({ ...labels, outcome: 'success' });
      metrics.inferenceDuration.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
      // Without binary outputs the body is the plain JSON response object.
      if (response.parts === undefined) return response.json as z.infer<typeof inferResponseSchema>;
      // The header and the tensors go out as they are, without first being copied into one buffer.
      return reply
        .header(inferenceHeaderContentLength, String(response.headerLength))
        .header('content-length', String(response.byteLength))
        .type('application/octet-stream')
        .send(Readable.from(response.parts, { objectMode: false }));
    } catch (error) {
      metrics.inferenceRequests.inc({ ...labels, outcome: outcomeLabel(error) });
      throw inCallersTerms(error, requested);
    }
  };

  const responses = { 200: inferResponseSchema, '4xx': errorBodySchema, '5xx': errorBodySchema };
  typed.post(
    '/v2/models/:model/infer',
    { schema: { tags: ['inference'], summary: 'Run an inference on the newest READY version', params: modelParamsSchema, body: inferRequestSchema, response: responses } },
    async (request, reply) => handle(request, request.body, request.params.model, undefined, reply),
  );
  typed.post(
    '/v2/models/:model/versions/:version/infer',
    { schema: { tags: ['inference'], summary: 'Run an inference on one version', params: modelVersionParamsSchema, body: inferRequestSchema, response: responses } },
    async (request, reply) => handle(request, request.body, request.params.model, request.params.version, reply),
  );
}
