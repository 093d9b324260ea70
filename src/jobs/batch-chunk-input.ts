import type { Datatype } from '../protocol/datatypes.js';
import type { Tensor } from '../protocol/tensor.js';
import type { DurableRequest } from './durable-producer.js';

interface EncodedTensor {
  name: string;
  datatype: Datatype;
  shape: number[];
  byteLength: number;
}

/**
 * A batch chunk's checked and decoded requests, kept in Redis between the end of its upload's reading and its
 * queueing (chunks are queued only once the whole body was read and checked, and must not wait in the API's
 * memory meanwhile): a 4-byte little-endian length, a JSON header (each request without its tensors' bytes), then
 * every input's bytes in order. Read back only by the API that wrote it (or one resuming its queueing).
 */
export function encodeChunkInput(requests: readonly DurableRequest[]): Buffer {
  const bodies: Uint8Array[] = [];
  const header = requests.map((request) => ({
    correlationId: request.correlationId,
    submission: {
      ...request.submission,
      inputs: request.submission.inputs.map((tensor): EncodedTensor => {
        bodies.push(tensor.data);
        return { name: tensor.name, datatype: tensor.datatype, shape: tensor.shape, byteLength: tensor.data.byteLength };
      }),
    },
  }));
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32LE(json.byteLength, 0);
  return Buffer.concat([length, json, ...bodies]);
}

/** The requests of {@link encodeChunkInput}'s bytes (the tensors are views into `bytes`). */
export function decodeChunkInput(bytes: Buffer): DurableRequest[] {
  const headerLength = bytes.readUInt32LE(0);
  const header = JSON.parse(bytes.subarray(4, 4 + headerLength).toString('utf8')) as Array<{
    correlationId: string;
    submission: Omit<DurableRequest['submission'], 'inputs'> & { inputs: EncodedTensor[] };
  }>;
  let offset = 4 + headerLength;
  return header.map((request) => ({
    correlationId: request.correlationId,
    submission: {
      ...request.submission,
      inputs: request.submission.inputs.map((tensor): Tensor => {
        const data = bytes.subarray(offset, offset + tensor.byteLength);
        offset += tensor.byteLength;
        return { name: tensor.name, datatype: tensor.datatype, shape: tensor.shape, data };
      }),
    },
  }));
}
