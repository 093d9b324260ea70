import { GantryError } from './gantry-error.js';
import { jsonBody, queryString, type HttpTransport } from './http-transport.js';
import type { ModelAlias, ModelDetail, ModelMetadata, ModelSettings, ModelSummary, PushedVersion, TrafficPolicy, VersionDetail } from './model-types.js';
import { uploadBody, type UploadSource } from './upload-body.js';

export interface PushOptions {
  /** The model's name (a new name makes a model; an existing one gets a new version). */
  name: string;
  /** Wait until the version is READY or refused (the server's default, true); false answers at once (202, LOADING). */
  wait?: boolean | undefined;
  /** Make a new version even when one holds the same file already (otherwise that version answers, status 200). */
  duplicate?: boolean | undefined;
  /** Upload under this version number (above every number the model has had; PUT …/versions/{v}). */
  version?: number | undefined;
  /** A warm-up sample, an OIP inference request `{inputs: [{name, datatype, shape, data}]}` (sent as multipart). */
  warmup?: object | undefined;
  /** Called as the file's bytes are sent. */
  onProgress?: ((sentBytes: number, totalBytes?: number) => void) | undefined;
  signal?: AbortSignal | undefined;
  /** A budget for the upload and its load, in ms; default none (a 1 GB file takes as long as it takes). */
  timeoutMs?: number | undefined;
}

/** A segment of a URL path, encoded. */
export function segment(value: string | number): string {
  return encodeURIComponent(String(value));
}

/** The path of a model, or of one of its versions, under `root` (`/v1/models` or `/v2/models`). */
export function modelPath(root: string, name: string, version?: string | number): string {
  return version === undefined ? `${root}/${segment(name)}` : `${root}/${segment(name)}/versions/${segment(version)}`;
}

/** `client.models`: upload, list, inspect and delete models and versions, and their OIP metadata. */
export class ModelsApi {
  constructor(private readonly http: HttpTransport) {}

  /** Every model the key may see, with its versions (GET /v1/models). */
  async list(options: { signal?: AbortSignal } = {}): Promise<ModelSummary[]> {
    const answer = await this.http.json<{ models: ModelSummary[] }>({ method: 'GET', path: '/v1/models', idempotent: true, signal: options.signal });
    return answer.models;
  }

  /** A model with every version in full (GET /v1/models/{m}). */
  get(name: string, options: { signal?: AbortSignal } = {}): Promise<ModelDetail> {
    return this.http.json({ method: 'GET', path: modelPath('/v1/models', name), idempotent: true, signal: options.signal });
  }

  /** One version in full (GET /v1/models/{m}/versions/{v}). */
  version(name: string, version: string | number, options: { signal?: AbortSignal } = {}): Promise<VersionDetail> {
    return this.http.json({ method: 'GET', path: modelPath('/v1/models', name, version), idempotent: true, signal: options.signal });
  }

  /**
   * Deletes a model with all its versions, or one version. `force` deletes a version even while aliases point at
   * it (removing them) or the traffic policy names it.
   */
  async remove(name: string, options: { version?: string | number; force?: boolean; signal?: AbortSignal } = {}): Promise<void> {
    const path =
      options.version === undefined ? modelPath('/v1/models', name) : modelPath('/v1/models', name, options.version) + queryString({ force: options.force });
    await this.http.empty({ method: 'DELETE', path, idempotent: true, signal: options.signal });
  }

  /**
   * Uploads an ONNX file as a new version, streamed (a file path is read in chunks, never whole), raw or as
   * multipart with a warm-up sample. Retried on 429/503 when the source can be read again (a path or bytes).
   * @returns the upload route's answer with its status (201 new, 202 still loading, 200 an identical version).
   * @throws GantryError: 422 INVALID_MODEL when the file does not load, 413 past GANTRY_MAX_UPLOAD_BYTES, ...
   */
  async push(source: UploadSource, options: PushOptions): Promise<PushedVersion> {
    if (typeof options?.name !== 'string' || options.name === '') {
      throw new GantryError('models.push() needs options.name, the model to upload a version of.', { status: 0, code: 'INVALID_ARGUMENT' });
    }
    const body = await uploadBody(source, options.warmup, options.onProgress);
    const query = queryString({ wait: options.wait, duplicate: options.duplicate });
    const chosen = options.version !== undefined;
    const response = await this.http.call({
      method: chosen ? 'PUT' : 'POST',
      path: (chosen ? modelPath('/v1/models', options.name, options.version) : `${modelPath('/v1/models', options.name)}/versions`) + query,
      body,
      // The same file again answers the version it made (200), unless a duplicate is asked for.
      idempotent: options.duplicate !== true,
      signal: options.signal,
      timeoutMs: options.timeoutMs ?? 0,
    });
    const detail = (await response.json()) as VersionDetail & { existing?: true };
    return { ...detail, status: response.status as PushedVersion['status'] };
  }

  /** The protocol's model metadata: name, versions, inputs and outputs (GET /v2/models/{m}[/versions/{v}]). */
  metadata(name: string, version?: string | number, options: { signal?: AbortSignal } = {}): Promise<ModelMetadata> {
    return this.http.json({ method: 'GET', path: modelPath('/v2/models', name, version), idempotent: true, signal: options.signal });
  }

