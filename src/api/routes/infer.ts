import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { ErrorCode, GantryError, errors } from '../../errors.js';
import { isDatatype } from '../../protocol/datatypes.js';
import { decodeJsonData, encodeJsonData } from '../../protocol/json-tensor-codec.js';
import { errorBodySchema, inferRequestSchema, inferResponseSchema, type InferRequestBody } from '../../protocol/oip-schemas.js';
import type { Tensor, TensorDescriptor } from '../../protocol/tensor.js';
import { resolveRequestedOutputs, validateInputs } from '../../protocol/validate-inputs.js';
import { checkModelName, checkVersion, modelParamsSchema, modelVersionParamsSchema } from '../route-params.js';
import type { ApiServices } from '../services.js';

function outcomeLabel(error: unknown): string {
  if (!(error instanceof GantryError)) return 'error';
  switch (error.code) {
    case ErrorCode.InvalidArgument:
    case ErrorCode.NotFound:
    case ErrorCode.PayloadTooLarge:
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
    if (!isDatatype(input.datatype)) {
      throw errors.invalidArgument(
        `Input '${input.name}': unsupported datatype '${input.datatype}'; supported are BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64 and BYTES.`,
      );
    }
    return { name: input.name, datatype: input.datatype, shape: input.shape };
  });
}

/** POST /v2/models/{m}[/versions/{v}]/infer — the Open Inference Protocol's inference call (JSON tensors). */
export async function inferRoutes(app: FastifyInstance, services: ApiServices): Promise<void> {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  const { catalog, producer, config, metrics } = services;

  const handle = async (body: InferRequestBody, modelName: string, requestedVersion: string | undefined) => {
    const started = process.hrtime.bigint();
    const model = checkModelName(modelName);
    const version = checkVersion(requestedVersion);
    let labels = { model, version: version ?? '' };
    try {
      if (!services.isAcceptingWork()) throw errors.shuttingDown();
      const serving = await catalog.serving(model, version);
      labels = { model, version: serving.version };
      const descriptors = describeInputs(body);
      validateInputs(serving.signature, descriptors);
      const inputs: Tensor[] = body.inputs.map((input, index) => ({
        ...descriptors[index]!,
        data: decodeJsonData(input.name, descriptors[index]!.datatype, input.shape, input.data),
      }));
      const outputNames = resolveRequestedOutputs(serving.signature, body.outputs?.map((output) => output.name));
      const outcome = await producer.submit(
        { model, version: serving.version, sha256: serving.sha256 },
        { inputs, outputs: outputNames, deadline: Date.now() + config.GANTRY_INFER_TIMEOUT_MS },
      );
      metrics.inferenceRequests.inc({ ...labels, outcome: 'success' });
      metrics.inferenceDuration.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
      return {
        model_name: model,
        model_version: serving.version,
        ...(body.id === undefined ? {} : { id: body.id }),
        outputs: outcome.outputs.map((output) => ({
          name: output.name,
          datatype: output.datatype,
          shape: output.shape,
          data: encodeJsonData(output.datatype, output.data),
        })),
      };
    } catch (error) {
      metrics.inferenceRequests.inc({ ...labels, outcome: outcomeLabel(error) });
      throw error;
    }
  };

  const responses = { 200: inferResponseSchema, '4xx': errorBodySchema, '5xx': errorBodySchema };
  typed.post(
    '/v2/models/:model/infer',
    { schema: { tags: ['inference'], summary: 'Run an inference on the newest READY version', params: modelParamsSchema, body: inferRequestSchema, response: responses } },
    async (request) => handle(request.body, request.params.model, undefined),
  );
  typed.post(
    '/v2/models/:model/versions/:version/infer',
    { schema: { tags: ['inference'], summary: 'Run an inference on one version', params: modelVersionParamsSchema, body: inferRequestSchema, response: responses } },
    async (request) => handle(request.body, request.params.model, request.params.version),
  );
}
