import multipart, { type MultipartValue } from '@fastify/multipart';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Readable } from 'node:stream';
import { z } from 'zod';
import { ErrorCode, GantryError, errors } from '../../errors.js';
import { errorBodySchema, onnxPlatform, tensorMetadataSchema } from '../../protocol/oip-schemas.js';
import { executionConfigOf } from '../../registry/model-config.js';
import { aliasErrors } from '../../registry/model-aliases.js';
import { trafficErrors } from '../../registry/model-traffic.js';
import { claimVersionDeletion } from '../../registry/deletion-claim.js';
import { recordUploadRefusal, uploadRefusalOf } from '../../registry/refused-uploads.js';
import { modelStates } from '../../registry/model-state.js';
import type { ModelVersion, UploadedVersion } from '../../registry/model-registry.js';
import type { StoredBlob } from '../../registry/model-store.js';
import { readWarmupReport, warmupReportSchema } from '../../registry/warmup-report.js';
import { parseWarmupSample, warmupFailurePrefix, warmupSampleErrors, WarmupSampleStore } from '../../registry/warmup-samples.js';
import { checkTenantCaps, hasTenantCaps, type TenantCapLimit, type TenantCaps } from '../../registry/tenant-caps.js';
import { displayModelName, splitQualifiedName } from '../../auth/model-names.js';
import { hasScope } from '../../auth/principal.js';
import { forModel, requestedModel } from '../../inference/requested-model.js';
import { checkVersion } from '../../inference/requested-version.js';
import { modelParamsSchema, modelVersionParamsSchema } from '../route-params.js';
import type { ApiServices } from '../services.js';
import { readMultipartUpload } from '../multipart-upload.js';
import { visibleModelNames } from '../../inference/visible-models.js';
import type { ModelServing } from '../../workers-view/live-workers.js';

const versionSummarySchema = z.object({
  version: z.string(),
  state: z.enum(modelStates),
  sha256: z.string().optional().describe("The file's sha256; shown only to callers allowed to manage the model (models:write)"),
  size: z.number(),
  createdAt: z.string(),
});

export const versionDetailSchema = versionSummarySchema.extend({
  name: z.string(),
  platform: z.string(),
  reason: z.string().optional(),
  warmup: warmupReportSchema
    .optional()
    .describe('ok: the warm-up sample (or zero-filled inputs) ran on every instance; skipped: zero-filled inputs failed, no sample was given'),
  inputs: z.array(tensorMetadataSchema).optional(),
  outputs: z.array(tensorMetadataSchema).optional(),
  servedBy: z.number().int().optional().describe('0 when workers run but none serves the model (GANTRY_WORKER_MODELS); absent otherwise'),
  unservedReason: z.string().optional().describe('Why no live worker serves the model, when none does'),
});

const modelSchema = z.object({ name: z.string(), versions: z.array(versionDetailSchema) });
const modelListSchema = z.object({
  models: z.array(
    z.object({
      name: z
        .string()
        .describe("The model's name as the caller addresses it: bare within the caller's tenant, <tenant>~<name> for an admin's view of another tenant's"),
      tenant: z.string().describe('The tenant the model belongs to'),
      versions: z.array(versionSummarySchema),
    }),
  ),
});
const deleteVersionQuerySchema = z.object({
  force: z
    .enum(['true', 'false'])
    .default('false')
    .describe('true: delete even if aliases point at the version (removing them) or the traffic policy names it (leaving the policy as it is)'),
});
const uploadQuerySchema = z.object({
  wait: z
    .enum(['true', 'false'])
    .default('true')
    .describe('true: answer once a worker has loaded and warmed the version (201, READY or UNAVAILABLE with a reason); false: answer 202 at once (LOADING)'),
  duplicate: z
    .enum(['true', 'false'])
    .default('false')
    .describe('true: make a new version even when a version of the model holds the same file (otherwise that version answers, 200)'),
});
type UploadQuery = z.infer<typeof uploadQuerySchema>;

/** An upload answered by a version that holds the same file already: nothing was created. */
const existingVersionSchema = versionDetailSchema.extend({
  existing: z.literal(true).describe('The file is that of this version, which exists already: no version was created (add ?duplicate=true for one)'),
});

