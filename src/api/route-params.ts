import { z } from 'zod';

/**
 * Path parameters are checked in the handler rather than by the schema so that a bad name gets the precise
 * message (and the same 400) wherever it appears. A model name is resolved in the caller's tenant
 * (requested-model.ts), which checks it too.
 */
export const modelParamsSchema = z.object({ model: z.string() });
export const modelVersionParamsSchema = z.object({ model: z.string(), version: z.string() });