  /** Whether the model (or version) is READY to infer; false while it loads or is unavailable. @throws GantryError 404 for an unknown model. */
  async ready(name: string, version?: string | number, options: { signal?: AbortSignal } = {}): Promise<boolean> {
    try {
      const answer = await this.http.json<{ ready: boolean }>({
        method: 'GET',
        path: `${modelPath('/v2/models', name, version)}/ready`,
        idempotent: true,
        signal: options.signal,
        retries: 0,
      });
      return answer.ready;
    } catch (error) {
      if (error instanceof GantryError && error.status === 503) return false;
      throw error;
    }
  }

  /** The model's aliases (GET /v1/models/{m}/aliases). */
  async aliases(name: string, options: { signal?: AbortSignal } = {}): Promise<ModelAlias[]> {
    const answer = await this.http.json<{ aliases: ModelAlias[] }>({
      method: 'GET',
      path: `${modelPath('/v1/models', name)}/aliases`,
      idempotent: true,
      signal: options.signal,
    });
    return answer.aliases;
  }

  /** Points an alias at a version (creating or moving it): how a rollout or rollback is done. */
  setAlias(name: string, alias: string, version: string | number, options: { signal?: AbortSignal } = {}): Promise<ModelAlias> {
    return this.http.json({
      method: 'PUT',
      path: `${modelPath('/v1/models', name)}/aliases/${segment(alias)}`,
      body: jsonBody({ version: String(version) }),
      idempotent: true,
      signal: options.signal,
    });
  }

  removeAlias(name: string, alias: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    return this.http.empty({ method: 'DELETE', path: `${modelPath('/v1/models', name)}/aliases/${segment(alias)}`, idempotent: true, signal: options.signal });
  }

  /** The model's traffic policy; `{}` when it has none. */
  traffic(name: string, options: { signal?: AbortSignal } = {}): Promise<TrafficPolicy> {
    return this.http.json({ method: 'GET', path: `${modelPath('/v1/models', name)}/traffic`, idempotent: true, signal: options.signal });
  }

  /** Replaces the model's traffic policy (splits, stickyBy, shadow). */
  setTraffic(name: string, policy: Omit<TrafficPolicy, 'updatedAt'>, options: { signal?: AbortSignal } = {}): Promise<TrafficPolicy> {
    return this.http.json({
      method: 'PUT',
      path: `${modelPath('/v1/models', name)}/traffic`,
      body: jsonBody(policy),
      idempotent: true,
      signal: options.signal,
    });
  }

  removeTraffic(name: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    return this.http.empty({ method: 'DELETE', path: `${modelPath('/v1/models', name)}/traffic`, idempotent: true, signal: options.signal });
  }

  /** The model's configuration as Triton's ModelConfig JSON plus Gantry's settings (GET /v2/models/{m}[/versions/{v}]/config). */
  config(name: string, version?: string | number, options: { signal?: AbortSignal } = {}): Promise<Record<string, unknown>> {
    return this.http.json({ method: 'GET', path: `${modelPath('/v2/models', name, version)}/config`, idempotent: true, signal: options.signal });
  }

  /** Changes the model's run-time settings (any subset; null resets a field to its default); answers them all. */
  updateConfig(
    name: string,
    changes: { [Field in keyof ModelSettings]?: ModelSettings[Field] | null },
    options: { signal?: AbortSignal } = {},
  ): Promise<ModelSettings> {
    return this.http.json({
      method: 'PUT',
      path: `${modelPath('/v1/models', name)}/config`,
      body: jsonBody(changes),
      idempotent: true,
      signal: options.signal,
    });
  }

  /** Triton's statistics of every version of a model, or of every model (GET /v2/models[/{m}[/versions/{v}]]/stats). */
  stats(name?: string, version?: string | number, options: { signal?: AbortSignal } = {}): Promise<Record<string, unknown>> {
    const path = name === undefined ? '/v2/models/stats' : `${modelPath('/v2/models', name, version)}/stats`;
    return this.http.json({ method: 'GET', path, idempotent: true, signal: options.signal });
  }

  /**
   * Sets a version's warm-up sample (an inference request with JSON data) and reloads it so the sample runs on every
   * instance; answers the version (202 while it still loads with `wait: false`).
   */
  async setWarmup(name: string, version: string | number, sample: object, options: { wait?: boolean; signal?: AbortSignal } = {}): Promise<VersionDetail> {
    return this.http.json({
      method: 'POST',
      path: `${modelPath('/v1/models', name, version)}/warmup${queryString({ wait: options.wait })}`,
      body: jsonBody(sample),
      idempotent: true,
      signal: options.signal,
      timeoutMs: 0,
    });
  }

  /** Every version of the caller's models with its state (Triton's repository index; `ready: true` lists READY ones only). */
  repositoryIndex(options: { ready?: boolean; signal?: AbortSignal } = {}): Promise<Array<{ name: string; version: string; state: string; reason: string }>> {
    const body = options.ready === undefined ? {} : { ready: options.ready };
    return this.http.json({ method: 'POST', path: '/v2/repository/index', body: jsonBody(body), idempotent: true, signal: options.signal });
  }

  /** Loads (or reloads) every version of a model; answers once the newest is READY. */
  load(name: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    return this.http.empty({
      method: 'POST',
      path: `/v2/repository/models/${segment(name)}/load`,
      body: jsonBody({}),
      idempotent: true,
      signal: options.signal,
      timeoutMs: 0,
    });
  }

  /** Unloads a model: every version becomes UNAVAILABLE (its files are kept; load() brings it back). */
  unload(name: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    return this.http.empty({
      method: 'POST',
      path: `/v2/repository/models/${segment(name)}/unload`,
      body: jsonBody({}),
      idempotent: true,
      signal: options.signal,
    });
  }
}
