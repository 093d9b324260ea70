import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ErrorCode, GantryError, errors } from '../../errors.js';
import { forModel, requestedModel } from '../../inference/requested-model.js';
import { checkVersion } from '../../inference/requested-version.js';
import { errorBodySchema } from '../../protocol/oip-schemas.js';
import { executionConfigOf } from '../../registry/model-config.js';
import { parseWarmupSample, warmupSampleErrors, WarmupSampleStore } from '../../registry/warmup-samples.js';
import { modelVersionParamsSchema } from '../route-params.js';
import type { ApiServices } from '../services.js';
import { detail, versionDetailSchema } from './model-management.js';

const warmupQuerySchema = z.object({
  wait: z.enum(['true', 'false']).default('true').describe('false: answer 202 at once; the version is LOADING until the worker has run the sample'),
});

/**
 * `POST /v1/models/{model}/versions/{version}/warmup`: gives an existing version a warm-up sample (an OIP inference
 * request with JSON data, at most GANTRY_MAX_WARMUP_BYTES) and reloads it, so the sample runs on every instance
 * before it serves again. A sample that fails leaves the version UNAVAILABLE with the reason (422 when waited for):
 * the uploader said it must work; a working sample brings it back.
 */
export async function modelWarmupRoutes(app: FastifyInstance, services: ApiServices): Promise<void> {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  const { registry, producer, config, catalog, metrics } = services;
  const samples = new WarmupSampleStore(services.store.warmupSamples);

  typed.post(
    '/v1/models/:model/versions/:version/warmup',
    {
      schema: {
        tags: ['management'],
        summary: 'Set the warm-up sample of a version (an inference request, JSON data) and reload it so the sample runs on every instance',
        params: modelVersionParamsSchema,
        querystring: warmupQuerySchema,
        response: { 200: versionDetailSchema, 202: versionDetailSchema, '4xx': errorBodySchema, '5xx': errorBodySchema },
      },
    },
    async (request, reply) => {
      const model = requestedModel(request.principal, request.params.model);
      const version = checkVersion(request.params.version)!;
      return forModel(model, async () => {
        if (!services.isAcceptingWork()) throw errors.shuttingDown();
        // The body was parsed within GANTRY_MAX_REQUEST_BYTES; a sample has its own, smaller bound.
        const text = JSON.stringify(request.body ?? null);
        if (Buffer.byteLength(text) > config.GANTRY_MAX_WARMUP_BYTES) {
          metrics.limitRejections.inc({ limit: 'warmup_bytes' });
          throw warmupSampleErrors.tooLarge(config.GANTRY_MAX_WARMUP_BYTES);
        }
        parseWarmupSample(text);
        const name = model.qualified;
        const record = await registry.getVersion(name, version);
        if (record === undefined) throw errors.modelNotFound(name, version);
        await services.registry.setWarmupSample(name, record.version, await samples.put(text));
        const loadGeneration = await registry.lifecycle.beginLoad(name, record.version);
        if (loadGeneration === undefined) throw errors.modelNotFound(name, version);
        catalog.invalidate(name);
        const settings = executionConfigOf(await services.modelConfigs.get(name));
        const load = producer.requestLoad(
          { model: name, version: record.version, sha256: record.sha256, settings, loadGeneration },
          config.GANTRY_LOAD_TIMEOUT_MS,
        );
        const current = async () => (await registry.getVersion(name, record.version)) ?? record;
        if (request.query.wait === 'false') {
          load.catch(() => undefined);
          return reply.status(202).send(detail(await current(), model.shown, true));
        }
        try {
          await load;
        } catch (error) {
          if (error instanceof GantryError && error.code === ErrorCode.DeadlineExceeded)
            return reply.status(202).send(detail(await current(), model.shown, true));
          throw error;
        } finally {
          // The worker recorded the outcome (READY, or UNAVAILABLE with the reason) before it answered.
          catalog.invalidate(name);
        }
        return reply.status(200).send(detail(await current(), model.shown, true));
      });
    },
  );
}
