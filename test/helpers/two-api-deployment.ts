/**
 * The deployment the alias and traffic-split tests share: a `gantry start` (API + worker) and a second `gantry api`
 * on the same Redis prefix and data directory (so a change made through one must reach the other), tenants `alpha`
 * and `beta` with a key each, a read-and-infer key of the default tenant, and a gRPC client of the first API.
 *
 * `uploadPair(name)` gives a model two versions with one input signature and different answers: version 1 is
 * identity-float (y = x), version 2 fixed-batch (y = 2x, shape [1, 4]), so an answer shows which version computed
 * it (see `pairRequest`).
 */
import assert from 'node:assert/strict';
import { connectInference, type GrpcClient } from './grpc-client.js';
import { fixturePath, startGantry, uploadModel, type GantryProcess } from './gantry-process.js';
import { call } from '../e2e/support.js';
import type { HttpReply } from './http.js';

/** A request both versions of a pair accept: FP32 [1, 4] of 1, 2, 3, 4. */
export const pairRequest = { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] };

export interface TwoApiDeployment {
  gantry: GantryProcess;
  secondApi: GantryProcess;
  inference: GrpcClient;
  keys: { reader: string; alpha: string; beta: string };
  /** A call with the test admin key, to the first API unless `base` names the second. */
  admin(method: string, urlPath: string, body?: unknown, base?: string): Promise<HttpReply>;
  /** A call with `key`, to the first API. */
  as(key: string, method: string, urlPath: string, body?: unknown): Promise<HttpReply>;
  uploadPair(name: string): Promise<void>;
  close(): Promise<void>;
}

/** Starts the deployment (with `env` for both API processes) and uploads the pair `pair`. */
export async function startTwoApiDeployment(env: Record<string, string> = {}): Promise<TwoApiDeployment> {
  const gantry = await startGantry({ env });
  const secondApi = await startGantry({ command: 'api', env, prefix: gantry.prefix, dataDirectory: gantry.dataDirectory, redisUrl: gantry.redisUrl });
  const inference = connectInference(gantry.grpcAddress);
  const admin = (method: string, urlPath: string, body?: unknown, base = gantry.baseUrl) => call(base, method, urlPath, body);
  const as = (key: string, method: string, urlPath: string, body?: unknown) => call(gantry.baseUrl, method, urlPath, body, { authorization: `Bearer ${key}` });
  const uploadPair = async (name: string) => {
    for (const fixture of ['identity-float.onnx', 'fixed-batch.onnx']) {
      const reply = await uploadModel(gantry.baseUrl, name, fixturePath(fixture));
      assert.equal(reply.status, 201, JSON.stringify(reply.body));
    }
  };
  for (const id of ['alpha', 'beta']) assert.equal((await admin('POST', '/v1/tenants', { id })).status, 201);
  const newKey = async (body: object) => {
    const reply = await admin('POST', '/v1/keys', body);
    assert.equal(reply.status, 201, reply.text);
    return reply.body.key as string;
  };
  const keys = {
    reader: await newKey({ name: 'reader', scopes: ['models:read', 'infer'] }),
    alpha: await newKey({ tenant: 'alpha', name: 'alpha', scopes: ['models:read', 'models:write', 'infer'] }),
    beta: await newKey({ tenant: 'beta', name: 'beta', scopes: ['models:read', 'models:write', 'infer'] }),
  };
  await uploadPair('pair');
  return {
    gantry,
    secondApi,
    inference,
    keys,
    admin,
    as,
    uploadPair,
    close: async () => {
      inference.close();
      await secondApi.cleanup();
      await gantry.cleanup();
    },
  };
}
