import { errors } from '../errors.js';

const versionPattern = /^[1-9][0-9]{0,15}$/;

/**
 * A version as a request names it (REST path, gRPC `model_version`): undefined or empty means "the serving
 * version"; anything else must be a positive decimal integer.
 * @throws 400 naming the bad version.
 */
export function checkVersion(version: string | undefined): string | undefined {
  if (version === undefined || version === '') return undefined;
  if (!versionPattern.test(version)) throw errors.invalidVersion(version);
  return version;
}
