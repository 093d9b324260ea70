// Calls to the Gantry REST API from the console: the same public routes any client uses, with the tab's key.
import { authorizationHeaders } from './session-key';

/** An answer that was not 2xx: its status and the API's own message (`{"error": "..."}`). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function errorOf(response: Response): Promise<ApiError> {
  const text = await response.text();
  try {
    const body = JSON.parse(text) as { error?: unknown };
    if (typeof body.error === 'string') return new ApiError(response.status, body.error);
  } catch {
    // Not JSON: the text itself (shortened) says what happened.
  }
  return new ApiError(response.status, `${response.status} ${response.statusText}${text === '' ? '' : `: ${text.slice(0, 200)}`}`);
}

/** A JSON call: the parsed body of a 2xx answer (undefined for 204), else an ApiError. */
export async function apiJson<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { ...authorizationHeaders() };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(path, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  if (!response.ok) throw await errorOf(response);
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

export const apiGet = <T>(path: string): Promise<T> => apiJson<T>('GET', path);

/** Path segment of a model name (names may hold `.` and `~`, which are safe; anything else is encoded). */
export const modelPath = (name: string): string => `/v1/models/${encodeURIComponent(name)}`;

export interface UploadProgress {
  sentBytes: number;
  totalBytes: number;
  /** ms since the upload started. */
  elapsedMs: number;
}

/**
 * Uploads a model file as the raw body of POST /v1/models/{name}/versions?wait=false, reporting progress: fetch
 * has no upload progress in browsers, XMLHttpRequest's upload events do. Resolves with the 202 (or 200) body.
 */
export function uploadModel<T>(name: string, file: File, onProgress: (progress: UploadProgress) => void, signal?: AbortSignal): Promise<T> {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    const started = performance.now();
    request.open('POST', `${modelPath(name)}/versions?wait=false`);
    for (const [header, value] of Object.entries(authorizationHeaders())) request.setRequestHeader(header, value);
    request.setRequestHeader('content-type', 'application/octet-stream');
    request.upload.onprogress = (event) =>
      onProgress({ sentBytes: event.loaded, totalBytes: event.lengthComputable ? event.total : file.size, elapsedMs: performance.now() - started });
    request.onload = () => {
      let body: { error?: string } | undefined;
      try {
        body = JSON.parse(request.responseText) as { error?: string };
      } catch {
        body = undefined;
      }
      if (request.status >= 200 && request.status < 300 && body !== undefined) resolve(body as T);
      else reject(new ApiError(request.status, body?.error ?? `${request.status} ${request.statusText}`));
    };
    request.onerror = () => reject(new ApiError(0, 'The upload failed: the connection to the API was lost.'));
    request.onabort = () => reject(new ApiError(0, 'The upload was cancelled.'));
    signal?.addEventListener('abort', () => request.abort());
    request.send(file);
  });
}
