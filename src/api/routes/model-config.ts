import type { FastifyInstance, FastifyRequest, FastifySchemaCompiler } from 'fastify';
import { validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errors } from '../../errors.js';
import { errorBodySchema, onnxPlatform } from '../../protocol/oip-schemas.js';
import type { Datatype } from '../../protocol/datatypes.js';
import type { ModelSignature, TensorSpec } from '../../protocol/signature.js';
import { modelConfigPatchSchema, modelConfigSchema, type ModelConfig } from '../../registry/model-config.js';
import type { ModelVersion } from '../../registry/model-registry.js';
import { forModel, requestedModel } from '../../inference/requested-model.js';
import { checkVersion } from '../../inference/requested-version.js';
import { modelParamsSchema, modelVersionParamsSchema } from '../route-params.js';
import type { ApiServices } from '../services.js';

/** Triton's names for the protocol's datatypes (model_config.proto's DataType; BYTES is TYPE_STRING there). */
const tritonDataTypes: Record<Datatype, string> = {
  BOOL: 'TYPE_BOOL',
  UINT8: 'TYPE_UINT8',
  UINT16: 'TYPE_UINT16',
  UINT32: 'TYPE_UINT32',
  UINT64: 'TYPE_UINT64',
  INT8: 'TYPE_INT8',
  INT16: 'TYPE_INT16',
  INT32: 'TYPE_INT32',
  INT64: 'TYPE_INT64',
  FP16: 'TYPE_FP16',
  FP32: 'TYPE_FP32',
  FP64: 'TYPE_FP64',
  BYTES: 'TYPE_STRING',
};

const tensorConfigSchema = z.object({ name: z.string(), data_type: z.string(), dims: z.array(z.number()) });

/**
 * The model configuration extension's response (extension_model_configuration.md, "HTTP/REST"): the JSON form
 * of Triton's ModelConfig message, for the fields Gantry has, plus `versions` and `gantry`, the full
 * run-time configuration as `PUT /v1/models/{m}/config` takes it.
 */
export const tritonModelConfigSchema = z.object({
  name: z.string(),
  platform: z.string(),
  backend: z.string(),
  versions: z.array(z.string()),
  max_batch_size: z.number(),
  input: z.array(tensorConfigSchema),
  output: z.array(tensorConfigSchema),
  instance_group: z.array(z.object({ name: z.string(), count: z.number(), kind: z.string() })),
  dynamic_batching: z
    .object({
      preferred_batch_size: z.array(z.number()),
      max_queue_delay_microseconds: z.number(),
      default_queue_policy: z.object({ max_queue_size: z.number(), default_timeout_microseconds: z.number() }),
    })
    .optional()
    .describe('Present only when the model batches (max_batch_size > 0).'),
  parameters: z.record(z.string(), z.object({ string_value: z.string() })),
  gantry: modelConfigSchema,
});
export type TritonModelConfig = z.infer<typeof tritonModelConfigSchema>;

/** A model can batch when every input and output has a dynamic first dimension to stack requests along. */
export function canBatch(signature: ModelSignature): boolean {
  return [...signature.inputs, ...signature.outputs].every((tensor) => tensor.shape.length >= 1 && tensor.shape[0] === -1);
}

const instanceKinds = { cpu: 'KIND_CPU', cuda: 'KIND_GPU', auto: 'KIND_AUTO' } as const;

/** Builds the Triton view of a model's configuration from its run-time configuration and a version's signature. */
export function tritonModelConfig(
  name: string,
  versions: string[],
  signature: ModelSignature,
  config: ModelConfig,
  server: { inferTimeoutMs: number; device: keyof typeof instanceKinds },
): TritonModelConfig {
  const batching = config.maxBatchSize > 0 && canBatch(signature);
  // Triton's convention: when max_batch_size > 0 the batch dimension is implicit and left out of `dims`;
  // when it is 0 the dims are the full shape. -1 marks a dynamic dimension in both.
  const tensor = (spec: TensorSpec) => ({
    name: spec.name,
    data_type: tritonDataTypes[spec.datatype] ?? `TYPE_${spec.datatype}`,
    dims: batching ? spec.shape.slice(1) : [...spec.shape],
  });
  return {
    name,
    platform: onnxPlatform,
    backend: 'onnxruntime',
    versions,
    max_batch_size: batching ? config.maxBatchSize : 0,
    input: signature.inputs.map(tensor),
    output: signature.outputs.map(tensor),
    instance_group: [{ name: name, count: config.instances, kind: instanceKinds[server.device] }],
    ...(batching
      ? {
          dynamic_batching: {
            preferred_batch_size: config.preferredBatchSizes,
            max_queue_delay_microseconds: config.maxQueueDelayMicroseconds,
            default_queue_policy: {
              max_queue_size: config.maxQueueSize,
              default_timeout_microseconds: (config.inferTimeoutMs ?? server.inferTimeoutMs) * 1000,
            },
          },
        }
      : {}),
    // The onnxruntime settings, under the parameter names Triton's onnxruntime backend reads where it has them.
    parameters: {
      intra_op_thread_count: { string_value: String(config.intraOpThreads) },
      inter_op_thread_count: { string_value: String(config.interOpThreads) },
      graph_optimization_level: { string_value: config.graphOptimizationLevel },
      optimized_model_cache: { string_value: String(config.optimizedModelCache) },
    },
    gantry: config,
  };
}

