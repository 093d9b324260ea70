import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance, FastifyRequest, FastifySchema } from 'fastify';
import fp from 'fastify-plugin';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';
import type { Authenticator } from '../../auth/authenticator.js';
import { describeRequirement, requirementOf } from '../../auth/route-scopes.js';
import type { ModelCatalog } from '../../inference/model-catalog.js';
import type { ModelRegistry } from '../../registry/model-registry.js';
import { callerDocument, documentCaller } from '../openapi/caller-document.js';
import { describeGenericOperations } from '../openapi/generic-operations.js';
import { servedModelsFor, type ServedModelsView } from '../openapi/served-models.js';
import { swaggerUiConfig } from '../openapi/swagger-ui-config.js';

/** Either header carries the same key (src/auth/credentials.ts). */
const securitySchemes = {
  bearerAuth: { type: 'http' as const, scheme: 'bearer', description: 'An API key (gk_…) or the admin key: `Authorization: Bearer <key>`.' },
  apiKeyHeader: { type: 'apiKey' as const, in: 'header', name: 'x-api-key', description: 'The same key in `x-api-key: <key>`.' },
};
const needsKey: Array<Record<string, string[]>> = [{ bearerAuth: [] }, { apiKeyHeader: [] }];

export interface OpenApiPluginOptions {
  version: string;
  /** Where the per-model operations come from: the caller's visible models, read through the catalog. */
  registry: ModelRegistry;
  catalog: ModelCatalog;
  /** Checks a key sent with /docs/json; undefined when GANTRY_AUTH=off (every caller is the admin). */
  authenticator: Authenticator | undefined;
  /** GANTRY_OPENAPI_MAX_MODELS: READY models a document describes at most. */
  maxModels: number;
}

/**
 * OpenAPI generated from the routes' zod schemas, served at /docs. Each operation's security and the scope it
 * needs come from the one scope table (src/auth/route-scopes.ts), so the document cannot disagree with what is
 * enforced. The generic document is built once; each request for it gets a copy with one infer operation per READY
 * model the caller's key can see (none for a caller without a key), so one tenant's document never names another
 * tenant's models, and the answer is never cached by anyone in between.
 */
async function openApiPlugin(app: FastifyInstance, options: OpenApiPluginOptions): Promise<void> {
  await app.register(swagger, {
    openapi: {
      info: {
        title: 'Gantry',
        description:
          'Self-hosted model serving: the Open Inference Protocol (KServe v2) plus model management. Every route but the health probes needs an API key ' +
          '(`Authorization: Bearer <key>` or `x-api-key`); each operation names the scope it needs.',
        version: options.version,
      },
      components: { securitySchemes },
      security: needsKey,
    },
    transform: (input) => {
      const transformed = jsonSchemaTransform(input);
      const method = Array.isArray(input.route.method) ? input.route.method[0]! : input.route.method;
      const requirement = requirementOf(method, input.url);
      const schema = transformed.schema as FastifySchema & { security?: unknown; description?: string };
      const needs = requirement === 'public' ? 'No key needed.' : `Needs ${describeRequirement(requirement)} (an admin key holds every scope).`;
      return {
        url: transformed.url,
        schema: {
          ...schema,
          security: requirement === 'public' ? [] : needsKey,
          description: schema.description === undefined ? needs : `${schema.description}\n\n${needs}`,
        },
      };
    },
    transformObject: (documents) => describeGenericOperations('openapiObject' in documents ? documents.openapiObject : documents.swaggerObject),
  });

  // The view is read (asynchronously) before the handler, which @fastify/swagger-ui makes synchronous.
  const views = new WeakMap<FastifyRequest, ServedModelsView | undefined>();
  const isDocument = (request: FastifyRequest) => /\/docs\/(json|yaml)$/.test(request.routeOptions.url ?? '');
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    uiConfig: swaggerUiConfig,
    uiHooks: {
      preHandler: async (request) => {
        if (!isDocument(request)) return;
        const caller = await documentCaller(request, options.authenticator);
        views.set(request, caller === undefined ? undefined : await servedModelsFor(caller, options, options.maxModels));
      },
    },
    transformSpecification: (document, request, reply) => {
      // Each caller's document is its own: no shared cache may answer another caller with it.
      void reply.header('cache-control', 'private, no-store').header('vary', 'authorization, x-api-key');
      return callerDocument(document as Record<string, unknown>, views.get(request));
    },
  });
}

export default fp(openApiPlugin, { name: 'gantry-openapi' });
