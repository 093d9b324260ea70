import type { Authenticator } from '../auth/authenticator.js';
import type { InferenceCall, InferenceResult } from '../inference/inference-call.js';
import type { ModelCatalog } from '../inference/model-catalog.js';
import { modelMetadata, modelReadiness, type ServingSource } from '../inference/model-metadata-view.js';
import { serverMetadata, unreadyReason, type ReadinessSources } from '../inference/server-status.js';
import type { GrpcCallContext, StreamOfUnary, UnaryHandlers } from './grpc-call-context.js';
import { inferenceCallOf, type WireInferRequest } from './infer-request.js';
import { inferResponseOf } from './infer-response.js';

/** The data plane as the gRPC transport uses it (src/inference/inference-service.ts). */
export interface InferenceRunner {
  infer(call: InferenceCall): Promise<InferenceResult>;
}

/** What the Open Inference Protocol's own methods need. */
export interface InferenceMethodSources extends ReadinessSources {
  catalog: ModelCatalog;
  inference: InferenceRunner;
  authenticator: Authenticator | undefined;
  /** Worker pools: a model no live worker serves is not ready (REST says why; gRPC's answer has no field for it). */
  liveWorkers?: ServingSource;
}

/** ModelReadyRequest and ModelMetadataRequest; an empty field is absent (proto3 does not send it). */
interface ModelRequest {
  name?: string;
  version?: string;
}

/** The version as the views take it: the protocol's empty string means the default version. */
function versionOf(request: ModelRequest): string | undefined {
  return request.version === '' ? undefined : request.version;
}

/**
 * The Open Inference Protocol's methods of `inference.GRPCInferenceService`: health, metadata and ModelInfer. Each
 * is a thin adapter over the same view or service its REST twin calls, so both transports answer alike.
 */
export function inferenceMethods(sources: InferenceMethodSources): UnaryHandlers {
  return {
    ServerLive: async () => ({ live: true }),
    // Unlike REST (503), gRPC answers readiness as a value: the call itself succeeded.
    ServerReady: async () => ({ ready: unreadyReason(sources) === undefined }),
    ServerMetadata: async () => serverMetadata(),
    ModelReady: async (request: ModelRequest, context: GrpcCallContext) => {
      const readiness = await modelReadiness(sources.catalog, context.principal, request.name ?? '', versionOf(request), sources.liveWorkers);
      return { ready: readiness.ready };
    },
    ModelMetadata: async (request: ModelRequest, context: GrpcCallContext) => {
      const metadata = await modelMetadata(sources.catalog, context.principal, request.name ?? '', versionOf(request));
      const tensors = (specs: typeof metadata.inputs) => specs.map((spec) => ({ name: spec.name, datatype: spec.datatype, shape: spec.shape.map(String) }));
      return {
        name: metadata.name,
        versions: metadata.versions,
        platform: metadata.platform,
        inputs: tensors(metadata.inputs),
        outputs: tensors(metadata.outputs),
      };
    },
    ModelInfer: async (request: WireInferRequest, context: GrpcCallContext) => {
      const call = inferenceCallOf(request, context);
      context.usage = call.usage;
      context.bytesIn = request.raw_input_contents.reduce((total, bytes) => total + bytes.byteLength, 0);
      const response = inferResponseOf(await sources.inference.infer(call));
      context.bytesOut = response.raw_output_contents.reduce((total, bytes) => total + bytes.byteLength, 0);
      return response;
    },
  } as UnaryHandlers;
}

/**
 * ModelStreamInfer: every ModelInferRequest on the stream is answered as ModelInfer answers it, wrapped in a
 * ModelStreamInferResponse; a request that fails is answered with its error's message and the stream goes on.
 */
export function inferenceStreams(methods: UnaryHandlers): Record<string, StreamOfUnary> {
  return {
    ModelStreamInfer: {
      handler: methods.ModelInfer!,
      answer: (response) => ({ error_message: '', infer_response: response }),
      failure: (message) => ({ error_message: message }),
    },
  };
}
