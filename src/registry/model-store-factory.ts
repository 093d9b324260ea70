import type { Config } from '../config.js';
import { FileModelStore, type StoreLimits } from './file-model-store.js';
import type { ModelStore } from './model-store.js';

/**
 * The model store GANTRY_MODEL_STORE names: the data directory's folders (`file`), or a bucket (`s3`, GANTRY_S3_*,
 * credentials from the AWS SDK's default chain). Nothing is checked here: `init()` says what is wrong at start-up.
 * The S3 store (and the AWS SDK, ~20 MiB and 0.4 s of start-up) is imported only when it is the one asked for.
 */
export async function createModelStore(config: Config, limits?: StoreLimits): Promise<ModelStore> {
  if (config.GANTRY_MODEL_STORE === 'file') return new FileModelStore(config.GANTRY_DATA_DIR, limits);
  const { S3ModelStore } = await import('./s3-model-store.js');
  return new S3ModelStore(
    {
      // loadConfig refuses GANTRY_MODEL_STORE=s3 without a bucket.
      bucket: config.GANTRY_S3_BUCKET!,
      prefix: config.GANTRY_S3_PREFIX,
      ...(config.GANTRY_S3_ENDPOINT === undefined ? {} : { endpoint: config.GANTRY_S3_ENDPOINT }),
      region: config.GANTRY_S3_REGION,
      forcePathStyle: config.GANTRY_S3_FORCE_PATH_STYLE,
    },
    limits,
  );
}
