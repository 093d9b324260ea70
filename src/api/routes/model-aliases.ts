import type { FastifyInstance, FastifySchemaCompiler } from 'fastify';
import { validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errors } from '../../errors.js';
import { forModel, requestedModel } from '../../inference/requested-model.js';
import { errorBodySchema } from '../../protocol/oip-schemas.js';
import { aliasErrors, aliasNamePattern, reservedAliasNames } from '../../registry/model-aliases.js';
import type { ApiServices } from '../services.js';

const aliasParamsSchema = z.object({ model: z.string(), alias: z.string() });

const aliasSchema = z.object({
  alias: z.string(),
  version: z.string().describe('The version number the alias points at (responses and metadata always show this number, never the alias)'),
  updatedAt: z.string().describe('When the alias was last set (ISO 8601)'),
});

const aliasListSchema = z.object({ name: z.string(), aliases: z.array(aliasSchema) });

const setAliasBodySchema = z
  .object({ version: z.union([z.string(), z.number()]).describe('An existing version number ("3"); it need not be READY') })
  .describe('Where the alias points');

const versionNumberPattern = /^[1-9][0-9]{0,15}$/;

/** The body is checked in the handler, for a message that names the field; the schema is there for the OpenAPI document. */
const bodyCheckedByHandler: FastifySchemaCompiler<unknown> = (route) => {
  if (route.httpPart === 'body') return (data: unknown) => ({ value: data });
  return validatorCompiler(route as Parameters<typeof validatorCompiler>[0]);
};

/** The version a PUT body names. @throws 400 naming what is wrong. */
function bodyVersion(body: unknown): string {
  const version = typeof body === 'object' && body !== null ? (body as { version?: unknown }).version : undefined;
  const text = typeof version === 'number' && Number.isSafeInteger(version) ? String(version) : version;
  if (typeof text !== 'string' || !versionNumberPattern.test(text)) {
    throw errors.invalidArgument('The body must be {"version": "<n>"}, naming an existing version number of the model such as "3" (not an alias).');
  }
  return text;
}

/** An alias name from a path. @throws 400 for a malformed or reserved name. */
function checkAliasName(alias: string): string {
  if (!aliasNamePattern.test(alias)) throw aliasErrors.invalidName(alias);
  if (reservedAliasNames.has(alias)) throw aliasErrors.reserved(alias);
  return alias;
}

/**
 * `/v1/models/{m}/aliases…` — name versions (`production`, `canary`, …) so requests can address them and unpinned
 * requests follow `production`; moving an alias is how a rollout or a rollback is done.
 */
export async function modelAliasRoutes(app: FastifyInstance, services: ApiServices): Promise<void> {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  const { aliases, config, catalog, registry, metrics } = services;

  typed.get(
    '/v1/models/:model/aliases',
    {
      schema: {
        tags: ['management'],
        summary: "A model's aliases",
        params: z.object({ model: z.string() }),
        response: { 200: aliasListSchema, '4xx': errorBodySchema },
      },
    },
    async (request) => {
      const model = requestedModel(request.principal, request.params.model);
      return forModel(model, async () => {
        if (!(await registry.modelExists(model.qualified))) throw errors.modelNotFound(model.qualified);
        return { name: model.shown, aliases: await aliases.list(model.qualified) };
      });
    },
  );

  typed.put(
    '/v1/models/:model/aliases/:alias',
    {
      schema: {
        tags: ['management'],
        summary:
          'Point an alias at a version (created or moved; the version must exist, READY or not). `production` is what requests naming no version follow.',
        params: aliasParamsSchema,
        body: setAliasBodySchema,
        response: { 200: aliasSchema, '4xx': errorBodySchema },
      },
      validatorCompiler: bodyCheckedByHandler,
    },
    async (request) => {
      const model = requestedModel(request.principal, request.params.model);
      const alias = checkAliasName(request.params.alias);
      const version = bodyVersion(request.body);
      return forModel(model, async () => {
        const result = await aliases.set(model.qualified, alias, version, config.GANTRY_MAX_ALIASES_PER_MODEL);
        if (result.outcome === 'no-such-version') {
          throw (await registry.modelExists(model.qualified)) ? errors.modelNotFound(model.qualified, version) : errors.modelNotFound(model.qualified);
        }
        if (result.outcome === 'too-many-aliases') {
          metrics.limitRejections.inc({ limit: 'aliases_per_model' });
          throw aliasErrors.tooMany(model.qualified, config.GANTRY_MAX_ALIASES_PER_MODEL);
        }
        // This process sees its own change at once, not only when its event comes back.
        catalog.invalidate(model.qualified);
        return result.alias;
      });
    },
  );

  typed.delete(
    '/v1/models/:model/aliases/:alias',
    {
      schema: {
        tags: ['management'],
        summary: 'Remove an alias (removing `production` makes the newest READY version serve unpinned requests again)',
        params: aliasParamsSchema,
        response: { 204: z.null(), '4xx': errorBodySchema },
      },
    },
    async (request, reply) => {
      const model = requestedModel(request.principal, request.params.model);
      const alias = checkAliasName(request.params.alias);
      return forModel(model, async () => {
        if (!(await aliases.remove(model.qualified, alias))) {
          throw (await registry.modelExists(model.qualified)) ? aliasErrors.notFound(model.qualified, alias) : errors.modelNotFound(model.qualified);
        }
        catalog.invalidate(model.qualified);
        return reply.status(204).send(null);
      });
    },
  );
}
