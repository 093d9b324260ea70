import type { Registry } from 'prom-client';
import type { Config } from '../config.js';
import type { InflightBytes } from '../limits/inflight-bytes.js';
import type { RequestAdmission } from '../limits/request-admission.js';
import type { Logger } from '../logger.js';
import { createGrpcMetrics } from '../metrics/grpc-metrics.js';
import type { UsageRecorder } from '../usage/usage-recorder.js';
import { GrpcServer } from './grpc-server.js';
import { HealthService } from './health-service.js';
import { inferenceCallGate } from './inference-call-gate.js';
import { inferenceMethods, inferenceStreams, type InferenceMethodSources } from './inference-methods.js';
import { tritonModelConfigHandlers } from './triton-model-config.js';
import { tritonModelStatisticsHandlers } from './triton-model-statistics.js';
import { tritonRepositoryHandlers } from './triton-repository.js';

/** What the gRPC methods read: the API role's services (ApiServices fits) and the inference service. */
export type GrpcEndpointSources = InferenceMethodSources &
  Parameters<typeof tritonModelConfigHandlers>[0] &
  Parameters<typeof tritonModelStatisticsHandlers>[0] &
  Parameters<typeof tritonRepositoryHandlers>[0] & {
    config: Pick<Config, 'HOST' | 'GANTRY_GRPC_PORT' | 'GANTRY_MAX_REQUEST_BYTES' | 'GANTRY_MAX_RESPONSE_BYTES'>;
    metrics: { registry: Registry; limitRejections: { inc(labels: { limit: string }): void } };
    /** The API process's one budget of request bytes held at once, shared with REST bodies. */
    inflightBytes: InflightBytes;
  };

/**
 * Room in a response message beyond its output tensors (names, datatypes, shapes, parameters): outputs themselves
 * are bounded by GANTRY_MAX_RESPONSE_BYTES on the worker, so the message limit only adds this.
 */
const responseMessageOverheadBytes = 1024 * 1024;

/** The started gRPC endpoint: close it on the API's shutdown path. */
export interface GrpcEndpoint {
  port: number;
  /** Ends health watches, lets calls in flight finish within `timeoutMs`, then cancels the rest. */
  close(timeoutMs: number): Promise<void>;
}

/**
 * Starts the Open Inference Protocol over gRPC on HOST:GANTRY_GRPC_PORT, or nothing when the port is 0. The
 * limits and the usage recorder are the REST plugins' own objects (app.requestAdmission, app.usageRecorder), so
 * both transports share one tenant share, one set of rate counters and one usage report.
 */
export async function startGrpcEndpoint(
  sources: GrpcEndpointSources,
  admission: RequestAdmission,
  recorder: UsageRecorder,
  logger: Logger,
): Promise<GrpcEndpoint | undefined> {
  const { config } = sources;
  if (config.GANTRY_GRPC_PORT === 0) return undefined;
  // One set of gRPC metrics for the server and the health service's Watch streams (names register once).
  const metrics = createGrpcMetrics(sources.metrics.registry);
  const health = new HealthService(sources, metrics);
  const methods = inferenceMethods(sources);
  const server = new GrpcServer({
    services: {
      'inference.GRPCInferenceService': {
        ...methods,
        ...tritonModelConfigHandlers(sources),
        ...tritonModelStatisticsHandlers(sources),
        ...tritonRepositoryHandlers(sources),
      },
      'grpc.health.v1.Health': health.handlers,
    },
    streams: { 'inference.GRPCInferenceService': inferenceStreams(methods) },
    authenticator: sources.authenticator,
    gate: inferenceCallGate(admission, recorder, {
      bytes: sources.inflightBytes,
      onRefusal: () => sources.metrics.limitRejections.inc({ limit: 'inflight_bytes' }),
    }),
    metrics,
    logger: logger.child({ transport: 'grpc' }),
    maxReceiveMessageBytes: config.GANTRY_MAX_REQUEST_BYTES,
    maxSendMessageBytes: config.GANTRY_MAX_RESPONSE_BYTES + responseMessageOverheadBytes,
  });
  const port = await server.listen(config.HOST, config.GANTRY_GRPC_PORT);
  logger.info({ host: config.HOST, port }, 'gRPC endpoint listening (Open Inference Protocol)');
  return {
    port,
    close: (timeoutMs) => {
      // Open Watch streams would hold the graceful shutdown until its timeout.
      health.close();
      return server.close(timeoutMs);
    },
  };
}
