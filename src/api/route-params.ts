import { z } from 'zod';
import { errors } from '../errors.js';

/**
 * Path parameters are checked in the handler rather than by the schema so that a bad name gets the precise
 * message (and the same 400) wherever it appears. A model name is resolved in the caller's tenant
 * (requested-model.ts), which checks it too.
 */
export const modelParamsSchema = z.object({ model: z.string() });
export const modelVersionParamsSchema = z.object({ model: z.string(), version: z.string() });

const versionPattern = /^[1-9][0-9]{0,15}$/;

export function checkVersion(version: string | undefined): string | undefined {
  if (version === undefined) return undefined;
  if (!versionPattern.test(version)) throw errors.invalidVersion(version);
  return version;
}
