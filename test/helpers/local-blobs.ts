import path from 'node:path';
import { createLogger } from '../../src/logger.js';
import type { ModelStore } from '../../src/registry/model-store.js';
import { BlobCache } from '../../src/worker/blob-cache.js';

/** A worker's blob cache over a test's store (a file store's blobs are used in place), unbounded, for SessionCache tests. */
export function localBlobs(store: ModelStore, directory: string): BlobCache {
  return new BlobCache(store, {
    directory: path.join(directory, 'cache', 'blobs'),
    maxBytes: 0,
    isInUse: () => true,
    logger: createLogger({ LOG_LEVEL: 'silent' }, 'test'),
  });
}
