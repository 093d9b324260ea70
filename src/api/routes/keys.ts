import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { keyIdPattern } from '../../auth/api-key-format.js';
import { publicRecord, type ApiKeyRecord } from '../../auth/key-store.js';
import { defaultTenant, hasScope, isAdmin, scopes, tenantIdPattern, type Principal, type Scope } from '../../auth/principal.js';
import { errors } from '../../errors.js';
import { keyLimitsSchema, type KeyLimits } from '../../limits/tenant-limits.js';
import { errorBodySchema } from '../../protocol/oip-schemas.js';
import { isValidModelName } from '../../queue/names.js';
import type { ApiServices } from '../services.js';

const scopeSchema = z.enum(scopes);
const modelListSchema = z
  .array(z.string().refine(isValidModelName, 'model names use letters, digits, _, . and - (at most 128 characters)'))
  .max(1000)
  .describe("Bare model names of the key's tenant that the key may use; omit for all of them.");
const expiresAtSchema = z.iso.datetime({ offset: true }).describe('ISO 8601 date-time after which the key is refused.');

const keySchema = z.object({
  id: z.string().describe('The public part of the key (gk_<id>_…): safe to log and to show.'),
  tenant: z.string(),
  name: z.string(),
  scopes: z.array(z.string()),
  models: z.array(z.string()).optional(),
  createdAt: z.string(),
  expiresAt: z.string().optional(),
  revokedAt: z.string().optional(),
  status: z.enum(['active', 'expired', 'revoked']),
  limits: keyLimitsSchema.describe('The key\'s own rate limits (README "Limits"), on top of its tenant\'s.'),
});
const createdKeySchema = keySchema.extend({ key: z.string().describe('The key itself. Shown this once: Gantry keeps only its hash.') });

const createSchema = z
  .object({
    tenant: z.string().optional().describe("The key's tenant (an admin's choice); default: the caller's own."),
    name: z.string().min(1).max(200).describe('What the key is for, to recognise it in lists.'),
    scopes: z.array(scopeSchema).min(1).max(scopes.length),
    models: modelListSchema.optional(),
    expiresAt: expiresAtSchema.optional(),
    limits: keyLimitsSchema.optional(),
  })
  .strict();
const patchSchema = z
  .object({
    name: z.string().min(1).max(200).optional(),
    scopes: z.array(scopeSchema).min(1).max(scopes.length).optional(),
    models: modelListSchema.nullable().optional().describe('null: no allow-list any more.'),
    expiresAt: expiresAtSchema.nullable().optional().describe('null: never expires.'),
    limits: keyLimitsSchema.optional().describe('Replaces the limits whole ({} removes them).'),
  })
  .strict();
const keyParamsSchema = z.object({ keyId: z.string() });
const listQuerySchema = z.object({ tenant: z.string().optional().describe("An admin's filter; a tenant's key lists its own tenant's keys.") });
const errorResponses = { '4xx': errorBodySchema, '5xx': errorBodySchema };

function withStatus(record: ApiKeyRecord, limits: KeyLimits): z.infer<typeof keySchema> {
  const status =
    record.revokedAt !== undefined ? 'revoked' : record.expiresAt !== undefined && Date.parse(record.expiresAt) <= Date.now() ? 'expired' : 'active';
  return { ...record, status, limits };
}

interface Grant {
  tenant: string;
  scopes: readonly Scope[];
  models: readonly string[] | undefined;
}

/**
 * Whether `caller` may create, change or revoke a key like `grant`: an admin anything (but `admin` only on the
 * default tenant, whose key sees every tenant); a tenant's key with `keys:write` only keys of its own tenant,
 * holding no scope it lacks, never `admin`, and (when it has a model allow-list) no model outside its own.
 */
function checkGrant(caller: Principal, grant: Grant): void {
  if (isAdmin(caller)) {
    if (grant.scopes.includes('admin') && grant.tenant !== defaultTenant)
      throw errors.invalidArgument("The 'admin' scope is only for keys of the default tenant (an admin key sees every tenant).");
    return;
  }
  // Another tenant's keys do not exist for this caller: 404, as for another tenant's models.
  if (grant.tenant !== caller.tenant) throw errors.tenantNotFound(grant.tenant);
  const lacking = grant.scopes.filter((scope) => scope === 'admin' || !hasScope(caller, scope));
  if (lacking.length > 0) throw errors.cannotGrant(`the scope(s) ${lacking.map((scope) => `'${scope}'`).join(', ')}`);
  if (caller.models !== undefined) {
    if (grant.models === undefined)
      throw errors.cannotGrant("every model of the tenant (this key has a model allow-list: give the new key a 'models' list within it)");
    const outside = grant.models.filter((model) => !caller.models!.has(model));
    if (outside.length > 0)
      throw errors.cannotGrant(
        `the model(s) ${outside
          .slice(0, 5)
          .map((model) => `'${model}'`)
          .join(', ')} (outside this key's allow-list)`,
      );
  }
}

