/**
 * GANTRY_MODEL_STORE and GANTRY_S3_* (config.ts) and the store createModelStore builds from them: the defaults,
 * the refusals that name the variable and the fix, and the location each store reports.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ConfigError, loadConfig } from '../../src/config.js';
import { FileModelStore } from '../../src/registry/file-model-store.js';
import { createModelStore } from '../../src/registry/model-store-factory.js';
import { S3ModelStore } from '../../src/registry/s3-model-store.js';

test('the file store is the default, in GANTRY_DATA_DIR; the S3 defaults are us-east-1, no prefix, virtual-host style', async () => {
  const config = loadConfig({ GANTRY_DATA_DIR: '/tmp/gantry-data' });
  assert.equal(config.GANTRY_MODEL_STORE, 'file');
  assert.equal(config.GANTRY_S3_REGION, 'us-east-1');
  assert.equal(config.GANTRY_S3_PREFIX, '');
  assert.equal(config.GANTRY_S3_FORCE_PATH_STYLE, false);
  const store = await createModelStore(config);
  assert.ok(store instanceof FileModelStore);
  assert.equal(store.describeLocation(), path.resolve('/tmp/gantry-data'));
});

test('GANTRY_MODEL_STORE=s3 builds the S3 store from GANTRY_S3_*, and reports the bucket, prefix and endpoint', async () => {
  const config = loadConfig({
    GANTRY_MODEL_STORE: 's3',
    GANTRY_S3_BUCKET: 'models.example',
    GANTRY_S3_PREFIX: 'prod/gantry/',
    GANTRY_S3_ENDPOINT: 'http://minio:9000',
    GANTRY_S3_FORCE_PATH_STYLE: 'true',
  });
  assert.equal(config.GANTRY_S3_PREFIX, 'prod/gantry', 'a trailing slash is dropped');
  const store = await createModelStore(config);
  assert.ok(store instanceof S3ModelStore);
  assert.equal(store.describeLocation(), 's3://models.example/prod/gantry/ (http://minio:9000)');
  const onAws = await createModelStore(loadConfig({ GANTRY_MODEL_STORE: 's3', GANTRY_S3_BUCKET: 'models', GANTRY_S3_REGION: 'eu-west-1' }));
  assert.equal(onAws.describeLocation(), 's3://models/ (AWS region eu-west-1)');
});

test('refusals name the variable and what to set', async () => {
  assert.throws(
    () => loadConfig({ GANTRY_MODEL_STORE: 's3' }),
    (error: unknown) => error instanceof ConfigError && /GANTRY_MODEL_STORE=s3 needs GANTRY_S3_BUCKET/.test(error.message),
  );
  assert.throws(() => loadConfig({ GANTRY_MODEL_STORE: 'gcs' }), /GANTRY_MODEL_STORE/);
  assert.throws(() => loadConfig({ GANTRY_S3_BUCKET: 'Has_Capitals' }), /GANTRY_S3_BUCKET: is not an S3 bucket name/);
  assert.throws(() => loadConfig({ GANTRY_S3_PREFIX: '/leading' }), /GANTRY_S3_PREFIX: must not start with '\/'/);
  assert.throws(() => loadConfig({ GANTRY_S3_ENDPOINT: 'minio:9000' }), /GANTRY_S3_ENDPOINT: must be http\(s\):\/\/host\[:port\]/);
  assert.throws(() => loadConfig({ GANTRY_S3_ENDPOINT: 'http://minio:9000/bucket' }), /without a path/);
  assert.throws(() => loadConfig({ GANTRY_S3_FORCE_PATH_STYLE: 'yes' }), /GANTRY_S3_FORCE_PATH_STYLE/);
});
