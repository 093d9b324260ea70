import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { splitQualifiedName } from '../../auth/model-names.js';
import { defaultTenant, tenantIdPattern } from '../../auth/principal.js';
import type { TenantRecord } from '../../auth/tenant-store.js';
import { errors } from '../../errors.js';
import { tenantLimitsSchema } from '../../limits/tenant-limits.js';
import { errorBodySchema } from '../../protocol/oip-schemas.js';
import type { ApiServices } from '../services.js';

export const tenantSchema = z.object({
  id: z.string(),
  name: z.string(),
  createdAt: z.string(),
  disabled: z.boolean(),
  limits: tenantLimitsSchema.describe('Rates, quotas and caps (README "Limits"); a limit left out is unlimited.'),
});

const tenantIdSchema = z
  .string()
  .regex(tenantIdPattern, 'tenant ids are 1-32 characters: lower-case letters, digits and -, starting with a letter or digit')
  .describe('Lower-case letters, digits and -, at most 32 characters.');
const createSchema = z.object({ id: tenantIdSchema, name: z.string().min(1).max(200).optional(), limits: tenantLimitsSchema.optional() }).strict();
const patchSchema = z
  .object({
    name: z.string().min(1).max(200).optional(),
    disabled: z.boolean().optional().describe("A disabled tenant's keys are refused (403) until it is enabled again."),
    limits: tenantLimitsSchema.optional().describe('Replaces the limits whole ({} removes them all).'),
  })
  .strict();
const tenantParamsSchema = z.object({ tenant: z.string() });
const errorResponses = { '4xx': errorBodySchema, '5xx': errorBodySchema };

/** Tenants: owners of models and keys (admin only; the scope table says so). */
export async function tenantRoutes(app: FastifyInstance, services: ApiServices): Promise<void> {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  const { tenants } = services;

  const existing = async (id: string) => {
    const tenant = tenantIdPattern.test(id) ? await tenants.get(id) : undefined;
    if (tenant === undefined) throw errors.tenantNotFound(id);
    return tenant;
  };
  const withLimits = async (tenant: TenantRecord) => ({ ...tenant, limits: await services.limits.tenantLimits(tenant.id) });

  typed.post(
    '/v1/tenants',
    { schema: { tags: ['tenants'], summary: 'Create a tenant', body: createSchema, response: { 201: tenantSchema, ...errorResponses } } },
    async (request, reply) => {
      const created = await tenants.create(request.body.id, request.body.name);
      const limits = request.body.limits === undefined ? {} : await services.limits.setTenantLimits(created.id, request.body.limits);
      return reply.status(201).send({ ...created, limits });
    },
  );

  typed.get(
    '/v1/tenants',
    { schema: { tags: ['tenants'], summary: 'List tenants', response: { 200: z.object({ tenants: z.array(tenantSchema) }), ...errorResponses } } },
    async () => ({
      tenants: await Promise.all((await tenants.list()).map(withLimits)),
    }),
  );

  typed.get(
    '/v1/tenants/:tenant',
    { schema: { tags: ['tenants'], summary: 'One tenant', params: tenantParamsSchema, response: { 200: tenantSchema, ...errorResponses } } },
    async (request) => withLimits(await existing(request.params.tenant)),
  );

  typed.patch(
    '/v1/tenants/:tenant',
    {
      schema: {
        tags: ['tenants'],
        summary: 'Rename, disable or enable a tenant',
        params: tenantParamsSchema,
        body: patchSchema,
        response: { 200: tenantSchema, ...errorResponses },
      },
    },
    async (request) => {
      const tenant = await existing(request.params.tenant);
      if (tenant.id === defaultTenant && request.body.disabled === true)
        throw errors.invalidArgument("The default tenant cannot be disabled: it owns the admin's models.");
      const updated = await tenants.update(tenant.id, {
        ...(request.body.name === undefined ? {} : { name: request.body.name }),
        ...(request.body.disabled === undefined ? {} : { disabled: request.body.disabled }),
      });
      if (request.body.limits === undefined) return withLimits(updated);
      return { ...updated, limits: await services.limits.setTenantLimits(tenant.id, request.body.limits) };
    },
  );

  typed.delete(
    '/v1/tenants/:tenant',
    {
      schema: {
        tags: ['tenants'],
        summary: 'Delete a tenant that owns no models; its keys stop working at once',
        params: tenantParamsSchema,
        response: { 204: z.null(), ...errorResponses },
      },
    },
    async (request, reply) => {
      const tenant = await existing(request.params.tenant);
      if (tenant.id === defaultTenant) throw errors.invalidArgument('The default tenant cannot be deleted.');
      const owned = (await services.registry.listModelNames()).filter((name) => splitQualifiedName(name).tenant === tenant.id);
      if (owned.length > 0) {
        throw errors.failedPrecondition(
          `Tenant '${tenant.id}' still owns ${owned.length} model(s) (${owned
            .slice(0, 5)
            .map((name) => `'${splitQualifiedName(name).name}'`)
            .join(', ')}${owned.length > 5 ? ', …' : ''}); delete them first (DELETE /v1/models/${tenant.id}~<name>).`,
        );
      }
      // The tenant's limits live in its record and go with it; its keys' limits go here.
      const keyIds = await tenants.delete(tenant.id);
      for (const keyId of keyIds) await services.limits.deleteKeyLimits(keyId);
      return reply.status(204).send(null);
    },
  );
}
