import type { Config } from '../config.js';
import { FileModelStore, type StoreLimits } from './file-model-store.js';
import type { ModelStore } from './model-store.js';
import { S3ModelStore } from './s3-model-store.js';

/**
 * The model store GANTRY_MODEL_STORE names: the data directory's folders (`file`), or a bucket (`s3`, GANTRY_S3_*,
 * credentials from the AWS SDK's default chain). Nothing is checked here: `init()` says what is wrong at start-up.
 */
export function createModelStore(config: Config, limits?: StoreLimits): ModelStore {
  if (config.GANTRY_MODEL_STORE === 'file') return new FileModelStore(config.GANTRY_DATA_DIR, limits);
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
