import { GantryError } from './gantry-error.js';
import { HttpTransport, type ClientOptions } from './http-transport.js';
import { decodeInferResponse, encodeInferRequest, type InferResult } from './infer-codec.js';
import { ModelsApi, modelPath } from './models-api.js';
import type { ServerMetadata } from './model-types.js';
import { encodeInput } from './tensor-encoding.js';
import type { TensorInput } from './tensor-types.js';

export interface InferOptions {
  /** A version number (default: the newest READY version, or the model's alias/traffic policy). */
  version?: string | number | undefined;
  /** Outputs to answer (default: all). */
  outputs?: string[] | undefined;
  /** true: inputs as binary data; false: JSON; 'auto' (default): binary from 16 KiB of tensor data. */
  binary?: boolean | 'auto' | undefined;
  /** Ask for outputs as binary data; default: as the inputs go. */
  binaryOutputs?: boolean | undefined;
  signal?: AbortSignal | undefined;
  /**
   * Budget for this call in ms (retries included). Also sent as the request's `timeout` parameter, so the
   * server drops the work once this caller has given up.
   */
  timeoutMs?: number | undefined;
  /** Schedule priority: 1 is the highest (the model's default when absent). */
  priority?: number | undefined;
  /** The request's id, echoed in the response. */
  id?: string | undefined;
  /** Further request parameters, sent as they are. */
  parameters?: Record<string, unknown> | undefined;
  /** Extra headers (X-Request-Id, ...). */
  headers?: Record<string, string> | undefined;
}

/**
 * A typed client of Gantry's HTTP API: the Open Inference Protocol (health, metadata, infer with typed arrays),
 * model management, keys, tenants, usage, limits, asynchronous jobs and batches. Every call applies the same
 * policy (http-transport.ts): the key, a timeout composed with the caller's AbortSignal, retries on 429/503
 * honouring Retry-After, and errors as GantryError with Gantry's code and requestId.
 *
 * @example
 * const client = new GantryClient({ url: 'http://127.0.0.1:8080', key: process.env.GANTRY_KEY });
 * const result = await client.infer('tiny-mlp', { input: { data: new Float32Array(16), shape: [1, 16] } });
 * console.log(result.output('output').data); // Float32Array
 */
export class GantryClient {
  readonly models: ModelsApi;
  /** The transport every call goes through (for routes the client has no method for). */
  readonly http: HttpTransport;

  constructor(options: ClientOptions) {
    this.http = new HttpTransport(options);
    this.models = new ModelsApi(this.http);
  }

  /** The API's base URL, without a trailing slash. */
  get url(): string {
    return this.http.baseUrl;
  }

  /** Whether the API answers at all (GET /v2/health/live); false when it cannot be reached. Not retried. */
  async live(options: { signal?: AbortSignal } = {}): Promise<boolean> {
    return this.probe('/v2/health/live', options.signal);
  }

  /** Whether the API takes work (GET /v2/health/ready: accepting work, Redis reachable, registry intact). Not retried. */
  async ready(options: { signal?: AbortSignal } = {}): Promise<boolean> {
    return this.probe('/v2/health/ready', options.signal);
  }

  /** Why the server is not ready (the body of a 503 from /v2/health/ready), or undefined when it is. */
  async unreadyReason(options: { signal?: AbortSignal } = {}): Promise<string | undefined> {
    try {
      await this.http.empty({ method: 'GET', path: '/v2/health/ready', idempotent: true, retries: 0, signal: options.signal });
      return undefined;
    } catch (error) {
      if (error instanceof GantryError) return error.message;
      throw error;
    }
  }

  /** The server's name, version and protocol extensions (GET /v2). */
  serverMetadata(options: { signal?: AbortSignal } = {}): Promise<ServerMetadata> {
    return this.http.json({ method: 'GET', path: '/v2', idempotent: true, signal: options.signal });
  }

  /**
   * Runs an inference (POST /v2/models/{m}[/versions/{v}]/infer). Inputs are typed arrays or plain arrays, named
   * as the model names them; outputs come back as typed arrays (INT64 exactly, as BigInt64Array). Large inputs go
   * as the binary tensor extension. Retried on 429/503 and, inference being idempotent in Gantry, on a connection
   * that failed before an answer.
   * @throws GantryError: status 0 INVALID_ARGUMENT for inputs refused before sending; 400/404/503/504... from Gantry.
   */
  async infer(model: string, inputs: Record<string, TensorInput>, options: InferOptions = {}): Promise<InferResult> {
    if (typeof inputs !== 'object' || inputs === null || Object.keys(inputs).length === 0) {
      throw new GantryError('infer() needs at least one input: { inputName: Float32Array | {data, shape, datatype} }.', {
        status: 0,
        code: 'INVALID_ARGUMENT',
      });
    }
    const encoded = Object.entries(inputs).map(([name, input]) => encodeInput(name, input));
    const parameters: Record<string, unknown> = { ...options.parameters };
    if (options.priority !== undefined) parameters.priority = options.priority;
    if (options.timeoutMs !== undefined && options.timeoutMs > 0) parameters.timeout = Math.round(options.timeoutMs * 1000);
    const request = encodeInferRequest(
      encoded,
      { id: options.id, outputs: options.outputs, parameters },
      {
        binary: options.binary ?? 'auto',
        binaryOutputs: options.binaryOutputs,
      },
    );
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
