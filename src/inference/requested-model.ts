import { displayModelName, resolveModelName } from '../auth/model-names.js';
import type { Principal } from '../auth/principal.js';
import { GantryError } from '../errors.js';

/**
 * A model as one request names it. Routes resolve the name in the path once, through the caller's tenant and the
 * key's allow-list, before anything touches the catalog, registry, store or a queue, and use `qualified` below.
 */
export interface RequestedModel {
  /** The name inside Gantry (registry, queues, store records, metric labels): `<tenant>~<name>`, or bare in the default tenant. */
  readonly qualified: string;
  /** The name as the caller wrote it: error messages name the model this way, so they tell nothing new. */
  readonly asWritten: string;
  /** The name responses show the caller (`displayModelName`): bare within its tenant, qualified for an admin elsewhere. */
  readonly shown: string;
}

/**
 * Resolves the model named in a request for `principal`.
 * @throws 400 for a malformed name; 404 (never 403) for another tenant's model or one outside the key's allow-list.
 */
export function requestedModel(principal: Principal, nameAsWritten: string): RequestedModel {
  const qualified = resolveModelName(principal, nameAsWritten);
  return { qualified, asWritten: nameAsWritten, shown: displayModelName(principal, qualified) };
}

/**
 * Runs a route's work on one model. Everything below the routes (catalog, registry, producer, workers across the
 * queue) names models by their qualified names; an error that reaches the caller names the model as the caller
 * wrote it instead, so a tenant never sees its own tenant prefix, let alone another's. Names cannot contain a
 * quote, so the quoted qualified name in a message is always the model's name, never part of another word.
 */
export async function forModel<T>(model: RequestedModel, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw inCallersTerms(error, model);
  }
}

/** The error, its message naming the model as written (the same code and Retry-After); other errors as they are. */
export function inCallersTerms(error: unknown, model: RequestedModel): unknown {
  if (!(error instanceof GantryError) || model.qualified === model.asWritten) return error;
  const quoted = `'${model.qualified}'`;
  if (!error.message.includes(quoted)) return error;
  return new GantryError(error.code, error.message.replaceAll(quoted, `'${model.asWritten}'`), {
    ...(error.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: error.retryAfterSeconds }),
    cause: error,
  });
}
