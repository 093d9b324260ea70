import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type * as GrpcJs from '@grpc/grpc-js';
import type { Client, Metadata, ServiceError } from '@grpc/grpc-js';
import type * as ProtoLoader from '@grpc/proto-loader';
import { GantryError, invalidClientArgument } from './gantry-error.js';
import { decodeWireResponse, type InferResult, type WireResponse } from './infer-codec.js';
import type { InferOptions } from './infer-request.js';
import type { ModelMetadata, ServerMetadata } from './model-types.js';
import { retryDelayMs, shouldRetry } from './retry-policy.js';
import { encodeInput } from './tensor-encoding.js';
import type { TensorInput } from './tensor-types.js';

/**
 * The project's proto/ folder, shipped with the package. Loaded here rather than through src/grpc/, which is the
 * server's: the client depends on the protocol, not on the server's code.
 */
const protoFolder = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../../proto/' : '../../proto/', import.meta.url));

export interface GrpcClientOptions {
  /** `host:port` of Gantry's gRPC endpoint (GANTRY_GRPC_PORT, 8081 by default). */
  address: string;
  /** API key, sent as `authorization: Bearer <key>` metadata. */
  key?: string | undefined;
  /** Deadline of each call in ms; default 60000. */
  timeoutMs?: number | undefined;
  /** Retries on UNAVAILABLE and RESOURCE_EXHAUSTED (honouring `retry-after` trailers); default 2. */
  retries?: number | undefined;
  /** TLS credentials; default plaintext. */
  secure?: boolean | undefined;
}

/**
 * gRPC's packages, loaded when the first GantryGrpcClient is made rather than when the client is imported: they
 * take ~180 ms to load, which a REST-only caller (the CLI) should not pay.
 */
// Named `require` so the dependency rule's reader (test/integration/dependency-rules.test.ts) sees what it loads.
const require = createRequire(import.meta.url);
let grpcModules: { grpc: typeof GrpcJs; protoLoader: typeof ProtoLoader } | undefined;
function loadGrpc(): { grpc: typeof GrpcJs; protoLoader: typeof ProtoLoader } {
  grpcModules ??= { grpc: require('@grpc/grpc-js') as typeof GrpcJs, protoLoader: require('@grpc/proto-loader') as typeof ProtoLoader };
  return grpcModules;
}

/** The HTTP status REST answers for the same gRPC status name, so callers branch on one number over both transports. */
const httpStatusByGrpcName: Partial<Record<string, number>> = {
  INVALID_ARGUMENT: 400,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  FAILED_PRECONDITION: 409,
  RESOURCE_EXHAUSTED: 429,
  CANCELLED: 499,
  UNIMPLEMENTED: 501,
  UNAVAILABLE: 503,
  DEADLINE_EXCEEDED: 504,
};

type UnaryMethod = (request: object, metadata: Metadata, options: { deadline: Date }, callback: (error: ServiceError | null, answer: unknown) => void) => void;
type InferenceClient = Client & Record<string, UnaryMethod>;

/** gRPC's InferParameter oneof for a JSON-like parameter value. */
function inferParameter(value: unknown): Record<string, unknown> {
  if (typeof value === 'boolean') return { bool_param: value };
  if (typeof value === 'number' && Number.isSafeInteger(value)) return { int64_param: String(value) };
  if (typeof value === 'number') return { double_param: value };
  return { string_param: String(value) };
}

function fromInferParameter(parameter: Record<string, unknown>): unknown {
  const choice = parameter.parameter_choice as string | undefined;
  const value = choice === undefined ? undefined : parameter[choice];
  return choice === 'int64_param' || choice === 'uint64_param' ? Number(value) : value;
}

function parameterMap(parameters: Record<string, unknown> | undefined): Record<string, Record<string, unknown>> | undefined {
  if (parameters === undefined || Object.keys(parameters).length === 0) return undefined;
  return Object.fromEntries(Object.entries(parameters).map(([name, value]) => [name, inferParameter(value)]));
}

