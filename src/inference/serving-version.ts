import { createHash } from 'node:crypto';
import { ErrorCode, GantryError, errors } from '../errors.js';
import type { ModelSignature } from '../protocol/signature.js';
import type { ModelVersion } from '../registry/model-registry.js';
import type { TrafficPolicy, TrafficSplit } from '../registry/traffic-policy.js';

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

/**
 * A split's draw for one request: a number in (0, 1) per version, uniform and independent across versions. Random
 * per request, or derived from a sticky value ({@link stickyDraw}) so the same caller always draws the same.
 */
export type SplitDraw = (version: string) => number;

/** How a request that names no version is spread over the policy's splits. */
export interface TrafficRouting {
  policy: TrafficPolicy;
  /** Absent: no request to draw for (describing the model): the heaviest READY split version is the one. */
  draw?: SplitDraw;
}

/** A draw fresh for each request. */
export const randomDraw: SplitDraw = () => Math.random() || Number.MIN_VALUE;

/**
 * The draw of one sticky value (a header's value, an API key's id) for one model: a hash of the model, the value
 * and the version, so a caller lands on the same version of a model for as long as its policy is unchanged, and
 * on unrelated versions of different models.
 */
export function stickyDraw(model: string, stickyValue: string): SplitDraw {
  return (version) => {
    const digest = createHash('sha256').update(model).update('\0').update(stickyValue).update('\0').update(version).digest();
    // 48 bits are plenty for a share of up to 16 splits; + 0.5 keeps the draw strictly inside (0, 1).
    return (digest.readUIntBE(0, 6) + 0.5) / 2 ** 48;
  };
}

/** No READY version among a model's splits (503, retryable: a split version may finish loading). */
export function noReadySplit(model: string, splits: readonly TrafficSplit[]): GantryError {
  const named = splits
    .slice(0, 16)
    .map((split) => split.version)
    .join(', ');
  return new GantryError(
    ErrorCode.Unavailable,
    `None of the versions model '${model}' splits its traffic over (${named}) is READY; load one of them or change the split (PUT /v1/models/{model}/traffic).`,
    { retryAfterSeconds: 1 },
  );
}

/**
 * Chooses among the READY split versions by weight: weighted rendezvous hashing (each version scores
 * -ln(draw) / weight, the lowest wins), which gives each version its weight's share of the draws and, for a sticky
 * draw, moves only the callers of a version that stops being READY (or leaves the split) elsewhere.
 */
function splitVersion(model: string, versions: readonly ModelVersion[], splits: readonly TrafficSplit[], draw: SplitDraw | undefined): VersionWithSignature {
  let chosen: VersionWithSignature | undefined;
  let best = Number.POSITIVE_INFINITY;
  for (const split of splits) {
    const candidate = versions.find((version) => version.version === split.version);
    if (candidate === undefined || !isReady(candidate)) continue;
    const score = draw === undefined ? 1 / split.weight : -Math.log(draw(split.version)) / split.weight;
    if (score < best) {
      best = score;
      chosen = candidate;
    }
  }
  if (chosen === undefined) throw noReadySplit(model, splits);
  return chosen;
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
 * - nothing, with a traffic split: one of the split's READY versions, chosen by weight (at random, or by the
 *   caller's sticky value); a split overrides `production`, and none of its versions READY is a 503;
 * - nothing: the version the `production` alias points at when the model has one (which must be READY: a
 *   pinned model never silently serves another version), otherwise the newest READY version.
 * A request that names a version or an alias is never split.
 *
 * @param versions the model's versions, oldest first (as the registry lists them).
 * @param aliases the model's aliases.
 * @param traffic the model's traffic policy and this request's draw; absent: no split.
 * @throws 404 for an unknown model, version or alias; 503 (retryable) when what was named is not READY or,
 *   with nothing named, no version (or no split version) is.
 */
export function servingVersion(
  model: string,
  versions: readonly ModelVersion[],
  aliases: AliasTable,
  requested: string | undefined,
  traffic?: TrafficRouting,
): VersionWithSignature {
  if (versions.length === 0) throw errors.modelNotFound(model);
  const reference = versionReference(requested);
  if (reference.kind === 'version') {
    const found = versions.find((candidate) => candidate.version === reference.version);
    if (found === undefined) throw errors.modelNotFound(model, reference.version);
    if (!isReady(found)) throw errors.modelNotReady(model, reference.version, found.state);
    return found;
  }
  const splits = traffic?.policy.splits ?? [];
  if (reference.kind === 'default' && splits.length > 0) return splitVersion(model, versions, splits, traffic?.draw);
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
 * version whatever its state; with nothing named, the version that would serve ({@link servingVersion}; with a
 * split, its heaviest READY version).
 * @throws 404 for an unknown model, version or alias; 503 for an alias whose version is gone or, with nothing
 *   named, when no version can serve.
 */
export function describedVersion(
  model: string,
  versions: readonly ModelVersion[],
  aliases: AliasTable,
  requested: string | undefined,
  traffic?: TrafficPolicy,
): ModelVersion {
  if (versions.length === 0) throw errors.modelNotFound(model);
  const reference = versionReference(requested);
  if (reference.kind === 'version') {
    const found = versions.find((candidate) => candidate.version === reference.version);
    if (found === undefined) throw errors.modelNotFound(model, reference.version);
    return found;
  }
  if (reference.kind === 'default') return servingVersion(model, versions, aliases, requested, traffic === undefined ? undefined : { policy: traffic });
  const target = aliases.get(reference.alias);
  if (target === undefined) throw unknownAlias(model, reference.alias);
  const found = versions.find((candidate) => candidate.version === target);
  if (found === undefined) throw aliasNotReady(model, reference.alias, target, undefined);
  return found;
}
