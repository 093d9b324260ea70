import {
  Server,
  ServerCredentials,
  status,
  type GrpcObject,
  type ServiceDefinition,
  type ServiceError,
  type UntypedServiceImplementation,
  type sendUnaryData,
  type ServerUnaryCall,
} from '@grpc/grpc-js';
import * as grpc from '@grpc/grpc-js';
import type { Authenticator } from '../auth/authenticator.js';
import type { Principal } from '../auth/principal.js';
import { ErrorCode, GantryError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { GrpcMetrics } from '../metrics/grpc-metrics.js';
import { callPrincipal } from './call-principal.js';
import type { GrpcCallContext, StreamOfUnary, UnaryHandler, UnaryHandlers } from './grpc-call-context.js';
import { statusName, toServiceError } from './grpc-status.js';
import { loadProtos } from './proto-files.js';

/** Limits and usage metering for the calls that are inferences, shared with REST (src/limits/, src/usage/). */
export interface InferenceCallGate {
  /** Whether a method's calls are inferences: limited by the tenant share and quotas, and metered. */
  isMetered(methodPath: string): boolean;
  /**
   * Admits a call (rate limits; for metered calls also quotas and the tenant's share of this process) before its
   * handler runs. Resolves to a release for what the call holds.
   * @throws RESOURCE_EXHAUSTED with REST's message when a limit refuses it.
   */
  admit(principal: Principal, metered: boolean, context: GrpcCallContext, request: unknown): Promise<() => void>;
  /** Meters a metered call once it ended; `outcome` is its error code (undefined for success). A refused call the gate meters itself. */
  meter(context: GrpcCallContext, outcome: ErrorCode | 'cancelled' | undefined): void;
}

export interface GrpcServerOptions {
  /** Handlers by service (`inference.GRPCInferenceService`) and method name; declared methods without one answer UNIMPLEMENTED. */
  services: Record<string, UnaryHandlers>;
  /** Bidirectional streams whose every message is answered like a unary call, by service and method name. */
  streams?: Record<string, Record<string, StreamOfUnary>>;
  authenticator: Authenticator | undefined;
  gate: InferenceCallGate | undefined;
  metrics: GrpcMetrics;
  logger: Logger;
  /** Largest request message (GANTRY_MAX_REQUEST_BYTES); grpc-js answers RESOURCE_EXHAUSTED past it. */
  maxReceiveMessageBytes: number;
  /** Largest response message (GANTRY_MAX_RESPONSE_BYTES plus room for the metadata around the tensors). */
  maxSendMessageBytes: number;
}

/** The host:port form grpc-js binds (IPv6 addresses in brackets). */
function bindAddress(host: string, port: number): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Milliseconds until a call's deadline, or undefined when it has none. */
function remainingMs(deadline: grpc.Deadline): number | undefined {
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  if (!Number.isFinite(at)) return undefined;
  return Math.max(0, at - Date.now());
}

/**
 * The Open Inference Protocol over gRPC (@grpc/grpc-js), served by the API role beside the HTTP server: every
 * call is authenticated from its metadata, scope-checked from the one table, admitted by the same limits as REST
 * and answered by a handler that calls the same views and inference service as REST's routes. The method
 * handlers come from small modules (inference-methods.ts; Triton's extensions and health in their own files).
 */
export class GrpcServer {
  private readonly server: Server;
  private readonly inFlight = new Set<AbortController>();
  /** Open streams, each ending itself once its answers are written when shutdown begins. */
  private readonly openStreams = new Set<() => void>();
  private closing: Promise<void> | undefined;
  private shuttingDown = false;

  constructor(private readonly options: GrpcServerOptions) {
    this.server = new Server({
      'grpc.max_receive_message_length': options.maxReceiveMessageBytes,
      'grpc.max_send_message_length': options.maxSendMessageBytes,
    });
    const definitions = grpc.loadPackageDefinition(loadProtos());
    for (const [serviceName, handlers] of Object.entries(options.services)) {
      const service = serviceDefinition(definitions, serviceName);
      this.server.addService(service, this.implementation(serviceName, service, handlers, options.streams?.[serviceName] ?? {}));
    }
  }

  /** Calls being answered now (shutdown waits for them). */
  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /** Binds and starts serving. @returns the bound port. */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const address = bindAddress(host, port);
      this.server.bindAsync(address, ServerCredentials.createInsecure(), (error, boundPort) =>
        error === null
          ? resolve(boundPort)
          : reject(
              new Error(
                `Could not serve gRPC on ${address} (HOST, GANTRY_GRPC_PORT): ${error.message}. Free the port, choose another, or set GANTRY_GRPC_PORT=0 to turn gRPC off.`,
              ),
            ),
      );
    });
  }

  /**
   * Graceful shutdown: no new calls are taken (grpc-js refuses them), calls in flight get their answers within
   * `timeoutMs`, then whatever is left is cancelled. Idempotent.
   */
  close(timeoutMs: number): Promise<void> {
    this.shuttingDown = true;
    this.closing ??= new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        this.options.logger.warn({ calls: this.inFlight.size }, 'gRPC calls still running at the end of the shutdown timeout; cancelling them');
        this.server.forceShutdown();
        resolve();
      }, timeoutMs);
      // Streams end once the answers they owe are written; new messages on them are still answered until then.
      for (const endIfDone of this.openStreams) endIfDone();
      this.server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
    return this.closing;
  }

  private implementation(
    serviceName: string,
    service: ServiceDefinition,
    handlers: UnaryHandlers,
    streams: Record<string, StreamOfUnary>,
  ): UntypedServiceImplementation {
    const implementation: UntypedServiceImplementation = {};
    for (const [methodName, method] of Object.entries(service)) {
      const handler = handlers[methodName];
      const stream = streams[methodName];
      if (stream !== undefined && method.requestStream && method.responseStream) {
        implementation[methodName] = (call: grpc.ServerDuplexStream<unknown, unknown>) => this.serveStream(method.path, stream, call);
        continue;
      }
      if (method.requestStream || method.responseStream) {
        // Streaming methods (ModelStreamInfer, health Watch) are served by their own modules or not at all.
        const streaming = handlers[methodName] as unknown as grpc.UntypedHandleCall | undefined;
        implementation[methodName] =
          streaming ??
          ((call: grpc.ServerDuplexStream<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>) => {
            this.count(method.path, status.UNIMPLEMENTED, 0);
            call.emit('error', { code: status.UNIMPLEMENTED, details: unimplementedMessage(serviceName, methodName) });
          });
        continue;
      }
      implementation[methodName] =
        handler === undefined
          ? (_call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
              this.count(method.path, status.UNIMPLEMENTED, 0);
              callback({ code: status.UNIMPLEMENTED, details: unimplementedMessage(serviceName, methodName) });
            }
          : (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => void this.answer(method.path, handler, call, callback);
    }
    return implementation;
  }

  private async answer(
    methodPath: string,
    handler: UnaryHandler<never, unknown>,
    call: ServerUnaryCall<unknown, unknown>,
    callback: sendUnaryData<unknown>,
  ): Promise<void> {
    const cancelled = new AbortController();
    // A deadline passing also cancels the call: grpc-js has answered DEADLINE_EXCEEDED by then.
    call.once('cancelled', () => cancelled.abort());
    const outcome = await this.run(methodPath, handler, call.request, call.metadata, call.getDeadline(), cancelled.signal);
    if (outcome.failure === undefined) callback(null, outcome.response);
    else callback(outcome.failure, null, outcome.failure.metadata);
  }

  /**
   * A bidirectional stream of requests each answered like a unary call (ModelStreamInfer: every ModelInferRequest
   * is authenticated, limited, run and metered as ModelInfer is). Answers are written as they come, each carrying
   * its request's id; a failed request is answered in the stream (`error_message`) and the stream goes on, as
   * Triton does. The stream ends once the client has ended its side and every answer is written, or at shutdown.
   */
  private serveStream(methodPath: string, stream: StreamOfUnary, call: grpc.ServerDuplexStream<unknown, unknown>): void {
    const cancelled = new AbortController();
    call.once('cancelled', () => cancelled.abort());
    let pending = 0;
    let clientEnded = false;
    const endIfDone = () => {
      if (pending === 0 && (clientEnded || this.shuttingDown) && !cancelled.signal.aborted && call.writable) call.end();
    };
    this.openStreams.add(endIfDone);
    call.once('close', () => this.openStreams.delete(endIfDone));
    // A stream without a valid key (or the scope) is refused as a whole, before any message is read.
    const refused = (error: unknown) => {
      const { serviceError } = toServiceError(error);
      this.count(methodPath, serviceError.code!, 0);
      call.emit('error', serviceError);
    };
    const { authenticator, logger } = this.options;
    new Promise<unknown>((resolve) =>
      resolve(
        callPrincipal(authenticator, methodPath, call.metadata, (reason, keyId) => logger.debug({ reason, keyId, method: methodPath }, 'API key refused')),
      ),
    ).then(
      () =>
        this.readStream(methodPath, stream, call, cancelled.signal, {
          started: () => pending++,
          finished: () => {
            pending--;
            endIfDone();
          },
          clientEnded: () => {
            clientEnded = true;
            endIfDone();
          },
        }),
      refused,
    );
  }

  /** Answers each message of an authenticated stream as it arrives, telling the stream what is pending. */
  private readStream(
    methodPath: string,
    stream: StreamOfUnary,
    call: grpc.ServerDuplexStream<unknown, unknown>,
    cancelled: AbortSignal,
    progress: { started(): void; finished(): void; clientEnded(): void },
  ): void {
    // Requests of one stream run concurrently, but at most maxPendingPerStream at once: past it the stream stops
    // reading (HTTP/2 flow control then holds the client back), so one stream cannot pile up decoded messages.
    let pending = 0;
    call.on('data', (request: unknown) => {
      progress.started();
      if (++pending >= maxPendingPerStream) call.pause();
      void this.run(methodPath, stream.handler, request, call.metadata, call.getDeadline(), cancelled).then((outcome) => {
        if (!cancelled.aborted && call.writable)
          call.write(outcome.failure === undefined ? stream.answer(outcome.response) : stream.failure(outcome.failure.details ?? ''));
        if (pending-- === maxPendingPerStream) call.resume();
        progress.finished();
      });
    });
    call.on('end', progress.clientEnded);
  }

  /**
   * One request through the whole path: the caller from the metadata and the method's scope, the limits, the
   * handler, metering, logging and the metrics. Never throws: a failure comes back as the ServiceError to send.
   */
  private async run(
    methodPath: string,
    handler: UnaryHandler<never, unknown>,
    request: unknown,
    metadata: grpc.Metadata,
    deadline: grpc.Deadline,
    callCancelled: AbortSignal,
  ): Promise<{ response?: unknown; failure?: Partial<ServiceError> }> {
    const startedAt = process.hrtime.bigint();
    const controller = new AbortController();
    const abort = () => controller.abort();
    if (callCancelled.aborted) abort();
    else callCancelled.addEventListener('abort', abort, { once: true });
    this.inFlight.add(controller);
    const { gate, logger } = this.options;
    let context: GrpcCallContext | undefined;
    let release: (() => void) | undefined;
    let metered = false;
    try {
      const principal = await callPrincipal(this.options.authenticator, methodPath, metadata, (reason, keyId) =>
        logger.debug({ reason, keyId, method: methodPath }, 'API key refused'),
      );
      context = { principal, methodPath, metadata, timeoutMs: remainingMs(deadline), signal: controller.signal, log: logger };
      metered = gate?.isMetered(methodPath) ?? false;
      if (gate !== undefined) release = await this.admitted(gate, principal, metered, context, request);
      const response = await handler(request as never, context);
      if (metered) gate!.meter(context, controller.signal.aborted ? 'cancelled' : undefined);
      this.count(methodPath, status.OK, startedAt);
      return { response };
    } catch (error) {
      const { serviceError, isUnexpected } = toServiceError(error);
      if (isUnexpected)
        logger.error(
          {
            err: { type: (error as Error)?.name, message: String((error as Error)?.message).slice(0, 1000), stack: (error as Error)?.stack?.slice(0, 4000) },
            method: methodPath,
          },
          'gRPC call failed',
        );
      else logger.info({ code: statusName(serviceError.code!), reason: serviceError.details, method: methodPath }, 'gRPC call rejected');
      if (metered && context !== undefined && !(error instanceof AdmissionRefusal)) {
        gate!.meter(context, controller.signal.aborted ? 'cancelled' : error instanceof GantryError ? error.code : ErrorCode.Internal);
      }
      this.count(methodPath, serviceError.code!, startedAt);
      return { failure: serviceError };
    } finally {
      release?.();
      callCancelled.removeEventListener('abort', abort);
      this.inFlight.delete(controller);
    }
  }

  /** Runs the gate's admission; a refusal (which the gate metered) is marked so the call is not metered twice. */
  private async admitted(gate: InferenceCallGate, principal: Principal, metered: boolean, context: GrpcCallContext, request: unknown): Promise<() => void> {
    try {
      return await gate.admit(principal, metered, context, request);
    } catch (error) {
      throw new AdmissionRefusal(error);
    }
  }

  private count(methodPath: string, code: number, startedAt: bigint | 0): void {
    const method = methodPath.slice(methodPath.lastIndexOf('/') + 1);
    this.options.metrics.requests.inc({ method, code: statusName(code) });
    if (startedAt !== 0) this.options.metrics.duration.observe({ method }, Number(process.hrtime.bigint() - startedAt) / 1e9);
  }
}

