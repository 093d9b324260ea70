/**
 * Issue 15, backup and restore, with real processes, a private redis-server and real onnxruntime: a deployment
 * with tenants, keys, limits, two models, aliases, a traffic policy, a configuration change, a warm-up sample and a
 * deleted version is exported with `gantry export`; its Redis and its data directory are wiped; a fresh gantry
 * imports the file with `gantry import`, and the same models answer the same outputs, the same key authenticates,
 * and numbers go on above the old highest. A cut archive is refused and leaves the target empty; a
 * --references-only archive imports into a deployment sharing the store, and is refused by one that does not. In
 * process: versions left out keep their numbers, corrupt blobs are refused, an interrupted import is finished by
 * running it again, and a deployment moves from the file store to S3 (moto) and back.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Redis } from 'ioredis';
import { cliPath, deleteKeys, fixturePath, startGantry, uploadModel, type GantryProcess } from '../helpers/gantry-process.js';
import { Cleanup, describeReply, mlpRequest, sleep, startPrivateRedis, timedCall, waitUntil, type PrivateRedis } from '../helpers/reliability-harness.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { FileModelStore } from '../../src/registry/file-model-store.js';
import { ModelRegistry } from '../../src/registry/model-registry.js';
import { createModelStore } from '../../src/registry/model-store-factory.js';
import { runExportCommand } from '../../src/runtime/export-command.js';
import { runImportCommand } from '../../src/runtime/import-command.js';
import { versionKey } from '../../src/redis-keys.js';
import { startS3Server } from '../../support/s3-server.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

const identityRequest = JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [0.5, -1, 2, 8] }] });
const mlpBody = JSON.stringify(mlpRequest(5));

async function privateRedis(): Promise<PrivateRedis> {
  const redis = await startPrivateRedis();
  cleanup.add(() => redis.cleanup());
  return redis;
}

async function scratchDirectory(name: string): Promise<string> {
  const directory = await mkdtemp(path.join(os.tmpdir(), `gantry-${name}-`));
  cleanup.add(() => rm(directory, { recursive: true, force: true }));
  return directory;
}

/** Runs `gantry export|import …` as its own process against a deployment, as an operator would. */
function gantryCommand(deployment: { redisUrl: string; prefix: string; dataDirectory: string }, args: string[]) {
  const result = spawnSync(process.execPath, [cliPath, ...args], {
    env: {
      PATH: process.env.PATH ?? '',
      REDIS_URL: deployment.redisUrl,
      GANTRY_QUEUE_PREFIX: deployment.prefix,
      GANTRY_DATA_DIR: deployment.dataDirectory,
      GANTRY_LOAD_TIMEOUT_MS: '20000',
      LOG_LEVEL: 'warn',
    },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

function call(gantry: GantryProcess, method: string, urlPath: string, body?: unknown, headers?: Record<string, string>) {
  return timedCall(`${gantry.baseUrl}${urlPath}`, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    ...(headers === undefined ? {} : { headers: { 'content-type': 'application/json', ...headers } }),
    timeoutMs: 15_000,
  });
}

async function inferOutputs(gantry: GantryProcess, urlPath: string, body: string, headers?: Record<string, string>): Promise<unknown> {
  const reply = await timedCall(`${gantry.baseUrl}${urlPath}`, { body, timeoutMs: 15_000, ...(headers === undefined ? {} : { headers }) });
  assert.equal(reply.status, 200, `${urlPath}: ${describeReply(reply)}`);
  return reply.body.outputs;
}

/** What a restored deployment must show again exactly, read through the API. */
async function observable(gantry: GantryProcess) {
  const versions = async (model: string) => {
    const reply = await call(gantry, 'GET', `/v1/models/${model}`);
    assert.equal(reply.status, 200, describeReply(reply));
    return reply.body.versions.map(({ version, sha256 }: { version: string; sha256: string }) => ({ version, sha256 }));
  };
  return {
    mlpVersions: await versions('mlp'),
    identVersions: await versions('ident'),
    acmeVersions: await versions('acme~scorer'),
    aliases: (await call(gantry, 'GET', '/v1/models/ident/aliases')).body,
    traffic: (await call(gantry, 'GET', '/v1/models/ident/traffic')).body,
    maxBatchSize: (await call(gantry, 'GET', '/v2/models/ident/config')).body?.gantry?.maxBatchSize,
    tenantLimits: (await call(gantry, 'GET', '/v1/tenants/acme/limits')).body,
  };
}

/** Waits until every listed version of every model is READY (the import asked the workers to load them). */
async function waitForReady(gantry: GantryProcess): Promise<void> {
  await waitUntil(
    async () => {
      for (const model of ['mlp', 'ident', 'acme~scorer']) {
        const reply = await call(gantry, 'GET', `/v1/models/${model}`);
        if (reply.status !== 200 || reply.body.versions.some((version: { state: string }) => version.state !== 'READY')) return false;
      }
      return true;
    },
    30_000,
    'every imported version to be READY',
  );
  // The API rings the work doorbell at most once a second per model (registry-wipe.test.ts says why this waits).
  await sleep(1100);
}

test(
  'export, wipe Redis and the store, import: same models, same outputs, same key, numbers go on; a cut archive leaves the target empty',
  { timeout: 120_000 },
  async () => {
    const sourceRedis = await privateRedis();
    const source = await startGantry({ redisUrl: sourceRedis.url });
    cleanup.add(() => source.cleanup());

    // The control plane: a tenant with limits, and a key of it that uploads and infers its own model.
    assert.equal((await call(source, 'POST', '/v1/tenants', { id: 'acme' })).status, 201);
    assert.equal((await call(source, 'PUT', '/v1/tenants/acme/limits', { requestsPerMinute: 1000 })).status, 200);
    const keyReply = await call(source, 'POST', '/v1/keys', { tenant: 'acme', name: 'acme backup test', scopes: ['models:read', 'models:write', 'infer'] });
    assert.equal(keyReply.status, 201, describeReply(keyReply));
    const acmeKey = { authorization: `Bearer ${keyReply.body.key as string}`, 'content-type': 'application/json' };
    const acmeUpload = await timedCall(`${source.baseUrl}/v1/models/scorer/versions`, {
      body: await readFile(fixturePath('tiny-mlp.onnx')),
      headers: { authorization: acmeKey.authorization, 'content-type': 'application/octet-stream' },
    });
    assert.equal(acmeUpload.status, 201, describeReply(acmeUpload));

    // Models: mlp v1 (v2 uploaded and deleted: the highest number is 2), ident v1 and v2 with routing, config, sample.
    for (const [model, fixture] of [
      ['mlp', 'tiny-mlp.onnx'],
      ['mlp', 'tiny-mlp.onnx'],
      ['ident', 'identity-float.onnx'],
      ['ident', 'identity-float.onnx'],
    ] as const) {
      const uploaded = await uploadModel(source.baseUrl, model, fixturePath(fixture), '?duplicate=true');
      assert.equal(uploaded.status, 201, JSON.stringify(uploaded.body));
    }
    assert.equal((await call(source, 'DELETE', '/v1/models/mlp/versions/2')).status, 204);
    assert.equal((await call(source, 'PUT', '/v1/models/ident/config', { maxBatchSize: 4 })).status, 200);
    assert.equal((await call(source, 'PUT', '/v1/models/ident/aliases/production', { version: '1' })).status, 200);
    const policy = {
      splits: [
        { version: '1', weight: 3 },
        { version: '2', weight: 1 },
      ],
      stickyBy: 'key',
    };
    assert.equal((await call(source, 'PUT', '/v1/models/ident/traffic', policy)).status, 200);
    const sample = await timedCall(`${source.baseUrl}/v1/models/ident/versions/2/warmup`, { body: identityRequest });
    assert.equal(sample.status, 200, describeReply(sample));

    const before = await observable(source);
    const outputsBefore = {
      mlp: await inferOutputs(source, '/v2/models/mlp/versions/1/infer', mlpBody),
      ident: await inferOutputs(source, '/v2/models/ident/versions/2/infer', identityRequest),
      acme: await inferOutputs(source, '/v2/models/scorer/infer', mlpBody, acmeKey),
    };
    const inspector = new Redis(sourceRedis.url);
    const sampleBefore = await inspector.hget(versionKey(source.prefix, 'ident', '2'), 'warmupSample');
    inspector.disconnect();
    assert.match(sampleBefore ?? '', /^[0-9a-f]{64}$/);

    const backups = await scratchDirectory('backups');
    const archive = path.join(backups, 'deployment.tar');
    const exported = gantryCommand(source, ['export', '--out', archive]);
    assert.equal(exported.status, 0, exported.output);
    assert.match(
      exported.output,
      /Exported deployment \S+ \(prefix '[^']+'\) to .*: 3 model\(s\), 4 version\(s\), 2 tenant\(s\), 1 API key\(s\), 2 blob\(s\), 1 warm-up sample\(s\)/,
    );

    // The disaster: the source goes, with its Redis (AOF included) and its data directory.
    await source.cleanup();
    await sourceRedis.cleanup();

    const targetRedis = await privateRedis();
    const target = await startGantry({ redisUrl: targetRedis.url, prefix: source.prefix });
    cleanup.add(() => target.cleanup());
    const targetRecords = new FileModelStore(target.dataDirectory).registryRecords(target.prefix);
    const assertTargetEmpty = async (what: string) => {
      assert.deepEqual(await targetRecords.readAll(), [], `${what}: no registry record was written`);
      const listed = await call(target, 'GET', '/v1/models');
      assert.equal(listed.status, 200, describeReply(listed));
      assert.deepEqual(listed.body.models, [], `${what}: Redis lists no model`);
      assert.equal((await call(target, 'GET', '/v1/tenants/acme')).status, 404, `${what}: no tenant was written`);
    };

    // Cut archives: inside a blob, and just before the trailer (every entry before it whole).
    const bytes = await readFile(archive);
    const trailerAt = bytes.indexOf(Buffer.from('end.json\0'));
    assert.ok(trailerAt > 0 && trailerAt % 512 === 0, 'the trailer entry starts on a tar block');
    for (const [label, length] of [
      ['cut inside a blob', Math.floor(bytes.length * 0.6)],
      ['cut before its trailer', trailerAt],
    ] as const) {
      const cut = path.join(backups, `${label.replaceAll(' ', '-')}.tar`);
      await writeFile(cut, bytes.subarray(0, length));
      const refused = gantryCommand(target, ['import', cut]);
      assert.equal(refused.status, 2, `${label}: ${refused.output}`);
      assert.match(refused.output, /is not a whole Gantry export archive/, `${label}: ${refused.output}`);
      await assertTargetEmpty(label);
    }
    const foreign = path.join(backups, 'foreign.tar');
    await writeFile(foreign, JSON.stringify({ not: 'an archive' }));
    const foreignImport = gantryCommand(target, ['import', foreign]);
    assert.equal(foreignImport.status, 2, foreignImport.output);
    assert.match(foreignImport.output, /is not a whole Gantry export archive/);

    const imported = gantryCommand(target, ['import', archive]);
    assert.equal(imported.status, 0, imported.output);
    assert.match(imported.output, /Imported 3 model\(s\), 4 version\(s\), 2 tenant\(s\), 1 API key\(s\), 2 blob\(s\)/);
    assert.match(imported.output, /ident v2 .*READY/, imported.output);
    await waitForReady(target);

    assert.deepEqual(await observable(target), before, 'versions, aliases, traffic policy, configuration and limits came back');
    assert.deepEqual(await inferOutputs(target, '/v2/models/mlp/versions/1/infer', mlpBody), outputsBefore.mlp);
    assert.deepEqual(await inferOutputs(target, '/v2/models/ident/versions/2/infer', identityRequest), outputsBefore.ident);
    assert.deepEqual(await inferOutputs(target, '/v2/models/scorer/infer', mlpBody, acmeKey), outputsBefore.acme, 'the same API key authenticates');
    const targetInspector = new Redis(targetRedis.url);
    assert.equal(await targetInspector.hget(versionKey(target.prefix, 'ident', '2'), 'warmupSample'), sampleBefore, 'the warm-up sample came back');
    targetInspector.disconnect();
    const next = await uploadModel(target.baseUrl, 'mlp', fixturePath('tiny-mlp.onnx'), '?duplicate=true');
    assert.equal(next.status, 201, JSON.stringify(next.body));
    assert.equal(next.body.version, '3', 'the deleted v2 keeps its number: the next upload is 3');

    // The target now holds a model the archive does not: importing again is refused, naming it.
    const again = gantryCommand(target, ['import', archive]);
    assert.equal(again.status, 1, again.output);
    assert.match(again.output, /Refused: the target deployment is not empty[\s\S]*'mlp' up to v3, past the archive's v2/);
  },
);

test('--references-only: imports into a deployment sharing the store; a store without the blobs refuses it', { timeout: 90_000 }, async () => {
  const redis = await privateRedis();
  const source = await startGantry({ redisUrl: redis.url });
  cleanup.add(() => source.cleanup());
  assert.equal((await uploadModel(source.baseUrl, 'mlp', fixturePath('tiny-mlp.onnx'))).status, 201);
  assert.equal((await uploadModel(source.baseUrl, 'ident', fixturePath('identity-float.onnx'))).status, 201);
  const mlpBefore = await inferOutputs(source, '/v2/models/mlp/infer', mlpBody);

  const archive = path.join(await scratchDirectory('references'), 'references.tar');
  const exported = gantryCommand(source, ['export', '--out', archive, '--references-only']);
  assert.equal(exported.status, 0, exported.output);
  assert.match(exported.output, /blob references only \(2 blob\(s\) stay in /);
  assert.ok((await readFile(archive)).length < 70_000, 'the blobs (tiny-mlp alone is 70 kB) are not in the archive');

  // Another deployment (its own prefix) on the same model store: the import checks the blobs there and serves them.
  const sharing = await startGantry({ command: 'api', redisUrl: redis.url, dataDirectory: source.dataDirectory });
  cleanup.add(() => sharing.cleanup());
  const sharingWorker = await startGantry({ command: 'worker', redisUrl: redis.url, prefix: sharing.prefix, dataDirectory: source.dataDirectory });
  cleanup.add(() => sharingWorker.cleanup());
  const imported = gantryCommand(sharing, ['import', archive]);
  assert.equal(imported.status, 0, imported.output);
  assert.match(imported.output, /Imported 2 model\(s\), 2 version\(s\)/);
  await waitUntil(async () => (await call(sharing, 'GET', '/v2/models/mlp/ready')).status === 200, 30_000, 'mlp ready in the sharing deployment');
  await sleep(1100);
  assert.deepEqual(await inferOutputs(sharing, '/v2/models/mlp/infer', mlpBody), mlpBefore);

  // A deployment on a store of its own has none of the blobs: refused, naming them, and nothing written.
  const elsewhere = await startGantry({ command: 'api', redisUrl: redis.url });
  cleanup.add(() => elsewhere.cleanup());
  const refused = gantryCommand(elsewhere, ['import', archive]);
  assert.equal(refused.status, 1, refused.output);
  assert.match(refused.output, /holds only references to blobs \(--references-only\), and the model store at .* lacks 2 of them/);
  assert.deepEqual(await new FileModelStore(elsewhere.dataDirectory).registryRecords(elsewhere.prefix).readAll(), []);
});

/** The commands in this process, on a private Redis and file stores (loads give up at once: no worker runs here). */
function commandConfig(redisUrl: string, prefix: string, dataDirectory: string) {
  return loadConfig({ REDIS_URL: redisUrl, GANTRY_QUEUE_PREFIX: prefix, GANTRY_DATA_DIR: dataDirectory, GANTRY_LOAD_TIMEOUT_MS: '200', LOG_LEVEL: 'silent' });
}

async function runCommand(run: (print: (line: string) => void) => Promise<number>): Promise<{ status: number; output: string }> {
  const lines: string[] = [];
  const status = await run((line) => lines.push(line));
  return { status, output: lines.join('\n') };
}

test(
  'left-out versions keep their numbers, corrupt blobs are refused on both sides, and an interrupted import is finished by running it again',
  { timeout: 60_000 },
  async () => {
    const redis = await privateRedis();
    const logger = createLogger({ LOG_LEVEL: 'silent' }, 'test');
    const sourceDirectory = await scratchDirectory('backup-source');
    const source = new FileModelStore(sourceDirectory);
    await source.init();
    const sourceRecords = source.registryRecords('source');
    await sourceRecords.claimDeploymentId('source-deployment');
    const mlpBytes = await readFile(fixturePath('tiny-mlp.onnx'));
    const blob = await source.put(Readable.from([mlpBytes]), mlpBytes.length);
    const createdAt = new Date().toISOString();
    await sourceRecords.writeVersion({ name: 'kept', version: '1', sha256: blob.sha256, size: blob.size, createdAt });
    // A record whose blob is gone from the store: what an export sees when a deletion ran between its two reads.
    await sourceRecords.writeVersion({ name: 'kept', version: '2', sha256: 'f'.repeat(64), size: 10, createdAt });
    await sourceRecords.writeVersion({ name: 'other', version: '4', sha256: blob.sha256, size: blob.size, createdAt });
    const archives = await scratchDirectory('backup-archives');
    const archive = path.join(archives, 'edge.tar');

    const exported = await runCommand((print) =>
      runExportCommand(commandConfig(redis.url, 'source', sourceDirectory), logger, { out: archive, referencesOnly: false }, print),
    );
    assert.equal(exported.status, 0, exported.output);
    assert.match(exported.output, /Warning: left out kept v2: its blob f{64} is not in the store/);

    const targetDirectory = await scratchDirectory('backup-target');
    const importInto = (file: string) => runCommand((print) => runImportCommand(commandConfig(redis.url, 'target', targetDirectory), logger, file, print));
    const targetRecords = new FileModelStore(targetDirectory).registryRecords('target');

    // A blob whose bytes changed in the archive: refused as it streams, nothing recorded.
    const bytes = await readFile(archive);
    const blobAt = bytes.indexOf(Buffer.from(`blobs/${blob.sha256}`));
    assert.ok(blobAt > 0);
    const corrupt = Buffer.from(bytes);
    corrupt[blobAt + 512 + 1000] = corrupt[blobAt + 512 + 1000]! ^ 0xff;
    const corruptFile = path.join(archives, 'corrupt.tar');
    await writeFile(corruptFile, corrupt);
    const refused = await importInto(corruptFile);
    assert.equal(refused.status, 2, refused.output);
    assert.match(refused.output, /does not match its sha256/);
    assert.deepEqual(await targetRecords.readAll(), []);

    const imported = await importInto(archive);
    assert.equal(imported.status, 0, imported.output);
    assert.match(imported.output, /Imported 2 model\(s\), 2 version\(s\)/);
    assert.match(imported.output, /left out at export: kept v2 .*its number stays taken/);
    const inspector = new Redis(redis.url);
    cleanup.add(() => inspector.disconnect());
    const registry = new ModelRegistry(inspector, 'target');
    const versionsOf = async (name: string) => (await registry.listVersions(name)).map((version) => version.version);
    assert.deepEqual(await versionsOf('kept'), ['1']);
    assert.deepEqual(await versionsOf('other'), ['4']);
    assert.equal(await targetRecords.highestVersion('kept'), 2, 'the left-out version is a tombstone: its number is never given again');

    // An import interrupted after some records (one model's gone here) and before Redis: running it again finishes it.
    await deleteKeys(redis.url, 'target');
    await rm(path.join(targetDirectory, 'registry', 'target', 'models', 'other'), { recursive: true });
    const resumed = await importInto(archive);
    assert.equal(resumed.status, 0, resumed.output);
    assert.match(resumed.output, /1 blob\(s\) \(1 already in the store\)/);
    assert.deepEqual([await versionsOf('kept'), await versionsOf('other')], [['1'], ['4']]);

    // Something the archive does not hold is never overwritten or mixed in.
    await targetRecords.writeVersion({ name: 'stranger', version: '1', sha256: blob.sha256, size: blob.size, createdAt });
    const mixed = await importInto(archive);
    assert.equal(mixed.status, 1, mixed.output);
    assert.match(mixed.output, /records model 'stranger', which the archive does not have/);

    // A corrupt blob in the source store fails the export: no file is left under the name asked for.
    const sourceBlob = path.join(sourceDirectory, 'blobs', 'sha256', blob.sha256);
    const changed = Buffer.from(mlpBytes);
    changed[1000] = changed[1000]! ^ 0xff;
    await writeFile(sourceBlob, changed);
    const failed = path.join(archives, 'failed.tar');
    const corruptExport = await runCommand((print) =>
      runExportCommand(commandConfig(redis.url, 'source', sourceDirectory), logger, { out: failed, referencesOnly: false }, print),
    );
    assert.equal(corruptExport.status, 1, corruptExport.output);
    assert.match(corruptExport.output, /does not match its sha256[\s\S]*Nothing was written/);
    await assert.rejects(readFile(failed));
    await assert.rejects(readFile(`${failed}.partial`));
    await deleteKeys(redis.url, 'target');
  },
);

test('a deployment moves from the file store to an S3 store and back (moto): records, numbers, samples and bytes intact', { timeout: 60_000 }, async () => {
  const redis = await privateRedis();
  const s3 = await startS3Server();
  cleanup.add(() => s3.stop());
  await s3.createBucket('gantry-backup-test');
  // The S3 store takes its credentials from the AWS SDK's default chain, as in production.
  process.env.AWS_ACCESS_KEY_ID = s3.credentials.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = s3.credentials.secretAccessKey;
  const logger = createLogger({ LOG_LEVEL: 'silent' }, 'test');

  const fileDirectory = await scratchDirectory('backup-file');
  const fileStore = new FileModelStore(fileDirectory);
  await fileStore.init();
  const fileRecords = fileStore.registryRecords('moving');
  await fileRecords.claimDeploymentId('moving-deployment');
  const mlpBytes = await readFile(fixturePath('tiny-mlp.onnx'));
  const blob = await fileStore.put(Readable.from([mlpBytes]), mlpBytes.length);
  const sampleText = JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] });
  const sample = createHash('sha256').update(sampleText).digest('hex');
  await fileStore.warmupSamples.put(sample, sampleText);
  const createdAt = new Date().toISOString();
  await fileRecords.writeVersion({ name: 'moved', version: '3', sha256: blob.sha256, size: blob.size, createdAt, configAtUpload: { maxBatchSize: 2 } });
  await fileRecords.writeWarmupSample('moved', '3', sample);
  await fileRecords.markDeleted('moved', '5');
  await fileRecords.writeRouting('moved', { aliases: [{ alias: 'production', version: '3', updatedAt: createdAt }] });
  const recordsBefore = await fileRecords.readAll();

  const archives = await scratchDirectory('backup-moves');
  const toS3 = path.join(archives, 'to-s3.tar');
  const s3Config = loadConfig({
    REDIS_URL: redis.url,
    GANTRY_QUEUE_PREFIX: 'moving',
    GANTRY_MODEL_STORE: 's3',
    GANTRY_S3_BUCKET: 'gantry-backup-test',
    GANTRY_S3_PREFIX: `moved-${randomBytes(4).toString('hex')}`,
    GANTRY_S3_ENDPOINT: s3.endpoint,
    GANTRY_S3_REGION: s3.region,
    GANTRY_S3_FORCE_PATH_STYLE: 'true',
    GANTRY_LOAD_TIMEOUT_MS: '200',
    LOG_LEVEL: 'silent',
  });
  const exported = await runCommand((print) =>
    runExportCommand(commandConfig(redis.url, 'moving', fileDirectory), logger, { out: toS3, referencesOnly: false }, print),
  );
  assert.equal(exported.status, 0, exported.output);
  const imported = await runCommand((print) => runImportCommand(s3Config, logger, toS3, print));
  assert.equal(imported.status, 0, imported.output);

  const s3Store = await createModelStore(s3Config);
  assert.deepEqual(await s3Store.registryRecords('moving').readAll(), recordsBefore, 'the S3 store holds the same records');
  assert.equal(await s3Store.registryRecords('moving').highestVersion('moved'), 5);
  assert.equal(await s3Store.warmupSamples.get(sample), sampleText);
  const chunks: Buffer[] = [];
  for await (const chunk of await s3Store.read(blob.sha256)) chunks.push(chunk as Buffer);
  assert.ok(Buffer.concat(chunks).equals(mlpBytes), 'the blob came through byte for byte');

  // And back, from S3 (its blobs read through the store interface) into an empty file store.
  await deleteKeys(redis.url, 'moving');
  const fromS3 = path.join(archives, 'from-s3.tar');
  const exportedAgain = await runCommand((print) => runExportCommand(s3Config, logger, { out: fromS3, referencesOnly: false }, print));
  assert.equal(exportedAgain.status, 0, exportedAgain.output);
  await deleteKeys(redis.url, 'moving');
  const backDirectory = await scratchDirectory('backup-back');
  const back = await runCommand((print) => runImportCommand(commandConfig(redis.url, 'moving', backDirectory), logger, fromS3, print));
  assert.equal(back.status, 0, back.output);
  assert.deepEqual(await new FileModelStore(backDirectory).registryRecords('moving').readAll(), recordsBefore);
  assert.ok((await readFile(path.join(backDirectory, 'blobs', 'sha256', blob.sha256))).equals(mlpBytes));
  await deleteKeys(redis.url, 'moving');
});