/** A number an upload may choose: plain decimal, small enough for every client's integers. */
const chosenVersionPattern = /^[1-9][0-9]{0,8}$/;

/**
 * A version's summary. Its sha256 names its file in the content-addressed store: only callers who may manage the
 * model see it (a key that can only read or infer has no use for it, and a file name is worth keeping from callers).
 */
function summary(record: ModelVersion, showsBlob: boolean) {
  return { version: record.version, state: record.state, ...(showsBlob ? { sha256: record.sha256 } : {}), size: record.size, createdAt: record.createdAt };
}

/**
 * A version as a caller sees it: `name` is the model's name as shown to that caller (`RequestedModel.shown`), and
 * `serving` whether live workers serve the model (worker pools; live-workers.ts) where the route asked.
 */
export function detail(record: ModelVersion, name: string, showsBlob: boolean, serving?: ModelServing) {
  return {
    name,
    ...summary(record, showsBlob),
    platform: onnxPlatform,
    ...(record.reason === undefined ? {} : { reason: record.reason }),
    ...(record.warmup === undefined ? {} : { warmup: readWarmupReport(record.warmup) }),
    ...(record.signature === undefined ? {} : { inputs: record.signature.inputs, outputs: record.signature.outputs }),
    // Only for a model that running workers exist for but none serves: a served version's detail is unchanged.
    ...(serving?.unservedReason === undefined ? {} : { servedBy: serving.servedBy, unservedReason: serving.unservedReason }),
  };
}

const uploadErrors = {
  badChosenVersion: (version: string) =>
    new GantryError(
      ErrorCode.InvalidArgument,
      `Invalid version number '${version.slice(0, 50)}': a chosen version is a positive integer from 1 to 999999999 (aliases are set with PUT /v1/models/{model}/aliases/{alias}).`,
    ),
};

/** How often an upload answered by an identical version still loading looks at its state. */
const settlePollMs = 50;
/** How long an UNAVAILABLE version is watched for its creating upload's refusal (that upload writes it at once). */
const refusalWaitMs = 1000;

/** Largest rest of a refused upload's body that is read and dropped rather than cut by closing the connection. */
const drainableRestBytes = 1024 * 1024;

