import { ErrorCode, GantryError } from '../errors.js';
import { aliasErrors, aliasNamePattern, reservedAliasNames } from '../registry/model-aliases.js';

const versionPattern = /^[1-9][0-9]{0,15}$/;

/**
 * A version as a request names it (REST path, gRPC `model_version`): undefined or empty means "the serving
 * version"; anything else must be a positive decimal integer or an alias name (registry/model-aliases.ts), which
 * the serving rule (serving-version.ts) resolves.
 * @throws 400 naming the bad version (`latest` is reserved: the default already is the serving version).
 */
export function checkVersion(version: string | undefined): string | undefined {
  if (version === undefined || version === '') return undefined;
  if (versionPattern.test(version) || aliasNamePattern.test(version)) {
    if (reservedAliasNames.has(version)) throw aliasErrors.reserved(version);
    return version;
  }
  throw new GantryError(
    ErrorCode.InvalidArgument,
    `Invalid version '${version.slice(0, 50)}': versions are positive integers such as "1", or alias names such as "production".`,
  );
}