/**
 * The version a configuration describes: the named one (any state, as long as a worker has read its
 * signature), or else the newest READY one; a model none of whose versions is READY (e.g. unloaded) is
 * described by its newest version with a known signature, so its configuration can be read and changed
 * before it is loaded again.
 */
function describedVersion(versions: ModelVersion[], model: string, version: string | undefined): ModelVersion & { signature: ModelSignature } {
  if (version !== undefined) {
    const found = versions.find((candidate) => candidate.version === version);
    if (found === undefined) throw errors.modelNotFound(model, version);
    if (found.signature === undefined) throw errors.modelNotReady(model, version, found.state);
    return found as ModelVersion & { signature: ModelSignature };
  }
  const newestFirst = [...versions].reverse();
  const chosen =
    newestFirst.find((candidate) => candidate.state === 'READY' && candidate.signature !== undefined) ??
    newestFirst.find((candidate) => candidate.signature !== undefined);
  if (chosen === undefined) throw errors.noReadyVersion(model);
  return chosen as ModelVersion & { signature: ModelSignature };
}

/**
 * The body of PUT …/config is checked by ModelConfigStore.update, whose messages name the field; the route's
 * schema is there for the OpenAPI document, so the body passes the schema-level validation untouched.
 */
const bodyCheckedByHandler: FastifySchemaCompiler<any> = (route) => {
  if (route.httpPart === 'body') return (data: unknown) => ({ value: data });
  return validatorCompiler(route as Parameters<typeof validatorCompiler>[0]);
};

/** Model configuration extension (GET /v2/models/{m}[/versions/{v}]/config) and PUT /v1/models/{m}/config. */
export async function modelConfigRoutes(app: FastifyInstance, services: ApiServices): Promise<void> {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  const { catalog, registry, modelConfigs, config: serverConfig } = services;

  const describe = async (request: FastifyRequest, modelName: string, requestedVersion: string | undefined): Promise<TritonModelConfig> => {
    const model = requestedModel(request.principal, modelName);
    const version = checkVersion(requestedVersion);
    return forModel(model, async () => {
      const versions = await catalog.versions(model.qualified);
      if (versions.length === 0) throw errors.modelNotFound(model.qualified);
      const described = describedVersion(versions, model.qualified, version);
      return tritonModelConfig(
        model.shown,
        versions.map((candidate) => candidate.version),
        described.signature,
        await modelConfigs.get(model.qualified),
        { inferTimeoutMs: serverConfig.GANTRY_INFER_TIMEOUT_MS, device: serverConfig.GANTRY_DEVICE },
      );
    });
  };

  const responses = { 200: tritonModelConfigSchema, '4xx': errorBodySchema, '5xx': errorBodySchema };
  typed.get(
    '/v2/models/:model/config',
    { schema: { tags: ['models'], summary: 'Model configuration (Triton ModelConfig JSON plus Gantry settings)', params: modelParamsSchema, response: responses } },
    async (request) => describe(request, request.params.model, undefined),
  );
  typed.get(
    '/v2/models/:model/versions/:version/config',
    { schema: { tags: ['models'], summary: 'Model configuration as seen by one version', params: modelVersionParamsSchema, response: responses } },
    async (request) => describe(request, request.params.model, request.params.version),
  );

  typed.put(
    '/v1/models/:model/config',
    {
      schema: {
        tags: ['management'],
        summary: 'Change a model\'s run-time configuration (any subset of the fields; null resets a field to its default)',
        params: modelParamsSchema,
        body: modelConfigPatchSchema,
        response: { 200: modelConfigSchema, '4xx': errorBodySchema, '5xx': errorBodySchema },
      },
      validatorCompiler: bodyCheckedByHandler,
    },
    async (request) => {
      const model = requestedModel(request.principal, request.params.model);
      return forModel(model, async () => {
        if (!(await registry.modelExists(model.qualified))) throw errors.modelNotFound(model.qualified);
        const updated = await modelConfigs.update(model.qualified, request.body as unknown, { maxThreadsPerWorker: serverConfig.GANTRY_MAX_THREADS_PER_WORKER });
        catalog.invalidate(model.qualified);
        return updated;
      });
    },
  );
}
