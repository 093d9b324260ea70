import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { keyIdPattern } from '../../auth/api-key-format.js';
import { isAdmin, tenantIdPattern } from '../../auth/principal.js';
import { z } from 'zod';
import { errors } from '../../errors.js';
import { keyLimitsSchema, tenantLimitsSchema } from '../../limits/tenant-limits.js';
import { errorBodySchema } from '../../protocol/oip-schemas.js';
import type { ApiServices } from '../services.js';

const errorResponses = { '4xx': errorBodySchema, '5xx': errorBodySchema };
// The body is checked by the store, which names the bad field the way the rest of the API does.
const limitsBodySchema = z.record(z.string(), z.unknown());

/**
 * A tenant's limits (admin only) and a key's limits (the admin, or a `keys:write` key of the key's own tenant).
 * `PUT` replaces the whole document, so `{}` removes every limit; a change applies at once on the API process
 * that took it and within about a second on the others.
 */
export async function limitRoutes(app: FastifyInstance, services: ApiServices): Promise<void> {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  const { limits, tenants, keys } = services;

  const existingTenant = async (tenant: string) => {
    if (!tenantIdPattern.test(tenant) || (await tenants.get(tenant)) === undefined) throw errors.tenantNotFound(tenant);
  };
  /** Another tenant's key is "not found" for a tenant's key, as in the key routes. */
  const visibleKey = async (keyId: string, caller: Parameters<typeof isAdmin>[0]) => {
    const stored = keyIdPattern.test(keyId) ? await keys.get(keyId) : undefined;
    if (stored === undefined || (!isAdmin(caller) && stored.tenant !== caller.tenant)) throw errors.keyNotFound(keyId);
  };

  const tenantParams = z.object({ tenant: z.string() });
  typed.get(
    '/v1/tenants/:tenant/limits',
    {
      schema: {
        tags: ['limits'],
        summary: "A tenant's limits (rates, quotas, caps; a missing one is unlimited)",
        params: tenantParams,
        response: { 200: tenantLimitsSchema, ...errorResponses },
      },
    },
    async (request) => {
      await existingTenant(request.params.tenant);
      return limits.tenantLimits(request.params.tenant);
    },
  );
  typed.put(
    '/v1/tenants/:tenant/limits',
    {
      schema: {
        tags: ['limits'],
        summary: "Replace a tenant's limits ({} removes them all)",
        params: tenantParams,
        body: limitsBodySchema,
        response: { 200: tenantLimitsSchema, ...errorResponses },
      },
    },
    async (request) => {
      await existingTenant(request.params.tenant);
      return limits.setTenantLimits(request.params.tenant, request.body);
    },
  );

  const keyParams = z.object({ keyId: z.string() });
  typed.get(
    '/v1/keys/:keyId/limits',
    {
      schema: {
        tags: ['limits'],
        summary: "A key's own rate limits (its tenant's apply too)",
        params: keyParams,
        response: { 200: keyLimitsSchema, ...errorResponses },
      },
    },
    async (request) => {
      await visibleKey(request.params.keyId, request.principal);
      return limits.keyLimits(request.params.keyId);
    },
  );
  typed.put(
    '/v1/keys/:keyId/limits',
    {
      schema: {
        tags: ['limits'],
        summary: "Replace a key's rate limits ({} removes them)",
        params: keyParams,
        body: limitsBodySchema,
        response: { 200: keyLimitsSchema, ...errorResponses },
      },
    },
    async (request) => {
      await visibleKey(request.params.keyId, request.principal);
      return limits.setKeyLimits(request.params.keyId, request.body);
    },
  );
}
