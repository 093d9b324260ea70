import { z } from 'zod';
import type { Principal } from '../auth/principal.js';
import type { Config } from '../config.js';
import { ErrorCode, GantryError, errors } from '../errors.js';
import type { Datatype } from '../protocol/datatypes.js';
import { onnxPlatform } from '../protocol/oip-schemas.js';
import type { ModelSignature, TensorSpec } from '../protocol/signature.js';
import { canBatch } from '../registry/batching-support.js';
import { modelConfigSchema, type ModelConfig, type ModelConfigStore } from '../registry/model-config.js';
import type { ModelVersion } from '../registry/model-registry.js';
import type { TrafficPolicy } from '../registry/traffic-policy.js';
import type { ModelCatalog } from './model-catalog.js';
import { forModel, requestedModel } from './requested-model.js';
import { checkVersion } from './requested-version.js';
import { describedVersion, productionAlias, type AliasTable } from './serving-version.js';

/** Triton's names for the protocol's datatypes (model_config.proto's DataType; BYTES is TYPE_STRING there). */
export const tritonDataTypes: Record<Datatype, string> = {
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
 * The model configuration extension's answer (extension_model_configuration.md): the JSON form of Triton's
 * ModelConfig message, for the fields Gantry has, plus `versions` and `gantry`, the full run-time configuration
 * as `PUT /v1/models/{m}/config` takes it. REST sends it as it is; gRPC fills the ModelConfig message of
 * proto/model_config.proto from the same object (without `versions` and `gantry`, which Triton's message lacks).
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

const instanceKinds = { cpu: 'KIND_CPU', cuda: 'KIND_GPU', auto: 'KIND_AUTO' } as const;

/** The server settings a configuration answer shows. */
export interface ConfigDefaults {
  inferTimeoutMs: number;
  device: keyof typeof instanceKinds;
}

/** Builds the Triton view of a model's configuration from its run-time configuration and a version's signature. */
export function tritonModelConfig(name: string, versions: string[], signature: ModelSignature, config: ModelConfig, server: ConfigDefaults): TritonModelConfig {
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
 * The version a configuration describes: the named version or alias's (any state, as long as a worker has read its
 * signature), or else the one that serves (serving-version.ts; with a traffic split, its heaviest READY version, as
 * metadata answers); a model with nothing that can serve (e.g. unloaded)
 * is described by the version `production` points at, else its newest version with a known signature, so its
 * configuration can be read and changed before it is loaded again.
 */
function configuredVersion(
  versions: ModelVersion[],
  aliases: AliasTable,
  traffic: TrafficPolicy,
  model: string,
  version: string | undefined,
): ModelVersion & { signature: ModelSignature } {
  const described = describeOrUnavailable(versions, aliases, traffic, model, version);
  if (described !== undefined) {
    if (described.signature === undefined) throw errors.modelNotReady(model, described.version, described.state);
    return described as ModelVersion & { signature: ModelSignature };
  }
  const pinned = versions.find((candidate) => candidate.version === aliases.get(productionAlias) && candidate.signature !== undefined);
  const chosen = pinned ?? [...versions].reverse().find((candidate) => candidate.signature !== undefined);
  if (chosen === undefined) throw errors.noReadyVersion(model);
  return chosen as ModelVersion & { signature: ModelSignature };
}

/** The described version, or undefined when nothing named can serve (only then: a named version is described in any state). */
function describeOrUnavailable(
  versions: ModelVersion[],
  aliases: AliasTable,
  traffic: TrafficPolicy,
  model: string,
  version: string | undefined,
): ModelVersion | undefined {
  try {
    return describedVersion(model, versions, aliases, version, traffic);
  } catch (error) {
    if (version === undefined && error instanceof GantryError && error.code === ErrorCode.Unavailable) return undefined;
    throw error;
  }
}

/** What describing a configuration reads. */
export interface ModelConfigSources {
  catalog: ModelCatalog;
  modelConfigs: ModelConfigStore;
  config: Pick<Config, 'GANTRY_INFER_TIMEOUT_MS' | 'GANTRY_DEVICE'>;
}

/**
 * A model's configuration as `principal` may see it (REST GET …/config, gRPC ModelConfig).
 * @throws 400 for a malformed name or version; 404 for a model or version the caller cannot see; 503 when no
 * version has a known signature yet.
 */
export async function describeModelConfig(
  sources: ModelConfigSources,
  principal: Principal,
  modelName: string,
  requestedVersion?: string,
): Promise<TritonModelConfig> {
  const model = requestedModel(principal, modelName);
  const version = checkVersion(requestedVersion);
  return forModel(model, async () => {
    const versions = await sources.catalog.versions(model.qualified);
    if (versions.length === 0) throw errors.modelNotFound(model.qualified);
    const [aliases, traffic] = await Promise.all([sources.catalog.aliases(model.qualified), sources.catalog.traffic(model.qualified)]);
    const described = configuredVersion(versions, aliases, traffic, model.qualified, version);
    return tritonModelConfig(
      model.shown,
      versions.map((candidate) => candidate.version),
      described.signature,
      await sources.modelConfigs.get(model.qualified),
      { inferTimeoutMs: sources.config.GANTRY_INFER_TIMEOUT_MS, device: sources.config.GANTRY_DEVICE },
    );
  });
}
