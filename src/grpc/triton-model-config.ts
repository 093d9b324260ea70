import { describeModelConfig, type ModelConfigSources, type TritonModelConfig } from '../inference/model-config-view.js';
import type { UnaryHandler, UnaryHandlers } from './grpc-call-context.js';

/** `ModelConfigRequest` as @grpc/proto-loader decodes it (`keepCase`, no defaults: an empty field is absent). */
interface WireModelConfigRequest {
  name?: string;
  version?: string;
}

/**
 * Triton's ModelConfig message (proto/model_config.proto) from the view REST answers with: the same values,
 * without `versions` and `gantry`, which the message does not have. Enum values go by name (TYPE_FP32,
 * KIND_CPU), which the serializer takes as it takes numbers.
 */
export function modelConfigMessage(view: TritonModelConfig): Record<string, unknown> {
  return {
    name: view.name,
    platform: view.platform,
    backend: view.backend,
    max_batch_size: view.max_batch_size,
    input: view.input.map((tensor) => ({ name: tensor.name, data_type: tensor.data_type, dims: tensor.dims })),
    output: view.output.map((tensor) => ({ name: tensor.name, data_type: tensor.data_type, dims: tensor.dims })),
    instance_group: view.instance_group,
    ...(view.dynamic_batching === undefined ? {} : { dynamic_batching: view.dynamic_batching }),
    parameters: view.parameters,
  };
}

/** ModelConfig (Triton's extension): the configuration REST's GET /v2/models/{m}[/versions/{v}]/config answers, as a message. */
export function tritonModelConfigHandlers(sources: ModelConfigSources): UnaryHandlers {
  const modelConfig: UnaryHandler<WireModelConfigRequest> = async (request, context) => ({
    config: modelConfigMessage(await describeModelConfig(sources, context.principal, request.name ?? '', request.version)),
  });
  return { ModelConfig: modelConfig as UnaryHandler<never, unknown> };
}
