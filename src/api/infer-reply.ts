import type { FastifyReply } from 'fastify';
import { Readable } from 'node:stream';
import type { z } from 'zod';
import type { InferenceResult } from '../inference/inference-call.js';
import { encodeInferResponseParts, inferenceHeaderContentLength } from '../protocol/binary-extension.js';
import type { inferResponseSchema } from '../protocol/oip-schemas.js';

/**
 * Writes an inference result in the protocol's REST encoding: plain JSON, exact JSON text (64-bit integers), or
 * the binary tensor extension. The one writer for synchronous answers and asynchronous jobs' results, so a job's
 * result is byte for byte what the synchronous call would have answered.
 */
export function sendInferenceResult(reply: FastifyReply, result: InferenceResult) {
  const response = encodeInferResponseParts(
    { model_name: result.modelName, model_version: result.modelVersion, ...(result.id === undefined ? {} : { id: result.id }) },
    result.outputs,
  );
  if (response.parts === undefined) {
    // 64-bit integer outputs are written as exact JSON numbers, which a JavaScript object cannot hold: the
    // encoder's text goes out as it is, past the response schema's serializer.
    if (response.serialized !== undefined) return reply.type('application/json; charset=utf-8').send(response.serialized);
    // Otherwise the body is the plain JSON response object.
    return response.json as z.infer<typeof inferResponseSchema>;
  }
  // The header and the tensors go out as they are, without first being copied into one buffer.
  return reply
    .header(inferenceHeaderContentLength, String(response.headerLength))
    .header('content-length', String(response.byteLength))
    .type('application/octet-stream')
    .send(Readable.from(response.parts, { objectMode: false }));
}
