import type { Metadata } from '@grpc/grpc-js';
import type { Principal } from '../auth/principal.js';
import type { CallUsage } from '../inference/inference-call.js';
import type { Logger } from '../logger.js';

/**
 * What a gRPC method handler is given besides its request message: who is calling (resolved once from the
 * `authorization` or `x-api-key` metadata, before the handler runs), the client's deadline and cancellation,
 * and a logger. Handlers never read metadata for credentials themselves.
 */
export interface GrpcCallContext {
  principal: Principal;
  /** `/inference.GRPCInferenceService/ModelInfer`. */
  methodPath: string;
  metadata: Metadata;
  /** Milliseconds until the client's deadline; undefined when the call has none. */
  timeoutMs: number | undefined;
  /** Aborted when the client cancels the call or its deadline passes. */
  signal: AbortSignal;
  log: Logger;
  /** What ModelInfer learned about the call's cost, for usage metering (filled in by the inference service). */
  usage?: CallUsage;
  /** Tensor bytes received and sent (ModelInfer), for usage metering. */
  bytesIn?: number;
  bytesOut?: number;
}

/** A unary method: its request message in, its response message out (or a thrown error, mapped by grpc-status.ts). */
export type UnaryHandler<Request = never, Response = unknown> = (request: Request, context: GrpcCallContext) => Promise<Response>;

/** One service's unary methods by method name (`ModelInfer`). */
export type UnaryHandlers = Record<string, UnaryHandler<never, unknown>>;

/**
 * A bidirectional stream of requests, each answered like a call of `handler` (ModelStreamInfer over ModelInfer):
 * `answer` and `failure` wrap a response or an error's message into the stream's response message.
 */
export interface StreamOfUnary {
  handler: UnaryHandler<never, unknown>;
  answer(response: unknown): object;
  failure(message: string): object;
}
