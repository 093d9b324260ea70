/**
 * The baseline: what a user would write instead of Gantry. One Fastify process, one onnxruntime session loaded
 * in-process, the same Open Inference Protocol v2 JSON route. No queue, no Redis, no worker threads.
 *
 *   node dist/bench/plain-server.js <modelPath> <port> [modelName]
 *
 * Prints "listening <port>" on stdout when it is ready.
 */
import path from 'node:path';
import Fastify from 'fastify';
import ort from 'onnxruntime-node';
import { sessionOptions } from './models.js';

interface InferInput {
  name: string;
  shape: number[];
  datatype: string;
  data: unknown[];
}

const [modelPath, portText, nameArgument] = process.argv.slice(2);
if (modelPath === undefined || portText === undefined) {
  console.error('usage: node dist/bench/plain-server.js <modelPath> <port> [modelName]');
  process.exit(2);
}
const modelName = nameArgument ?? path.basename(modelPath, '.onnx');

const session = await ort.InferenceSession.create(modelPath, sessionOptions);
const app = Fastify({ logger: false, bodyLimit: 256 * 1024 * 1024 });

app.post<{ Params: { model: string }; Body: { inputs?: InferInput[] } }>('/v2/models/:model/infer', async (request, reply) => {
  if (request.params.model !== modelName) return reply.code(404).send({ error: `unknown model '${request.params.model}'` });
  const inputs = request.body?.inputs;
  if (!Array.isArray(inputs) || inputs.length === 0) return reply.code(400).send({ error: 'inputs required' });
  const feeds: Record<string, ort.Tensor> = {};
  for (const input of inputs) {
    if (input.datatype !== 'FP32') return reply.code(400).send({ error: `only FP32 is supported, got ${input.datatype}` });
    const data = Float32Array.from(input.data.flat(Infinity) as number[]);
    feeds[input.name] = new ort.Tensor('float32', data, input.shape);
  }
  const results = await session.run(feeds);
  return {
    model_name: modelName,
    outputs: Object.entries(results).map(([name, tensor]) => ({
      name,
      datatype: 'FP32',
      shape: tensor.dims,
      data: Array.from(tensor.data as Float32Array),
    })),
  };
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
