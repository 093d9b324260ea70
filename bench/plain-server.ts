/**
 * The baseline: what a user would write instead of Gantry. One Fastify process, one onnxruntime session loaded
 * in-process, the same Open Inference Protocol v2 route. No queue, no Redis, no worker threads.
 *
 * It speaks JSON and, like Gantry, the binary tensor data extension: a body sent as application/octet-stream with
 * an `Inference-Header-Content-Length` header is a JSON header followed by the inputs' raw bytes; when the request
 * sets `parameters.binary_data_output: true` the answer is a JSON header followed by the outputs' raw bytes, with
 * the same header. So the binary comparison with Gantry is like for like.
 *
 *   node dist/bench/plain-server.js <modelPath> <port> [modelName] [--tuned]
 *
 * `--tuned` ("plain server, tuned"): one intra-op and one inter-op thread and no spinning (tunedSessionOptions),
 * as Gantry's worker runs its sessions; without it, onnxruntime's defaults.
 *
 * Prints "listening <port>" on stdout when it is ready.
 */
import path from 'node:path';
import Fastify, { type FastifyReply } from 'fastify';
import ort from 'onnxruntime-node';
import { inferenceHeaderContentLength, sessionOptions, tunedSessionOptions } from './models.js';

interface InferInput {
  name: string;
  shape: number[];
  datatype: string;
  data?: unknown[];
  parameters?: { binary_data_size?: number };
}

interface InferBody {
  inputs?: InferInput[];
  parameters?: { binary_data_output?: boolean };
}

const tuned = process.argv.includes('--tuned');
const [modelPath, portText, nameArgument] = process.argv.slice(2).filter((argument) => argument !== '--tuned');
if (modelPath === undefined || portText === undefined) {
  console.error('usage: node dist/bench/plain-server.js <modelPath> <port> [modelName] [--tuned]');
  process.exit(2);
}
const modelName = nameArgument ?? path.basename(modelPath, '.onnx');

const session = await ort.InferenceSession.create(modelPath, tuned ? tunedSessionOptions : sessionOptions);
const app = Fastify({ logger: false, bodyLimit: 256 * 1024 * 1024 });
app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

async function infer(body: InferBody, binary: Buffer | undefined, reply: FastifyReply) {
  const inputs = body.inputs;
  if (!Array.isArray(inputs) || inputs.length === 0) return reply.code(400).send({ error: 'inputs required' });
  const feeds: Record<string, ort.Tensor> = {};
  let offset = 0;
  for (const input of inputs) {
    if (input.datatype !== 'FP32') return reply.code(400).send({ error: `only FP32 is supported, got ${input.datatype}` });
    const size = input.parameters?.binary_data_size;
    let data: Float32Array;
    if (size !== undefined && binary !== undefined) {
      // Copy into a fresh (aligned) buffer: the slice of the body may start at any byte.
      data = new Float32Array(Uint8Array.from(binary.subarray(offset, offset + size)).buffer);
      offset += size;
    } else data = Float32Array.from(input.data!.flat(Infinity) as number[]);
    feeds[input.name] = new ort.Tensor('float32', data, input.shape);
  }
  const results = await session.run(feeds);
  const entries = Object.entries(results);
  if (body.parameters?.binary_data_output !== true) {
    return {
      model_name: modelName,
      outputs: entries.map(([name, tensor]) => ({ name, datatype: 'FP32', shape: tensor.dims, data: Array.from(tensor.data as Float32Array) })),
    };
  }
  const raw = entries.map(([, tensor]) => {
    const view = tensor.data as Float32Array;
    return Buffer.from(view.buffer, view.byteOffset, view.byteLength);
  });
  const header = Buffer.from(
    JSON.stringify({
      model_name: modelName,
      outputs: entries.map(([name, tensor], index) => ({
        name,
        datatype: 'FP32',
        shape: tensor.dims,
        parameters: { binary_data_size: raw[index]!.byteLength },
      })),
    }),
  );
  return reply
    .header(inferenceHeaderContentLength, String(header.byteLength))
    .type('application/octet-stream')
    .send(Buffer.concat([header, ...raw]));
}

app.post<{ Params: { model: string }; Body: InferBody | Buffer }>('/v2/models/:model/infer', async (request, reply) => {
  if (request.params.model !== modelName) return reply.code(404).send({ error: `unknown model '${request.params.model}'` });
  if (!Buffer.isBuffer(request.body)) return infer(request.body ?? {}, undefined, reply);
  const lengthHeader = request.headers[inferenceHeaderContentLength];
  const headerLength = typeof lengthHeader === 'string' ? Number(lengthHeader) : request.body.byteLength;
  if (!Number.isSafeInteger(headerLength) || headerLength <= 0 || headerLength > request.body.byteLength) {
    return reply.code(400).send({ error: 'bad Inference-Header-Content-Length' });
  }
  const header = JSON.parse(request.body.subarray(0, headerLength).toString('utf8')) as InferBody;
  return infer(header, request.body.subarray(headerLength), reply);
});

await app.listen({ port: Number(portText), host: '127.0.0.1' });
console.log(`listening ${portText}`);

const shutdown = async () => {
  await app.close();
  await session.release();
  process.exit(0);
};
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);
