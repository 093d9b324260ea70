import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ErrorCode, GantryError, errors } from '../../errors.js';
import { errorBodySchema } from '../../protocol/oip-schemas.js';
import { executionConfigOf } from '../../registry/model-config.js';
import type { ModelVersion } from '../../registry/model-registry.js';
import { displayModelName } from '../../auth/model-names.js';
import { forModel, requestedModel } from '../../inference/requested-model.js';
import { modelParamsSchema } from '../route-params.js';
import type { ApiServices } from '../services.js';
import { visibleModelNames } from '../../inference/visible-models.js';

/** The reason an unloaded version carries; index shows it, and load clears it. */
export const unloadedReason = 'unloaded';

const parametersSchema = z.record(z.string(), z.unknown());

// extension_model_repository.md, "Index": an optional `ready` flag in, one entry per model version out.
const indexRequestSchema = z.object({ ready: z.boolean().optional() }).nullish();
const indexResponseSchema = z.array(z.object({ name: z.string(), version: z.string(), state: z.string(), reason: z.string() }));
// (A missing body arrives as null or undefined, so the bodies are nullish.)
// "Load" and "Unload": an optional `parameters` object; the response body is empty on success.
const loadRequestSchema = z.object({ parameters: parametersSchema.optional() }).nullish();
const unloadRequestSchema = z.object({ parameters: parametersSchema.optional() }).nullish();
const emptyResponseSchema = z.object({});

/**
 * Model repository extension: POST /v2/repository/index, …/models/{m}/load and …/models/{m}/unload. Gantry's
 * repository is its registry: every uploaded version is in the index; unload keeps the files and makes every
 * version UNAVAILABLE; load has the workers load the versions again.
 */
export async function repositoryRoutes(app: FastifyInstance, services: ApiServices): Promise<void> {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  const { registry, catalog, store, producer, modelConfigs, config } = services;

  // The spec lets these bodies be empty (clients send no body, or `Content-Type: application/json` with an
  // empty one), so in this plugin an empty JSON body means "no body" rather than a parse error.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text) as unknown);
    } catch {
      done(errors.invalidArgument('The request body is not valid JSON.'), undefined);
    }
  });

  typed.post(
    '/v2/repository/index',
    {
      schema: {
        tags: ['repository'],
        summary: "Every version of the caller's models (the admin's: every tenant's) with its state (ready: true lists only READY ones)",
        body: indexRequestSchema,
        response: { 200: indexResponseSchema, '4xx': errorBodySchema, '5xx': errorBodySchema },
      },
    },
    async (request) => {
      const onlyReady = request.body?.ready === true;
      const names = await visibleModelNames(registry, request.principal);
      const perModel = await Promise.all(names.map((name) => registry.listVersions(name)));
      return perModel
        .flat()
        .filter((record) => !onlyReady || record.state === 'READY')
        .map((record) => ({ name: displayModelName(request.principal, record.name), version: record.version, state: record.state, reason: record.reason ?? '' }));
    },
  );

  /** Loads every version of a model (qualified name) again; resolves once the newest is READY. */
  const loadModel = async (model: string, requestParameters: Record<string, unknown> | undefined): Promise<Record<string, never>> => {
    const parameters = Object.keys(requestParameters ?? {});
    if (parameters.length > 0) {
      // Triton's "config" and "file:…" load parameters override the repository's files; Gantry's files come
      // from uploads and its configuration from PUT /v1/models/{m}/config, so they are refused, not ignored.
      throw errors.unsupported(
        `Load parameters are not supported (got ${parameters.map((name) => `'${name}'`).join(', ')}); upload files with POST /v1/models/{model}/versions and change the configuration with PUT /v1/models/{model}/config.`,
      );
    }
    if (!services.isAcceptingWork()) throw errors.shuttingDown();
    const versions = await registry.listVersions(model);
    if (versions.length === 0) throw errors.modelNotFound(model);

    const loadable: ModelVersion[] = [];
    for (const record of versions) {
      if (await store.exists(record.sha256)) loadable.push(record);
      else await registry.updateVersion(model, record.version, { state: 'UNAVAILABLE', reason: 'the model file is missing from the store' });
    }
    const newest = loadable.at(-1);
    if (newest === undefined) {
      catalog.invalidate(model);
      throw new GantryError(ErrorCode.FailedPrecondition, `No version of model '${model}' has its model file in the store any more; upload it again.`);
    }

    const settings = executionConfigOf(await modelConfigs.get(model));
    for (const record of loadable) {
      await registry.resetRunStrikes(model, record.version);
      await registry.updateVersion(model, record.version, { state: 'LOADING' });
    }
    catalog.invalidate(model);
    const outcomes = await Promise.allSettled(
      loadable.map((record) => {
        const target = { model, version: record.version, sha256: record.sha256, settings };
        return producer.requestLoad(target, config.GANTRY_LOAD_TIMEOUT_MS);
      }),
    );
    // The worker records each outcome (READY, or UNAVAILABLE with onnxruntime's reason) before it replies.
    catalog.invalidate(model);
    const newestOutcome = outcomes.at(-1)!;
    if (newestOutcome.status === 'rejected') {
      throw newestOutcome.reason instanceof GantryError ? newestOutcome.reason : errors.internal('Loading the model failed.');
    }
    const loaded = await registry.getVersion(model, newest.version);
    if (loaded?.state !== 'READY') throw errors.modelNotReady(model, newest.version, loaded?.state ?? 'UNAVAILABLE');
    await registry.announceModelEvent('model-loaded', model);
    return {};
  };

  typed.post(
    '/v2/repository/models/:model/load',
    {
      schema: {
        tags: ['repository'],
        summary: 'Load (or reload) every version of a model; answers once the newest is READY',
        params: modelParamsSchema,
        body: loadRequestSchema,
        response: { 200: emptyResponseSchema, '4xx': errorBodySchema, '5xx': errorBodySchema },
      },
    },
    async (request) => {
      const requested = requestedModel(request.principal, request.params.model);
      return forModel(requested, async () => loadModel(requested.qualified, request.body?.parameters));
    },
  );

  typed.post(
    '/v2/repository/models/:model/unload',
    {
      schema: {
        tags: ['repository'],
        summary: 'Unload a model: every version becomes UNAVAILABLE (files are kept; load brings it back)',
        params: modelParamsSchema,
        body: unloadRequestSchema,
        response: { 200: emptyResponseSchema, '4xx': errorBodySchema, '5xx': errorBodySchema },
      },
    },
    async (request) => {
      const requested = requestedModel(request.principal, request.params.model);
      const model = requested.qualified;
      return forModel(requested, async () => {
        // "unload_dependents" is accepted: no Gantry model depends on another, so there is nothing more to unload.
        const changed = await registry.setAllVersionsState(model, { state: 'UNAVAILABLE', reason: unloadedReason });
        if (changed.length === 0) throw errors.modelNotFound(model);
        catalog.invalidate(model);
        await registry.announceModelEvent('model-unloaded', model);
        return {};
      });
    },
  );
}