interface GrpcOutput {
  name: string;
  datatype: string;
  shape: string[];
  parameters?: Record<string, Record<string, unknown>>;
}

/**
 * A client of Gantry's gRPC endpoint (KServe v2 / Triton's GRPCInferenceService): readiness, metadata and
 * inference with the same typed inputs and outputs as GantryClient.infer (tensors as raw_input_contents and
 * raw_output_contents, no conversion). Errors are GantryError: `code` the gRPC status name (Gantry's vocabulary),
 * `status` the HTTP status REST would answer for it.
 */
export class GantryGrpcClient {
  private readonly grpc: typeof GrpcJs;
  private readonly client: InferenceClient;
  private readonly key: string | undefined;
  private readonly timeoutMs: number;
  private readonly retries: number;

  constructor(options: GrpcClientOptions) {
    if (typeof options?.address !== 'string' || options.address === '') throw invalidClientArgument('GantryGrpcClient needs an address, host:port.');
    const { grpc, protoLoader } = loadGrpc();
    this.grpc = grpc;
    const definition = protoLoader.loadSync(['grpc_service.proto'], {
      keepCase: true,
      longs: String,
      enums: String,
      bytes: Buffer,
      defaults: false,
      arrays: true,
      oneofs: true,
      includeDirs: [protoFolder],
    });
    const inference = grpc.loadPackageDefinition(definition).inference as unknown as { GRPCInferenceService: new (...args: unknown[]) => InferenceClient };
    this.client = new inference.GRPCInferenceService(
      options.address,
      options.secure === true ? grpc.credentials.createSsl() : grpc.credentials.createInsecure(),
    );
    this.key = options.key;
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.retries = options.retries ?? 2;
  }

  async live(): Promise<boolean> {
    return ((await this.unary('ServerLive', {}, { retries: 0 })) as { live?: boolean }).live === true;
  }

  async ready(): Promise<boolean> {
    return ((await this.unary('ServerReady', {}, { retries: 0 })) as { ready?: boolean }).ready === true;
  }

  async modelReady(name: string, version?: string | number): Promise<boolean> {
    const answer = (await this.unary('ModelReady', { name, version: version === undefined ? '' : String(version) }, { retries: 0 })) as { ready?: boolean };
    return answer.ready === true;
  }

  async serverMetadata(): Promise<ServerMetadata> {
    const answer = (await this.unary('ServerMetadata', {})) as ServerMetadata;
    return { name: answer.name, version: answer.version, extensions: answer.extensions ?? [] };
  }

  async metadata(name: string, version?: string | number): Promise<ModelMetadata> {
    const answer = (await this.unary('ModelMetadata', { name, version: version === undefined ? '' : String(version) })) as {
      name: string;
      versions?: string[];
      platform: string;
      inputs?: Array<{ name: string; datatype: string; shape: string[] }>;
      outputs?: Array<{ name: string; datatype: string; shape: string[] }>;
    };
    const tensors = (list: Array<{ name: string; datatype: string; shape: string[] }> | undefined) =>
      (list ?? []).map((tensor) => ({
        name: tensor.name,
        datatype: tensor.datatype as ModelMetadata['inputs'][number]['datatype'],
        shape: tensor.shape.map(Number),
      }));
    return { name: answer.name, versions: answer.versions ?? [], platform: answer.platform, inputs: tensors(answer.inputs), outputs: tensors(answer.outputs) };
  }

