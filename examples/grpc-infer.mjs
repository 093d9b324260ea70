#!/usr/bin/env node
// One Open Inference Protocol call over gRPC, with @grpc/grpc-js and the project's own .proto files:
//
//   GANTRY_KEY=<key> node examples/grpc-infer.mjs <model> [host:port]
//
// It asks the server whether it is live, reads the model's metadata (ModelMetadata), sends one ModelInfer with
// every input filled with ones (raw little-endian bytes in raw_input_contents; -1 dimensions taken as 1) and prints
// each output's name, datatype, shape and first values. Any Triton or KServe gRPC client works the same way.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const [model, address = process.env.GANTRY_GRPC ?? '127.0.0.1:8081'] = process.argv.slice(2);
if (model === undefined) {
  console.error('usage: GANTRY_KEY=<key> node examples/grpc-infer.mjs <model> [host:port]');
  process.exit(2);
}

const protoDirectory = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'proto');
const definition = protoLoader.loadSync(path.join(protoDirectory, 'grpc_service.proto'), {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  includeDirs: [protoDirectory],
});
const { GRPCInferenceService } = grpc.loadPackageDefinition(definition).inference;
const client = new GRPCInferenceService(address, grpc.credentials.createInsecure());

// The API key travels as `authorization` metadata, as `Authorization: Bearer …` does over HTTP.
const metadata = new grpc.Metadata();
if (process.env.GANTRY_KEY) metadata.set('authorization', `Bearer ${process.env.GANTRY_KEY}`);

const call = (method, request) =>
  new Promise((resolve, reject) =>
    client[method](request, metadata, { deadline: Date.now() + 10_000 }, (error, reply) => (error ? reject(error) : resolve(reply))),
  );

// Bytes per element of each fixed-size datatype; BYTES inputs get one empty string per element.
const elementBytes = { BOOL: 1, UINT8: 1, INT8: 1, UINT16: 2, INT16: 2, FP16: 2, UINT32: 4, INT32: 4, FP32: 4, UINT64: 8, INT64: 8, FP64: 8 };

function ones(datatype, count) {
  if (datatype === 'BYTES') return Buffer.alloc(4 * count); // count elements, each a 4-byte length of 0
  const buffer = Buffer.alloc(count * elementBytes[datatype]);
  for (let index = 0; index < count; index += 1) {
    const offset = index * elementBytes[datatype];
    if (datatype === 'FP32') buffer.writeFloatLE(1, offset);
    else if (datatype === 'FP64') buffer.writeDoubleLE(1, offset);
    else if (datatype === 'FP16') buffer.writeUInt16LE(0x3c00, offset);
    else buffer.writeUInt8(1, offset); // little-endian 1 for every integer width and BOOL
  }
  return buffer;
}

function firstValues(datatype, bytes) {
  const readers = {
    FP32: (b, o) => b.readFloatLE(o),
    FP64: (b, o) => b.readDoubleLE(o),
    INT64: (b, o) => b.readBigInt64LE(o),
    INT32: (b, o) => b.readInt32LE(o),
  };
  const read = readers[datatype];
  if (read === undefined) return `${bytes.length} bytes`;
  const size = datatype === 'INT32' || datatype === 'FP32' ? 4 : 8;
  const values = [];
  for (let offset = 0; offset + size <= bytes.length && values.length < 8; offset += size) values.push(String(read(bytes, offset)));
  return values.join(', ');
}

try {
  console.log('ServerLive:', (await call('ServerLive', {})).live);
  const metadataReply = await call('ModelMetadata', { name: model, version: '' });
  const inputs = metadataReply.inputs.map((input) => {
    const shape = input.shape.map((dimension) => (Number(dimension) < 0 ? 1 : Number(dimension)));
    return { name: input.name, datatype: input.datatype, shape, count: shape.reduce((product, dimension) => product * dimension, 1) };
  });
  const reply = await call('ModelInfer', {
    model_name: model,
    model_version: '',
    inputs: inputs.map(({ name, datatype, shape }) => ({ name, datatype, shape })),
    raw_input_contents: inputs.map(({ datatype, count }) => ones(datatype, count)),
  });
  console.log(`ModelInfer: ${reply.model_name} version ${reply.model_version}`);
  reply.outputs.forEach((output, index) => {
    console.log(`  ${output.name} ${output.datatype} [${output.shape.join(',')}]: ${firstValues(output.datatype, reply.raw_output_contents[index])}`);
  });
} catch (error) {
  console.error(`gRPC call failed: ${error.code === undefined ? '' : grpc.status[error.code] + ': '}${error.details ?? error.message}`);
  process.exitCode = 1;
} finally {
  client.close();
}
