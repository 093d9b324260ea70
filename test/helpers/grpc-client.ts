/**
 * The gRPC test client, built like a user's client: from the PROTOCOL's protos (Triton's grpc_service.proto,
 * model_config.proto and health.proto in the shared reference folder), never from the server's own proto/ or code,
 * so a test passes only if Gantry speaks the protocol as published. Falls back to the project's proto/ (and says
 * so) only where the reference folder is absent.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Metadata, credentials, loadPackageDefinition, type Client, type GrpcObject, type ServiceError } from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { repositoryRoot } from './gantry-process.js';

/** Where the protocol's protos are: beside the repository (`../shared/reference/...`), else the shared work folder. */
export function referenceProtoFolder(): string | undefined {
  const candidates = [path.join(repositoryRoot, '../shared/reference/triton-protocol/grpc'), '/work/shared/reference/triton-protocol/grpc'];
  return candidates.find((folder) => existsSync(path.join(folder, 'grpc_service.proto')));
}

let loaded: GrpcObject | undefined;

/** The protocol's packages, loaded as a client would: field names as written, 64-bit integers as strings, bytes as Buffers. */
function protocolPackages(): GrpcObject {
  if (loaded !== undefined) return loaded;
  let folder = referenceProtoFolder();
  if (folder === undefined) {
    folder = path.join(repositoryRoot, 'proto');
    process.stderr.write(`grpc-client: the protocol's reference protos were not found; the test client uses the project's own ${folder}\n`);
  }
  const definition = protoLoader.loadSync(['grpc_service.proto', 'health.proto'], {
    keepCase: true,
    longs: String,
    enums: String,
    bytes: Buffer,
    defaults: true,
    oneofs: true,
    includeDirs: [folder],
  });
  loaded = loadPackageDefinition(definition);
  return loaded;
}

/** A generated method: (request, metadata?, options?, callback) for unary calls, (request, metadata?) → stream for Watch. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- generated clients are untyped; tests assert on the answers
type GeneratedMethod = (...args: any[]) => any;

/** A generated client of either service, with the protocol's method names. */
export type GrpcClient = Client & {
  [
    method in
      | 'ServerLive'
      | 'ServerReady'
      | 'ModelReady'
      | 'ServerMetadata'
      | 'ModelMetadata'
      | 'ModelInfer'
      | 'ModelStreamInfer'
      | 'ModelConfig'
      | 'ModelStatistics'
      | 'RepositoryIndex'
      | 'RepositoryModelLoad'
      | 'RepositoryModelUnload'
      | 'SystemSharedMemoryStatus'
      | 'SystemSharedMemoryRegister'
      | 'CudaSharedMemoryStatus'
      | 'TraceSetting'
      | 'LogSettings'
      | 'Check'
      | 'Watch'
  ]: GeneratedMethod;
};

type ClientConstructor = new (address: string, channelCredentials: ReturnType<typeof credentials.createInsecure>, options?: object) => GrpcClient;

/** Channel options: messages as large as the tests send and receive (the server sets its own limits). */
const channelOptions = { 'grpc.max_receive_message_length': 512 * 1024 * 1024, 'grpc.max_send_message_length': 512 * 1024 * 1024 };

/** A client of `inference.GRPCInferenceService` at `address` (`host:port`). */
export function connectInference(address: string): GrpcClient {
  const inference = protocolPackages().inference as GrpcObject;
  return new (inference.GRPCInferenceService as unknown as ClientConstructor)(address, credentials.createInsecure(), channelOptions);
}

/** A client of `grpc.health.v1.Health` at `address`. */
export function connectHealth(address: string): GrpcClient {
  const health = ((protocolPackages().grpc as GrpcObject).health as GrpcObject).v1 as GrpcObject;
  return new (health.Health as unknown as ClientConstructor)(address, credentials.createInsecure(), channelOptions);
}

/** Metadata carrying `key` as `authorization: Bearer <key>` (none when undefined). */
export function keyMetadata(key: string | undefined): Metadata {
  const metadata = new Metadata();
  if (key !== undefined) metadata.set('authorization', `Bearer ${key}`);
  return metadata;
}

/** What a failed call gave: its status code, message and trailing metadata. */
export type GrpcFailure = ServiceError;

export interface UnaryOptions {
  /** Sent as `authorization: Bearer <key>`; undefined sends no key. */
  key?: string | undefined;
  metadata?: Metadata;
  /** The call's deadline, in ms from now. */
  deadlineMs?: number;
  /** Called with the call object (to cancel it). */
  onCall?: (call: { cancel(): void }) => void;
}

/** One unary call as a promise: the response, or a rejection with the ServiceError. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the answer's shape is what the test asserts
export function unaryCall<Response = any>(
  client: GrpcClient,
  method: keyof GrpcClient & string,
  request: object,
  options: UnaryOptions = {},
): Promise<Response> {
  const metadata = options.metadata ?? keyMetadata(options.key);
  const callOptions = options.deadlineMs === undefined ? {} : { deadline: Date.now() + options.deadlineMs };
  return new Promise((resolve, reject) => {
    const call = (client[method] as GeneratedMethod)(request, metadata, callOptions, (error: ServiceError | null, response: Response) =>
      error === null ? resolve(response) : reject(error),
    ) as { cancel(): void };
    options.onCall?.(call);
  });
}
