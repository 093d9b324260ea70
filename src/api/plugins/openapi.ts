import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance, FastifySchema } from 'fastify';
import fp from 'fastify-plugin';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';
import { describeRequirement, requirementOf } from '../../auth/route-scopes.js';

/** Either header carries the same key (src/auth/credentials.ts). */
const securitySchemes = {
  bearerAuth: { type: 'http' as const, scheme: 'bearer', description: 'An API key (gk_…) or the admin key: `Authorization: Bearer <key>`.' },
  apiKeyHeader: { type: 'apiKey' as const, in: 'header', name: 'x-api-key', description: 'The same key in `x-api-key: <key>`.' },
};
const needsKey: Array<Record<string, string[]>> = [{ bearerAuth: [] }, { apiKeyHeader: [] }];

/**
 * OpenAPI generated from the routes' zod schemas, served at /docs. Each operation's security and the scope it
 * needs come from the one scope table (src/auth/route-scopes.ts), so the document cannot disagree with what is
 * enforced.
 */
async function openApiPlugin(app: FastifyInstance, options: { version: string }): Promise<void> {
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
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
}

export default fp(openApiPlugin, { name: 'gantry-openapi' });
