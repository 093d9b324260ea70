import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errors } from '../../errors.js';
import { forModel, requestedModel } from '../../inference/requested-model.js';
import { errorBodySchema } from '../../protocol/oip-schemas.js';
import type { StoredTrafficPolicy } from '../../registry/model-traffic.js';
import type { StickyBy, TrafficPolicy } from '../../registry/traffic-policy.js';
import { modelParamsSchema } from '../route-params.js';
import type { ApiServices } from '../services.js';

/** Most versions one split spreads over: enough for any rollout, few enough to read at a glance. */
export const maxTrafficSplits = 16;

const versionNumberPattern = /^[1-9][0-9]{0,15}$/;

/** HTTP header names (RFC 9110 tokens), lower-case as Node and gRPC metadata give them, at most 64 characters. */
const headerNamePattern = /^[!#$%&'*+.^_`|~0-9a-z-]{1,64}$/;

/** Headers that carry credentials: sticking by them would key routing on a secret; `"key"` sticks by the API key's id. */
const credentialHeaders: ReadonlySet<string> = new Set(['authorization', 'x-api-key', 'cookie', 'proxy-authorization']);

const versionSchema = z
  .union([z.string(), z.number()])
  .refine((version) => versionNumberPattern.test(String(version)), 'must be an existing version number such as "3" (not an alias)')
  .describe('A version number ("3"); it must exist, READY or not');

const splitSchema = z.object({
  version: versionSchema,
  weight: z.number().int('must be a whole number').positive('must be at least 1').max(1_000_000).describe('Its share is weight / the sum of the weights'),
});

const stickyBySchema = z
  .string()
  .refine(
    (sticky) => sticky === 'key' || (sticky.startsWith('header:') && headerNamePattern.test(sticky.slice('header:'.length).toLowerCase())),
    'must be "key", "header:<name>" (a header name such as x-user-id) or null',
  )
  .refine(
    (sticky) => !credentialHeaders.has(sticky.slice('header:'.length).toLowerCase()),
    'must not name a header that carries credentials; use "key" to keep each API key on one version',
  )
  .nullable()
  .describe('What keeps a caller on one version: "header:<name>" (its value), "key" (the API key), or null (each request drawn anew)');

const shadowSchema = z
  .object({
    version: versionSchema,
    percent: z.number().min(0, 'must be from 0 to 100').max(100, 'must be from 0 to 100').describe('The share of primary requests copied to it'),
  })
  .nullable()
  .describe('A version that also runs a copy of a share of the requests, after the primary answer; its answer is compared and discarded');

const setTrafficBodySchema = z
  .object({
    splits: z
      .array(splitSchema)
      .max(maxTrafficSplits, `must have at most ${maxTrafficSplits} entries`)
      .refine((splits) => new Set(splits.map((split) => String(split.version))).size === splits.length, 'must name each version once')
      .optional()
      .describe('How requests that name no version are spread; absent or empty: no split (`production`, else the newest READY version)'),
    stickyBy: stickyBySchema.optional(),
    shadow: shadowSchema.optional(),
  })
  .strict()
  .describe("The model's traffic policy, replacing the one it had");

const trafficSchema = z
  .object({
    splits: z.array(z.object({ version: z.string(), weight: z.number() })).optional(),
    stickyBy: z.string().nullable().optional(),
    shadow: z.object({ version: z.string(), percent: z.number() }).nullable().optional(),
    updatedAt: z.string().optional().describe('When the policy was last set (ISO 8601)'),
  })
  .describe('The policy; `{}` when the model has none');

type SetTrafficBody = z.infer<typeof setTrafficBodySchema>;

/** The policy a PUT body describes (already validated by its schema). */
function policyOf(body: SetTrafficBody): TrafficPolicy {
  const policy: TrafficPolicy = {};
  if (body.splits !== undefined && body.splits.length > 0)
    policy.splits = body.splits.map((split) => ({ version: String(split.version), weight: split.weight }));
  if (body.stickyBy !== undefined) policy.stickyBy = stickyByOf(body.stickyBy);
  if (body.shadow !== undefined && body.shadow !== null) policy.shadow = { version: String(body.shadow.version), percent: body.shadow.percent };
  return policy;
}

function stickyByOf(sticky: string | null): StickyBy {
  if (sticky === null) return null;
  return sticky === 'key' ? { kind: 'key' } : { kind: 'header', header: sticky.slice('header:'.length).toLowerCase() };
}

/** A stored policy as the API shows it: `stickyBy` as written in a PUT. */
function shown(policy: StoredTrafficPolicy | undefined): z.infer<typeof trafficSchema> {
  if (policy === undefined) return {};
  const sticky = policy.stickyBy;
  return {
    ...(policy.splits === undefined ? {} : { splits: policy.splits }),
    stickyBy: sticky === undefined || sticky === null ? null : sticky.kind === 'key' ? 'key' : `header:${sticky.header}`,
    shadow: policy.shadow ?? null,
    updatedAt: policy.updatedAt,
  };
}

/**
 * `/v1/models/{m}/traffic` — a model's traffic policy: canary splits over versions (sticky per caller when asked)
 * and a shadow version. One policy per model, replaced whole by PUT; effective on every API process at once
 * (`traffic-changed`).
 */
export async function modelTrafficRoutes(app: FastifyInstance, services: ApiServices): Promise<void> {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  const { traffic, catalog, registry } = services;

  typed.get(
    '/v1/models/:model/traffic',
    {
      schema: {
        tags: ['management'],
        summary: "A model's traffic policy (splits, stickiness, shadow); {} when it has none",
        params: modelParamsSchema,
        response: { 200: trafficSchema, '4xx': errorBodySchema },
      },
    },
    async (request) => {
      const model = requestedModel(request.principal, request.params.model);
      return forModel(model, async () => {
        if (!(await registry.modelExists(model.qualified))) throw errors.modelNotFound(model.qualified);
        return shown(await traffic.get(model.qualified));
      });
    },
  );

  typed.put(
    '/v1/models/:model/traffic',
    {
      schema: {
        tags: ['management'],
        summary:
          'Set the traffic policy: requests naming no version are split over versions by weight (overriding `production`), sticky by a header or the API key when asked; a shadow version runs a copy of a share of them. Every version named must exist.',
        params: modelParamsSchema,
        body: setTrafficBodySchema,
        response: { 200: trafficSchema, '4xx': errorBodySchema },
      },
    },
    async (request) => {
      const model = requestedModel(request.principal, request.params.model);
      const policy = policyOf(request.body);
      return forModel(model, async () => {
        const result = await traffic.set(model.qualified, policy);
        if (result.outcome === 'no-such-version') {
          throw (await registry.modelExists(model.qualified)) ? errors.modelNotFound(model.qualified, result.version) : errors.modelNotFound(model.qualified);
        }
        // This process sees its own change at once, not only when its event comes back.
        catalog.invalidate(model.qualified);
        return shown(result.policy);
      });
    },
  );

  typed.delete(
    '/v1/models/:model/traffic',
    {
      schema: {
        tags: ['management'],
        summary: 'Remove the traffic policy: no split and no shadow (`production`, else the newest READY version, serves)',
        params: modelParamsSchema,
        response: { 204: z.null(), '4xx': errorBodySchema },
      },
    },
    async (request, reply) => {
      const model = requestedModel(request.principal, request.params.model);
      return forModel(model, async () => {
        if (!(await traffic.remove(model.qualified)) && !(await registry.modelExists(model.qualified))) throw errors.modelNotFound(model.qualified);
        catalog.invalidate(model.qualified);
        return reply.status(204).send(null);
      });
    },
  );
}