/** A limit's refusal (already metered by the gate), answered with the refusal's own code and message. */
class AdmissionRefusal extends GantryError {
  constructor(refusal: unknown) {
    const gantry = refusal instanceof GantryError ? refusal : undefined;
    super(gantry?.code ?? ErrorCode.Internal, gantry?.message ?? String(refusal), {
      ...(gantry?.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: gantry.retryAfterSeconds }),
      cause: refusal,
    });
  }
}

/**
 * Requests of one ModelStreamInfer stream in flight at once. A tenant's requests beyond its share
 * (GANTRY_TENANT_MAX_INFLIGHT, 16) wait anyway; twice that keeps a stream's pipeline full without letting it hold
 * an unbounded number of decoded messages.
 */
const maxPendingPerStream = 32;

function unimplementedMessage(serviceName: string, methodName: string): string {
  return `${serviceName}/${methodName} is not served by Gantry (docs/protocol.md lists the gRPC methods it serves).`;
}

function serviceDefinition(definitions: GrpcObject, serviceName: string): ServiceDefinition {
  let node: unknown = definitions;
  for (const part of serviceName.split('.')) node = (node as Record<string, unknown> | undefined)?.[part];
  const service = (node as { service?: ServiceDefinition } | undefined)?.service;
  if (service === undefined) throw new Error(`The protos in proto/ declare no service ${serviceName}`);
  return service;
}