  /** ModelInfer with typed inputs (as GantryClient.infer takes them) and typed outputs. */
  async infer(
    model: string,
    inputs: Record<string, TensorInput>,
    options: Pick<InferOptions, 'version' | 'outputs' | 'timeoutMs' | 'priority' | 'id' | 'parameters'> = {},
  ): Promise<InferResult> {
    if (typeof inputs !== 'object' || inputs === null || Object.keys(inputs).length === 0)
      throw invalidClientArgument('An inference needs at least one input.');
    const encoded = Object.entries(inputs).map(([name, input]) => encodeInput(name, input));
    const parameters: Record<string, unknown> = { ...options.parameters };
    if (options.priority !== undefined) parameters.priority = options.priority;
    if (options.timeoutMs !== undefined && options.timeoutMs > 0) parameters.timeout = Math.round(options.timeoutMs * 1000);
    const request = {
      model_name: model,
      model_version: options.version === undefined ? '' : String(options.version),
      ...(options.id === undefined ? {} : { id: options.id }),
      ...(parameterMap(parameters) === undefined ? {} : { parameters: parameterMap(parameters) }),
      inputs: encoded.map((input) => ({ name: input.name, datatype: input.datatype, shape: input.shape.map(String) })),
      ...(options.outputs === undefined ? {} : { outputs: options.outputs.map((name) => ({ name })) }),
      raw_input_contents: encoded.map((input) => Buffer.from(input.bytes.buffer, input.bytes.byteOffset, input.bytes.byteLength)),
    };
    const answer = (await this.unary('ModelInfer', request, { timeoutMs: options.timeoutMs })) as {
      model_name: string;
      model_version?: string;
      id?: string;
      outputs?: GrpcOutput[];
      raw_output_contents?: Buffer[];
    };
    const raw = answer.raw_output_contents ?? [];
    // The raw contents follow the outputs in order: as the binary extension's body does, so one decoder reads both.
    const wire: WireResponse = {
      model_name: answer.model_name,
      ...(answer.model_version === undefined || answer.model_version === '' ? {} : { model_version: answer.model_version }),
      ...(answer.id === undefined || answer.id === '' ? {} : { id: answer.id }),
      outputs: (answer.outputs ?? []).map((output, index) => ({
        name: output.name,
        datatype: output.datatype,
        shape: output.shape.map(Number),
        parameters: {
          ...Object.fromEntries(Object.entries(output.parameters ?? {}).map(([name, value]) => [name, fromInferParameter(value)])),
          binary_data_size: raw[index]?.byteLength ?? 0,
        },
      })),
    };
    return decodeWireResponse(wire, Buffer.concat(raw));
  }

  /** Closes the channel. */
  close(): void {
    this.client.close();
  }

  private async unary(method: string, request: object, options: { retries?: number; timeoutMs?: number | undefined } = {}): Promise<unknown> {
    const retries = options.retries ?? this.retries;
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return await new Promise((resolve, reject) => {
          const metadata = new this.grpc.Metadata();
          if (this.key !== undefined) metadata.set('authorization', `Bearer ${this.key}`);
          this.client[method]!(request, metadata, { deadline: new Date(Date.now() + timeoutMs) }, (error, answer) =>
            error === null ? resolve(answer) : reject(error),
          );
        });
      } catch (error) {
        const serviceError = error as ServiceError;
        const retryAfter = serviceError.metadata?.get('retry-after')[0];
        const retryAfterSeconds = retryAfter === undefined ? undefined : Number(retryAfter.toString());
        const { status } = this.grpc;
        const retryable = serviceError.code === status.UNAVAILABLE || serviceError.code === status.RESOURCE_EXHAUSTED;
        const failure = { kind: 'status' as const, status: retryable ? 503 : 400, retryAfterSeconds };
        // UNAVAILABLE also means "no connection": Gantry's methods here are reads and idempotent inference.
        if (!shouldRetry(failure, attempt, retries, true, true)) {
          throw new GantryError(serviceError.details ?? serviceError.message, {
            status: httpStatusByGrpcName[status[serviceError.code] ?? ''] ?? 500,
            code: status[serviceError.code] ?? 'UNKNOWN',
            retryAfterSeconds,
            cause: error,
          });
        }
        await new Promise((resolve) => setTimeout(resolve, retryDelayMs(failure, attempt)));
      }
    }
  }
}