/** API keys: an admin manages any tenant's; a tenant's key with `keys:write` its own tenant's, within what it holds. */
export async function keyRoutes(app: FastifyInstance, services: ApiServices): Promise<void> {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  const { keys, tenants } = services;
  const shown = async (record: ApiKeyRecord) => withStatus(record, await services.limits.keyLimits(record.id));
  const shownAll = (records: ApiKeyRecord[]) => Promise.all(records.map(shown));

  /** The key, when the caller may see it (another tenant's is "not found" for a tenant's key). */
  const visibleKey = async (caller: Principal, keyId: string) => {
    const stored = keyIdPattern.test(keyId) ? await keys.get(keyId) : undefined;
    if (stored === undefined || (!isAdmin(caller) && stored.tenant !== caller.tenant)) throw errors.keyNotFound(keyId);
    return stored;
  };

  typed.post(
    '/v1/keys',
    {
      schema: {
        tags: ['keys'],
        summary: 'Create a key (the answer holds the key, this once)',
        body: createSchema,
        response: { 201: createdKeySchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const caller = request.principal;
      const tenant = request.body.tenant ?? caller.tenant;
      if (!tenantIdPattern.test(tenant)) throw errors.tenantNotFound(tenant);
      const requestedScopes = [...new Set(request.body.scopes)];
      const models = request.body.models === undefined ? undefined : [...new Set(request.body.models)];
      checkGrant(caller, { tenant, scopes: requestedScopes, models });
      if (request.body.expiresAt !== undefined && Date.parse(request.body.expiresAt) <= Date.now())
        throw errors.invalidArgument('expiresAt is in the past: give a date-time to come.');
      if ((await tenants.get(tenant)) === undefined) throw errors.tenantNotFound(tenant);
      const created = await keys.create({
        tenant,
        name: request.body.name,
        scopes: requestedScopes,
        ...(models === undefined ? {} : { models }),
        ...(request.body.expiresAt === undefined ? {} : { expiresAt: new Date(request.body.expiresAt).toISOString() }),
      });
      const limits = request.body.limits === undefined ? {} : await services.limits.setKeyLimits(created.record.id, request.body.limits);
      return reply.status(201).send({ ...withStatus(created.record, limits), key: created.key });
    },
  );

  typed.get(
    '/v1/keys',
    {
      schema: {
        tags: ['keys'],
        summary: 'List keys (never their secrets or hashes)',
        querystring: listQuerySchema,
        response: { 200: z.object({ keys: z.array(keySchema) }), ...errorResponses },
      },
    },
    async (request) => {
      const caller = request.principal;
      const wanted = request.query.tenant;
      if (!isAdmin(caller)) {
        if (wanted !== undefined && wanted !== caller.tenant) throw errors.tenantNotFound(wanted);
        return { keys: await shownAll(await keys.list(caller.tenant)) };
      }
      if (wanted !== undefined) {
        if (!tenantIdPattern.test(wanted) || (await tenants.get(wanted)) === undefined) throw errors.tenantNotFound(wanted);
        return { keys: await shownAll(await keys.list(wanted)) };
      }
      const all: ApiKeyRecord[] = [];
      for (const tenant of await tenants.list()) all.push(...(await keys.list(tenant.id)));
      return { keys: await shownAll(all) };
    },
  );

  typed.get(
    '/v1/keys/:keyId',
    { schema: { tags: ['keys'], summary: 'One key (never its secret or hash)', params: keyParamsSchema, response: { 200: keySchema, ...errorResponses } } },
    async (request) => shown(publicRecord(await visibleKey(request.principal, request.params.keyId))),
  );

  typed.patch(
    '/v1/keys/:keyId',
    {
      schema: {
        tags: ['keys'],
        summary: 'Rename a key or change its scopes, models or expiry (at once on every API process)',
        params: keyParamsSchema,
        body: patchSchema,
        response: { 200: keySchema, ...errorResponses },
      },
    },
    async (request) => {
      const caller = request.principal;
      const current = await visibleKey(caller, request.params.keyId);
      // A key may change only keys no more powerful than itself, into keys no more powerful than itself.
      checkGrant(caller, { tenant: current.tenant, scopes: current.scopes, models: current.models });
      const changes = request.body;
      const nextScopes = changes.scopes === undefined ? current.scopes : [...new Set(changes.scopes)];
      const nextModels = changes.models === undefined ? current.models : changes.models === null ? undefined : [...new Set(changes.models)];
      checkGrant(caller, { tenant: current.tenant, scopes: nextScopes, models: nextModels });
      if (changes.expiresAt !== undefined && changes.expiresAt !== null && Date.parse(changes.expiresAt) <= Date.now())
        throw errors.invalidArgument('expiresAt is in the past: revoke the key (DELETE) to stop it now.');
      const updated = await keys.update(current.id, {
        ...(changes.name === undefined ? {} : { name: changes.name }),
        ...(changes.scopes === undefined ? {} : { scopes: nextScopes }),
        ...(changes.models === undefined ? {} : { models: changes.models === null ? null : nextModels! }),
        ...(changes.expiresAt === undefined ? {} : { expiresAt: changes.expiresAt === null ? null : new Date(changes.expiresAt).toISOString() }),
      });
      if (changes.limits === undefined) return shown(updated);
      return withStatus(updated, await services.limits.setKeyLimits(updated.id, changes.limits));
    },
  );

  typed.delete(
    '/v1/keys/:keyId',
    {
      schema: {
        tags: ['keys'],
        summary: 'Revoke a key: refused at once by every API process (listed as revoked for 30 days)',
        params: keyParamsSchema,
        response: { 200: keySchema, ...errorResponses },
      },
    },
    async (request) => {
      const caller = request.principal;
      const current = await visibleKey(caller, request.params.keyId);
      checkGrant(caller, { tenant: current.tenant, scopes: current.scopes, models: current.models });
      return shown(await keys.revoke(current.id));
    },
  );
}
