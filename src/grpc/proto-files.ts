import { fileURLToPath } from 'node:url';
import * as protoLoader from '@grpc/proto-loader';

/** The folder of the project's .proto files, shipped with the package (compiled code runs from dist/src/grpc/). */
export const protoFolder = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../../proto/' : '../../proto/', import.meta.url));

/**
 * How the server reads messages: field names as in the proto (`raw_input_contents`), 64-bit integers as decimal
 * strings (exact, unlike numbers), bytes as Buffers (no copy), repeated fields always present, and oneofs naming
 * the choice that is set (`parameter_choice`).
 */
export const loaderOptions: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  bytes: Buffer,
  defaults: false,
  arrays: true,
  oneofs: true,
  includeDirs: [protoFolder],
};

/** The project's protos, loaded once: the inference service (with ModelConfig) and grpc.health.v1. */
export function loadProtos(): protoLoader.PackageDefinition {
  return protoLoader.loadSync(['grpc_service.proto', 'health.proto'], loaderOptions);
}
