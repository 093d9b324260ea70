import type { FastifyInstance, FastifySchemaCompiler } from 'fastify';
import { validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { errors } from '../../errors.js';
import { errorBodySchema } from '../../protocol/oip-schemas.js';
import { modelConfigPatchSchema, modelConfigSchema } from '../../registry/model-config.js';
import { describeModelConfig, tritonModelConfigSchema } from '../../inference/model-config-view.js';
import { forModel, requestedModel } from '../../inference/requested-model.js';
import { modelParamsSchema, modelVersionParamsSchema } from '../route-params.js';
import type { ApiServices } from '../services.js';

/**
 * The body of PUT …/config is checked by ModelConfigStore.update, whose messages name the field; the route's
 * schema is there for the OpenAPI document, so the body passes the schema-level validation untouched.
 */
const bodyCheckedByHandler: FastifySchemaCompiler<unknown> = (route) => {
  if (route.httpPart === 'body') return (data: unknown) => ({ value: data });
  return validatorCompiler(route as Parameters<typeof validatorCompiler>[0]);
};

/** Model configuration extension (GET /v2/models/{m}[/versions/{v}]/config) and PUT /v1/models/{m}/config. */
export async function modelConfigRoutes(app: FastifyInstance, services: ApiServices): Promise<void> {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  const { catalog, registry, modelConfigs, config: serverConfig } = services;

  const responses = { 200: tritonModelConfigSchema, '4xx': errorBodySchema, '5xx': errorBodySchema };
  typed.get(
    '/v2/models/:model/config',
    {
      schema: {
        tags: ['models'],
        summary: 'Model configuration (Triton ModelConfig JSON plus Gantry settings)',
        params: modelParamsSchema,
        response: responses,
      },
    },
    async (request) => describeModelConfig(services, request.principal, request.params.model),
  );
  typed.get(
    '/v2/models/:model/versions/:version/config',
    { schema: { tags: ['models'], summary: 'Model configuration as seen by one version', params: modelVersionParamsSchema, response: responses } },
    async (request) => describeModelConfig(services, request.principal, request.params.model, request.params.version),
  );

  typed.put(
    '/v1/models/:model/config',
    {
      schema: {
        tags: ['management'],
        summary: "Change a model's run-time configuration (any subset of the fields; null resets a field to its default)",
        params: modelParamsSchema,
        body: modelConfigPatchSchema,
        response: { 200: modelConfigSchema, '4xx': errorBodySchema, '5xx': errorBodySchema },
      },
      validatorCompiler: bodyCheckedByHandler,
    },
    async (request) => {
      const model = requestedModel(request.principal, request.params.model);
      return forModel(model, async () => {
        if (!(await registry.modelExists(model.qualified))) throw errors.modelNotFound(model.qualified);
        const updated = await modelConfigs.update(model.qualified, request.body as unknown, {
          maxThreadsPerWorker: serverConfig.GANTRY_MAX_THREADS_PER_WORKER,
        });
        catalog.invalidate(model.qualified);
        return updated;
      });
    },
  );
}
