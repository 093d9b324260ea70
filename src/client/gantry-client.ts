import { BatchesApi } from './batches-api.js';
import { KeysApi, LimitsApi, TenantsApi, UsageApi } from './control-plane-api.js';
import { GantryError } from './gantry-error.js';
import { HttpTransport, type ClientOptions } from './http-transport.js';
import { decodeInferResponse, type InferResult } from './infer-codec.js';
import { buildInferRequest, type InferOptions } from './infer-request.js';
import { JobsApi } from './jobs-api.js';
import type { ServerMetadata } from './model-types.js';
import { ModelsApi, modelPath } from './models-api.js';
import type { TensorInput } from './tensor-types.js';

/**
 * A typed client of Gantry's HTTP API: the Open Inference Protocol (health, metadata, infer with typed arrays),
 * model management, keys, tenants, usage, limits, asynchronous jobs and batches. Every call applies the same
 * policy (http-transport.ts): the key, a timeout composed with the caller's AbortSignal, retries on 429/503
 * honouring Retry-After, and errors as GantryError with Gantry's code and requestId.
 *
 * @example
 * const client = new GantryClient({ url: 'http://127.0.0.1:8080', key: process.env.GANTRY_KEY });
 * const result = await client.infer('tiny-mlp', { input: { data: new Float32Array(256), shape: [1, 256] } });
 * console.log(result.output('output').data); // Float32Array
 */
export class GantryClient {
  /** The transport every call goes through (for routes the client has no method for). */
  readonly http: HttpTransport;
  readonly models: ModelsApi;
  readonly jobs: JobsApi;
  readonly batches: BatchesApi;
  readonly keys: KeysApi;
  readonly tenants: TenantsApi;
  readonly limits: LimitsApi;
  readonly usage: UsageApi;

  constructor(options: ClientOptions) {
    this.http = new HttpTransport(options);
    this.models = new ModelsApi(this.http);
    this.jobs = new JobsApi(this.http);
    this.batches = new BatchesApi(this.http);
    this.keys = new KeysApi(this.http);
    this.tenants = new TenantsApi(this.http);
    this.limits = new LimitsApi(this.http);
    this.usage = new UsageApi(this.http);
  }

  /** The API's base URL, without a trailing slash. */
  get url(): string {
    return this.http.baseUrl;
  }

  /** Whether the API answers at all (GET /v2/health/live); false when it cannot be reached. Not retried. */
  live(options: { signal?: AbortSignal } = {}): Promise<boolean> {
    return this.probe('/v2/health/live', options.signal);
  }

  /** Whether the API takes work (GET /v2/health/ready: accepting work, Redis reachable, registry intact). Not retried. */
  ready(options: { signal?: AbortSignal } = {}): Promise<boolean> {
    return this.probe('/v2/health/ready', options.signal);
  }

  /** The server's name, version and protocol extensions (GET /v2). */
  serverMetadata(options: { signal?: AbortSignal } = {}): Promise<ServerMetadata> {
    return this.http.json({ method: 'GET', path: '/v2', idempotent: true, signal: options.signal });
  }

  /**
   * Runs an inference (POST /v2/models/{m}[/versions/{v}]/infer). Inputs are typed arrays or plain arrays, named
   * as the model names them; outputs come back as typed arrays (INT64 exactly, as BigInt64Array). Inputs of 4 KiB
   * or more go as the binary tensor extension. Retried on 429/503 and, inference being idempotent in Gantry, on a
   * connection that failed before an answer.
   * @throws GantryError: status 0 INVALID_ARGUMENT for inputs refused before sending; Gantry's 400/404/503/504...
   */
  async infer(model: string, inputs: Record<string, TensorInput>, options: InferOptions = {}): Promise<InferResult> {
    const request = buildInferRequest(inputs, options);
    const response = await this.http.call({
      method: 'POST',
      path: `${modelPath('/v2/models', model, options.version)}/infer`,
      headers: { ...options.headers, ...request.headers },
      body: { make: () => ({ body: request.body }), replayable: true },
      idempotent: true,
      signal: options.signal,
      timeoutMs: options.timeoutMs,
    });
    const body = new Uint8Array(await response.arrayBuffer());
    return decodeInferResponse(body, response.headers.get('inference-header-content-length'), response.headers.get('x-request-id') ?? undefined);
  }

  private async probe(path: string, signal: AbortSignal | undefined): Promise<boolean> {
    try {
      await this.http.empty({ method: 'GET', path, idempotent: true, retries: 0, signal });
      return true;
    } catch (error) {
      if (error instanceof GantryError && (error.status === 503 || (error.status === 0 && error.code === 'UNAVAILABLE'))) return false;
      throw error;
    }
  }
}
