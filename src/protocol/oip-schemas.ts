import { z } from 'zod';

/**
 * Zod schemas for the Open Inference Protocol's JSON objects (KServe v2 REST). Tensor `data` is typed loosely
 * here on purpose: its elements are checked once, while being decoded into bytes, instead of twice.
 */
const parametersSchema = z.record(z.string(), z.unknown());

export const inferInputSchema = z.object({
  name: z.string().min(1),
  shape: z.array(z.number()),
  datatype: z.string(),
  parameters: parametersSchema.optional(),
  data: z.any().optional().describe('Tensor elements, flat or nested, row-major (absent when binary_data_size is given).'),
});

export const inferRequestedOutputSchema = z.object({
  name: z.string().min(1),
  parameters: parametersSchema.optional(),
});

export const inferRequestSchema = z.object({
  id: z.string().optional(),
  parameters: parametersSchema.optional(),
  inputs: z.array(inferInputSchema).min(1),
  outputs: z.array(inferRequestedOutputSchema).optional(),
});
export type InferRequestBody = z.infer<typeof inferRequestSchema>;

export const inferOutputSchema = z.object({
  name: z.string(),
  shape: z.array(z.number()),
  datatype: z.string(),
  parameters: parametersSchema.optional(),
  data: z.any().optional().describe('Tensor elements, flat, row-major.'),
});

export const inferResponseSchema = z.object({
  model_name: z.string(),
  model_version: z.string().optional(),
  id: z.string().optional(),
  parameters: parametersSchema.optional(),
  outputs: z.array(inferOutputSchema),
});

export const tensorMetadataSchema = z.object({ name: z.string(), datatype: z.string(), shape: z.array(z.number()) });

export const modelMetadataSchema = z.object({
  name: z.string(),
  versions: z.array(z.string()).optional(),
  platform: z.string(),
  inputs: z.array(tensorMetadataSchema),
  outputs: z.array(tensorMetadataSchema),
  /** Gantry's: live workers serving the model (worker pools), and why none does. */
  servedBy: z.number().int().optional(),
  unservedReason: z.string().optional(),
});

export const serverMetadataSchema = z.object({ name: z.string(), version: z.string(), extensions: z.array(z.string()) });
export const serverLiveSchema = z.object({ live: z.boolean() });
export const serverReadySchema = z.object({ ready: z.boolean(), live: z.boolean() });
export const modelReadySchema = z.object({ name: z.string(), ready: z.boolean(), unservedReason: z.string().optional() });

export const errorBodySchema = z.object({ error: z.string(), code: z.string(), requestId: z.string() });

/** The platform name the protocol defines for ONNX models. */
export const onnxPlatform = 'onnx_onnxv1';
