import { ErrorCode, GantryError, errors } from '../errors.js';
import type { ModelSignature } from '../protocol/signature.js';
import type { ModelVersion } from '../registry/model-registry.js';

/** The alias unpinned requests follow when it exists (otherwise the newest READY version serves). */
export const productionAlias = 'production';

/** A version that has been loaded far enough for a worker to read its inputs and outputs. */
export type VersionWithSignature = ModelVersion & { signature: ModelSignature };

/** A model's aliases: alias name → version number (as stored, model-aliases.ts). */
export type AliasTable = ReadonlyMap<string, string>;

/** What a request named: nothing, a version number, or an alias. */
export type VersionReference = { kind: 'default' } | { kind: 'version'; version: string } | { kind: 'alias'; alias: string };

const versionNumberPattern = /^[0-9]+$/;

/**
 * What a request's version field means (already checked by requested-version.ts): undefined is "the default",
 * digits a version number, anything else an alias (alias names are never all digits).
 */
export function versionReference(requested: string | undefined): VersionReference {
  if (requested === undefined) return { kind: 'default' };
  return versionNumberPattern.test(requested) ? { kind: 'version', version: requested } : { kind: 'alias', alias: requested };
}

/** An alias that names no version of the model (404). */
export function unknownAlias(model: string, alias: string): GantryError {
  return new GantryError(ErrorCode.NotFound, `Model '${model}' has no version or alias '${alias}'; GET /v1/models/{model}/aliases lists its aliases.`);
}

/** An alias whose version cannot serve (503, retryable: loading, or unloaded until someone loads it or moves the alias). */
export function aliasNotReady(model: string, alias: string, version: string, state: string | undefined): GantryError {
  const why = state === undefined ? 'which no longer exists' : `which is ${state}`;
  return new GantryError(
    ErrorCode.Unavailable,
    `Alias '${alias}' of model '${model}' points at version ${version}, ${why}; load that version or move the alias (PUT /v1/models/{model}/aliases/${alias}).`,
    { retryAfterSeconds: 1 },
  );
}

function isReady(version: ModelVersion): version is VersionWithSignature {
  return version.state === 'READY' && version.signature !== undefined;
}

function newestReady(versions: readonly ModelVersion[]): VersionWithSignature | undefined {
  for (let index = versions.length - 1; index >= 0; index--) {
    const candidate = versions[index]!;
    if (isReady(candidate)) return candidate;
  }
  return undefined;
}

/**
 * The one rule that decides which version serves a request (inference, and what metadata, readiness and
 * configuration describe when no version is named):
 * - a version number: that version, which must be READY;
 * - an alias: its version, which must be READY (else 503 naming the alias and the version);
 * - nothing: the version the `production` alias points at when the model has one (which must be READY: a
 *   pinned model never silently serves another version), otherwise the newest READY version.
 *
 * @param versions the model's versions, oldest first (as the registry lists them).
 * @param aliases the model's aliases.
 * @throws 404 for an unknown model, version or alias; 503 (retryable) when what was named is not READY or,
 *   with nothing named, no version is.
 */
export function servingVersion(model: string, versions: readonly ModelVersion[], aliases: AliasTable, requested: string | undefined): VersionWithSignature {
  if (versions.length === 0) throw errors.modelNotFound(model);
  const reference = versionReference(requested);
  if (reference.kind === 'version') {
    const found = versions.find((candidate) => candidate.version === reference.version);
    if (found === undefined) throw errors.modelNotFound(model, reference.version);
    if (!isReady(found)) throw errors.modelNotReady(model, reference.version, found.state);
    return found;
  }
  const alias = reference.kind === 'alias' ? reference.alias : aliases.has(productionAlias) ? productionAlias : undefined;
  if (alias === undefined) {
    const newest = newestReady(versions);
    if (newest === undefined) throw errors.noReadyVersion(model);
    return newest;
  }
  const target = aliases.get(alias);
  if (target === undefined) throw unknownAlias(model, alias);
  const found = versions.find((candidate) => candidate.version === target);
  if (found === undefined || !isReady(found)) throw aliasNotReady(model, alias, target, found?.state);
  return found;
}

/**
 * The version a request describes (metadata, readiness, configuration): a named version or alias resolves to its
 * version whatever its state; with nothing named, the version that would serve ({@link servingVersion}).
 * @throws 404 for an unknown model, version or alias; 503 for an alias whose version is gone or, with nothing
 *   named, when no version can serve.
 */
export function describedVersion(model: string, versions: readonly ModelVersion[], aliases: AliasTable, requested: string | undefined): ModelVersion {
  if (versions.length === 0) throw errors.modelNotFound(model);
  const reference = versionReference(requested);
  if (reference.kind === 'version') {
    const found = versions.find((candidate) => candidate.version === reference.version);
    if (found === undefined) throw errors.modelNotFound(model, reference.version);
    return found;
  }
  if (reference.kind === 'default') return servingVersion(model, versions, aliases, requested);
  const target = aliases.get(reference.alias);
  if (target === undefined) throw unknownAlias(model, reference.alias);
  const found = versions.find((candidate) => candidate.version === target);
  if (found === undefined) throw aliasNotReady(model, reference.alias, target, undefined);
  return found;
}
