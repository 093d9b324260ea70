import type { FastifyRequest } from 'fastify';
import type { Authenticator } from '../../auth/authenticator.js';
import { presentedKey } from '../../auth/credentials.js';
import { anonymousAdmin, type Principal } from '../../auth/principal.js';
import { modelInferOperation, servedModelsTag } from './model-operation.js';
import type { ServedModelsView } from './served-models.js';

/* The document is plain JSON from @fastify/swagger. */
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/**
 * Whose document a request to /docs/json (or /docs/yaml) gets. The route is public: without a key the caller is
 * nobody, and its document names no model. With a key, the key is checked as on any route (a bad one is 401, not
 * quietly the anonymous document) and the document shows the models that key can see. With GANTRY_AUTH=off
 * (loopback only) every caller is the admin, as everywhere else.
 * @returns undefined for an anonymous caller.
 */
export async function documentCaller(request: FastifyRequest, authenticator: Authenticator | undefined): Promise<Principal | undefined> {
  if (authenticator === undefined) return anonymousAdmin;
  const key = presentedKey(request.headers);
  // A header that is there but is not one key (another scheme, two x-api-key) is refused like a bad key.
  if (key === undefined && request.headers.authorization === undefined && request.headers['x-api-key'] === undefined) return undefined;
  return authenticator.authenticate(key, (reason, keyId) => request.log.debug({ reason, keyId }, 'API key refused (docs)'));
}

/** How the document tells which models it describes; `x-gantry-served-models` says the same for programs. */
function modelsSentence(view: ServedModelsView | undefined): string {
  if (view === undefined) {
    return 'Per-model operations (real input names, datatypes, shapes and a working example) are shown to a caller that sends its key with this request: `GET /docs/json` with `Authorization: Bearer <key>`, or Authorize in /docs.';
  }
  if (view.hidden !== undefined) return `No per-model operations: ${view.hidden}.`;
  const parts = [
    `Per-model operations ("${servedModelsTag}"): ${view.models.length} READY model${view.models.length === 1 ? '' : 's'} of ${view.visible} visible.`,
  ];
  if (view.notReady > 0) parts.push(`${view.notReady} not READY.`);
  if (view.leftOut > 0)
    parts.push(`${view.leftOut} left out: at most GANTRY_OPENAPI_MAX_MODELS READY models are described; call GET /v2/models/{model} for the others.`);
  return parts.join(' ');
}

/**
 * The caller's document: the generic one (a copy) with an infer operation for each served model of `view`, and a
 * note of what was left out. `view` is undefined for an anonymous caller.
 */
export function callerDocument(document: Json, view: ServedModelsView | undefined): Json {
  const generic = document.paths?.['/v2/models/{model}/infer']?.post as Json | undefined;
  const needs = { security: generic?.security ?? [], sentence: scopeSentenceOf(generic) };
  const paths = (document.paths ??= {}) as Json;
  for (const model of view?.models ?? []) paths[`/v2/models/${model.shown}/infer`] = { post: modelInferOperation(model, needs) };
  const info = (document.info ??= {}) as Json;
  info.description = `${String(info.description ?? '')}\n\n${modelsSentence(view)}`;
  document['x-gantry-served-models'] = {
    shown: view?.models.length ?? 0,
    visible: view?.visible ?? 0,
    notReady: view?.notReady ?? 0,
    leftOut: view?.leftOut ?? 0,
    anonymous: view === undefined,
  };
  if ((view?.models.length ?? 0) > 0) {
    document.tags = [
      ...((document.tags as unknown[] | undefined) ?? []),
      { name: servedModelsTag, description: 'One infer operation per READY model this key can see, with its real inputs and an example it answers.' },
    ];
  }
  return document;
}

/** The generic infer operation's last paragraph: the scope it needs (openapi.ts writes it from the scope table). */
function scopeSentenceOf(operation: Json | undefined): string {
  const description = String(operation?.description ?? '');
  const paragraphs = description.split('\n\n');
  return paragraphs[paragraphs.length - 1] ?? '';
}