/** `/v1/models…` — upload, list, inspect and delete model versions. */
export async function modelManagementRoutes(app: FastifyInstance, services: ApiServices): Promise<void> {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  const { registry, store, producer, config, catalog, blobCollector, limits, metrics } = services;
  const references = registry.blobReferences;
  const { aliases, traffic } = services;
  const countCapRefusal = (limit: TenantCapLimit) => metrics.limitRejections.inc({ limit });

  /** The caps of a model's tenant (its limits' maxModels, maxVersions, maxStoredBytes; none set: no caps). */
  const capsOf = async (tenant: string): Promise<TenantCaps> => {
    const { maxModels, maxVersions, maxStoredBytes } = await limits.tenantLimits(tenant);
    return { maxModels, maxVersions, maxStoredBytes };
  };

  // Uploads stream to disk: the raw body is handed over untouched, so memory stays flat for any size, and
  // the size limit is enforced by the store while it writes.
  app.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));
  // A field one byte over GANTRY_MAX_WARMUP_BYTES is cut there, which tells a sample that is too large.
  await app.register(multipart, { limits: { fileSize: config.GANTRY_MAX_UPLOAD_BYTES, files: 1, fields: 4, fieldSize: config.GANTRY_MAX_WARMUP_BYTES + 1 } });
  const warmupSamples = new WarmupSampleStore(store.warmupSamples);

  /** The text of a multipart upload's `warmup` field, once it is known to be a sample within GANTRY_MAX_WARMUP_BYTES. */
  const checkedWarmupText = (field: MultipartValue): string => {
    const text = typeof field.value === 'string' ? field.value : JSON.stringify(field.value);
    if (field.valueTruncated || Buffer.byteLength(text) > config.GANTRY_MAX_WARMUP_BYTES) {
      metrics.limitRejections.inc({ limit: 'warmup_bytes' });
      throw warmupSampleErrors.tooLarge(config.GANTRY_MAX_WARMUP_BYTES);
    }
    parseWarmupSample(text);
    return text;
  };

  /**
   * Streams an upload into the store. Its pending reference is taken before the blob is published under its
   * sha256 (so no garbage collection can remove those bytes before the version holds them); `uploadId` names it.
   */
  const storeUpload = async (request: FastifyRequest, uploadId: string): Promise<{ blob: StoredBlob; warmupSample?: string }> => {
    // The Content-Length (of the whole body, for multipart a little more than the file) lets the store refuse an
    // upload that cannot fit before a byte of it is written.
    const declared = Number(request.headers['content-length']);
    const options = {
      ...(Number.isSafeInteger(declared) && declared >= 0 ? { expectedBytes: Math.min(declared, config.GANTRY_MAX_UPLOAD_BYTES) } : {}),
      beforePublish: (blob: StoredBlob) => references.takePending(blob.sha256, uploadId),
    };
    if (request.isMultipart()) {
      const { stored, warmupText } = await readMultipartUpload(request, {
        storeFile: async (file) => {
          const blob = await store.put(file, config.GANTRY_MAX_UPLOAD_BYTES, options);
          if (file.truncated === true) {
            await abandonBlob(blob.sha256, uploadId);
            throw errors.uploadTooLarge(config.GANTRY_MAX_UPLOAD_BYTES);
          }
          return blob;
        },
        abandon: (blob) => abandonBlob(blob.sha256, uploadId),
        checkWarmup: checkedWarmupText,
      });
      return { blob: stored, ...(warmupText === undefined ? {} : { warmupSample: warmupText }) };
    }
    const contentType = request.headers['content-type'] ?? '';
    if (!contentType.startsWith('application/octet-stream')) {
      throw errors.invalidArgument('Upload the ONNX file as the raw body (Content-Type: application/octet-stream) or as multipart field "file".');
    }
    return { blob: await store.put(request.body as Readable, config.GANTRY_MAX_UPLOAD_BYTES, options) };
  };

  /**
   * An upload that published its blob but creates no version drops its pending reference; the garbage
   * collection removes the bytes at its next pass unless a version or another upload uses them (the same file may
   * be uploaded twice). Files are never removed here: that would race an upload of the same bytes.
   */
  const abandonBlob = async (sha256: string, uploadId: string) => {
    await references.releasePending(sha256, uploadId);
    blobCollector.noteRefusal();
  };

  const rejectVersion = async (record: ModelVersion) => {
    await registry.deleteVersion(record.name, record.version, { neverUsed: true });
    // After the version is gone, so an alias set to it meanwhile (setting one needs the version to exist) goes too.
    await aliases.removePointingAt(record.name, record.version);
    blobCollector.noteRefusal();
    catalog.invalidate(record.name);
  };

  /**
   * How the load of a version another upload created settled: READY, the refusal that upload was answered (its load
   * refused the bytes), UNAVAILABLE otherwise (another upload waiting with `?wait=false` keeps a failed version), or
   * nothing when the version went meanwhile. As it is when GANTRY_LOAD_TIMEOUT_MS passes first. The worker records
   * UNAVAILABLE a moment before the creating upload hears of it and writes its refusal, so an UNAVAILABLE version is
   * watched a little longer. Polls: an identical upload is rare and short-lived.
   */
  const settledLoad = async (model: string, version: string, sha256: string): Promise<{ record?: ModelVersion; refusal?: string }> => {
    const deadline = Date.now() + config.GANTRY_LOAD_TIMEOUT_MS;
    let failedAt: number | undefined;
    for (;;) {
      const current = await registry.getVersion(model, version);
      if (current?.state !== 'READY' && current?.state !== 'LOADING') {
        const refusal = await uploadRefusalOf(services.redis, config.GANTRY_QUEUE_PREFIX, model, sha256);
        if (refusal !== undefined) return { refusal };
        if (current === undefined) return {};
        failedAt ??= Date.now();
        if (Date.now() - failedAt >= refusalWaitMs) return { record: current };
      } else if (current.state === 'READY' || Date.now() >= deadline) return { record: current };
      await new Promise((resolve) => setTimeout(resolve, settlePollMs));
    }
  };

  const receiveUpload = async (request: FastifyRequest, reply: FastifyReply, upload: { model: string; version?: string; query: UploadQuery }) => {
    const requested = requestedModel(request.principal, upload.model);
    const model = requested.qualified;
    return forModel(requested, async () => {
      if (!services.isAcceptingWork()) throw errors.shuttingDown();
      // Refused before the body is read: no version number can be handed out while the registry is not intact.
      if (services.guardian.deploymentId() === undefined) throw errors.registryUnavailable();
      const declared = Number(request.headers['content-length']);
      const uploadId = randomUUID();
      const { tenant } = splitQualifiedName(model);
      const caps = await capsOf(tenant);
      let blob: StoredBlob;
      let warmupSample: string | undefined;
      try {
        // A tenant at a cap is refused before the body is read (a raw body's Content-Length is the file's size);
        // the check that counts is the one made with the version's creation, below.
        if (hasTenantCaps(caps)) {
          const rawBytes = !request.isMultipart() && Number.isSafeInteger(declared) && declared > 0 ? declared : undefined;
          checkTenantCaps(tenant, caps, await registry.tenantHoldings(tenant, model), rawBytes, countCapRefusal);
        }
        ({ blob, warmupSample } = await storeUpload(request, uploadId));
      } catch (error) {
        // Refused mid-body (400, 413, 507). A short rest (known from Content-Length) is left to Node, which reads
        // and drops it and keeps the connection: closing under a client still sending makes it see a reset instead
        // of the answer. A long or unknown rest is not worth reading: the connection closes after the answer.
        if (!request.raw.complete && !(Number.isSafeInteger(declared) && declared <= drainableRestBytes)) void reply.header('connection', 'close');
        throw error;
      }
      if (blob.size === 0) {
        await abandonBlob(blob.sha256, uploadId);
        throw errors.invalidModel('the file is empty.');
      }
      // A new version of an existing model loads with that model's configuration (instances, threads, …), which
      // its durable record keeps too.
      const modelConfig = await services.modelConfigs.get(model);
      const createOrFind = async (pendingId: string): Promise<UploadedVersion> => {
        try {
          return await registry.uploadVersion(model, blob, {
            uploadId: pendingId,
            configAtUpload: modelConfig,
            caps,
            onCapRefused: countCapRefusal,
            duplicate: upload.query.duplicate === 'true',
            ...(upload.version === undefined ? {} : { version: upload.version }),
          });
        } catch (error) {
          await abandonBlob(blob.sha256, pendingId).catch(() => undefined);
          throw error;
        }
      };
      let uploaded = await createOrFind(uploadId);
      if (uploaded.existing && uploaded.record.state !== 'READY' && upload.query.wait !== 'false') {
        // The version that holds these bytes is answered once its load (another request's) has settled, as this
        // upload's own would be. An UNAVAILABLE one may have failed that load a moment ago: it is watched too.
        const settled = await settledLoad(model, uploaded.record.version, blob.sha256);
        // Its load refused these bytes: this upload is refused the same way.
        if (settled.refusal !== undefined) throw new GantryError(ErrorCode.InvalidModel, settled.refusal);
        if (settled.record !== undefined) uploaded = { record: settled.record, existing: true };
        else {
          // It was deleted meanwhile (or failed another upload's warm-up sample): the bytes make a version of their
          // own. The file outlives its last version by the grace period, so it is still in the store.
          const retryId = randomUUID();
          await references.takePending(blob.sha256, retryId);
          if (!(await store.exists(blob.sha256))) {
            await abandonBlob(blob.sha256, retryId);
            throw new GantryError(ErrorCode.Unavailable, 'The identical version this upload matched was removed meanwhile, with its file; upload again.');
          }
          uploaded = await createOrFind(retryId);
        }
      }
      const { record } = uploaded;
      if (uploaded.existing) {
        // The version that holds these bytes answers (with ?wait=false as it is now: LOADING, READY or
        // UNAVAILABLE). The registry dropped this upload's pending reference; the version's own keeps the file.
        return reply.status(200).send({ ...detail(record, requested.shown, true), existing: true });
      }
      if (warmupSample !== undefined) {
        // Stored before the load is queued: the worker reads the version's sample from its record.
        try {
          await registry.setWarmupSample(model, record.version, await warmupSamples.put(warmupSample));
        } catch (error) {
          await rejectVersion(record);
          throw error;
        }
      }
      const settings = executionConfigOf(modelConfig);
      const load = producer
        .requestLoad({ model, version: record.version, sha256: blob.sha256, settings }, config.GANTRY_LOAD_TIMEOUT_MS)
        // Best effort: a rebuilt version loads again and learns its signature anew.
        .then((signature) => registry.recordSignature(model, record.version, signature).catch(() => undefined));
      if (upload.query.wait === 'false') {
        // The worker records the outcome (READY, or UNAVAILABLE with the reason) for clients that poll.
        load.catch(() => undefined);
        return reply.status(202).send(detail(record, requested.shown, true));
      }
      try {
        await load;
      } catch (error) {
        if (error instanceof GantryError && error.code === ErrorCode.InvalidModel) {
          const sampleFailed = error.message.startsWith(warmupFailurePrefix);
          const refusal = sampleFailed || error.message.startsWith('The uploaded file') ? error : errors.invalidModel(error.message);
          // Before the version goes, so identical uploads waiting on it find why (a failed warm-up sample is this
          // upload's own: they load the bytes again instead).
          if (!sampleFailed) await recordUploadRefusal(services.redis, config.GANTRY_QUEUE_PREFIX, model, blob.sha256, refusal.message);
          await rejectVersion(record);
          throw refusal;
        }
        if (error instanceof GantryError && error.code === ErrorCode.DeadlineExceeded) {
          // No worker answered in time; the load request stays queued and completes when one does.
          return reply.status(202).send(detail((await registry.getVersion(model, record.version)) ?? record, requested.shown, true));
        }
        throw error;
      }
      const loaded = await registry.getVersion(model, record.version);
      if (loaded === undefined) throw errors.modelNotFound(model, record.version);
      catalog.invalidate(model);
      return reply.status(201).send(detail(loaded, requested.shown, true));
    });
  };

  typed.post(
    '/v1/models/:model/versions',
    {
      schema: {
        tags: ['management'],
        summary:
          'Upload a new version (raw application/octet-stream body or multipart field "file"); the file of an existing version answers with that version (200) unless ?duplicate=true',
        params: modelParamsSchema,
        querystring: uploadQuerySchema,
        response: { 200: existingVersionSchema, 201: versionDetailSchema, 202: versionDetailSchema, '4xx': errorBodySchema, '5xx': errorBodySchema },
      },
    },
    async (request, reply) => receiveUpload(request, reply, { model: request.params.model, query: request.query }),
  );

  typed.put(
    '/v1/models/:model/versions/:version',
    {
      schema: {
        tags: ['management'],
        summary: 'Upload a version with a chosen number, above every number the model has had (409 otherwise); bodies, ?wait and ?duplicate as for POST',
        params: modelVersionParamsSchema,
        querystring: uploadQuerySchema,
        response: { 200: existingVersionSchema, 201: versionDetailSchema, 202: versionDetailSchema, '4xx': errorBodySchema, '5xx': errorBodySchema },
      },
    },
    async (request, reply) => {
      // Checked before the body is read: a bad number costs no upload.
      if (!chosenVersionPattern.test(request.params.version)) throw uploadErrors.badChosenVersion(request.params.version);
      return receiveUpload(request, reply, { model: request.params.model, version: request.params.version, query: request.query });
    },
  );

  typed.get(
    '/v1/models',
    {
      schema: {
        tags: ['management'],
        summary: "List the caller's models and their versions (the admin's: every tenant's)",
        response: { 200: modelListSchema },
      },
    },
    async (request) => {
      const names = await visibleModelNames(registry, request.principal);
      const models = await Promise.all(
        names.map(async (name) => ({
          name: displayModelName(request.principal, name),
          tenant: splitQualifiedName(name).tenant,
          versions: (await registry.listVersions(name)).map((record) => summary(record, hasScope(request.principal, 'models:write'))),
        })),
      );
      // A model deleted between the listing and the read of its versions is left out.
      return { models: models.filter((model) => model.versions.length > 0) };
    },
  );

  typed.get(
    '/v1/models/:model',
    {
      schema: {
        tags: ['management'],
        summary: 'A model with every version',
        params: modelParamsSchema,
        response: { 200: modelSchema, '4xx': errorBodySchema },
      },
    },
    async (request) => {
      const model = requestedModel(request.principal, request.params.model);
      return forModel(model, async () => {
        const versions = await registry.listVersions(model.qualified);
        if (versions.length === 0) throw errors.modelNotFound(model.qualified);
        const serving = await services.liveWorkers.serving(model.qualified, model.shown);
        return { name: model.shown, versions: versions.map((record) => detail(record, model.shown, hasScope(request.principal, 'models:write'), serving)) };
      });
    },
  );

  typed.get(
    '/v1/models/:model/versions/:version',
    {
      schema: {
        tags: ['management'],
        summary: 'One version',
        params: modelVersionParamsSchema,
        response: { 200: versionDetailSchema, '4xx': errorBodySchema },
      },
    },
    async (request) => {
      const model = requestedModel(request.principal, request.params.model);
      const version = checkVersion(request.params.version)!;
      return forModel(model, async () => {
        const record = await registry.getVersion(model.qualified, version);
        if (record === undefined) throw errors.modelNotFound(model.qualified, version);
        const serving = await services.liveWorkers.serving(model.qualified, model.shown);
        return detail(record, model.shown, hasScope(request.principal, 'models:write'), serving);
      });
    },
  );

  typed.delete(
    '/v1/models/:model/versions/:version',
    {
      schema: {
        tags: ['management'],
        summary:
          'Delete one version (409 while aliases point at it or the traffic policy names it, unless ?force=true, which removes the aliases and leaves the policy)',
        params: modelVersionParamsSchema,
        querystring: deleteVersionQuerySchema,
        response: { 204: z.null(), '4xx': errorBodySchema },
      },
    },
    async (request, reply) => {
      const model = requestedModel(request.principal, request.params.model);
      const version = checkVersion(request.params.version)!;
      return forModel(model, async () => {
        // The check and the claim are one step: no alias or policy can come to name the version before it is gone.
        const claim = await claimVersionDeletion(services.redis, config.GANTRY_QUEUE_PREFIX, model.qualified, version, request.query.force === 'true');
        if (claim.outcome === 'not-found') throw errors.modelNotFound(model.qualified, version);
        if (claim.outcome === 'aliased') throw aliasErrors.versionHasAliases(model.qualified, version, claim.aliases);
        // A forced delete leaves the policy: a split version that is gone gets no traffic (serving-version.ts).
        if (claim.outcome === 'named-by-traffic') throw trafficErrors.versionNamed(model.qualified, version);
        // A version callers may have used: its file goes after the grace period (GANTRY_BLOB_GC_GRACE_MS), not at
        // the next collection as a refused upload's does (rejectVersion).
        await registry.deleteVersion(model.qualified, version);
        await aliases.removePointingAt(model.qualified, version);
        blobCollector.noteDeletion();
        catalog.invalidate(model.qualified);
        return reply.status(204).send(null);
      });
    },
  );

  typed.delete(
    '/v1/models/:model',
    {
      schema: {
        tags: ['management'],
        summary: 'Delete a model and all its versions',
        params: modelParamsSchema,
        response: { 204: z.null(), '4xx': errorBodySchema },
      },
    },
    async (request, reply) => {
      const model = requestedModel(request.principal, request.params.model);
      return forModel(model, async () => {
        const { deleted } = await registry.deleteModel(model.qualified);
        if (!deleted) throw errors.modelNotFound(model.qualified);
        await aliases.removeAll(model.qualified);
        await traffic.remove(model.qualified);
        // Its files go with the garbage collection, after the grace period, unless another version uses them.
        blobCollector.noteDeletion();
        catalog.invalidate(model.qualified);
        return reply.status(204).send(null);
      });
    },
  );
}
