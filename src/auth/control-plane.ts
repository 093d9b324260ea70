import type { Redis } from 'ioredis';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { ensureAdminKey, type AdminKeyOutcome } from './admin-key.js';
import { Authenticator } from './authenticator.js';
import { KeyStore } from './key-store.js';
import { TenantStore } from './tenant-store.js';

export interface ControlPlane {
  tenants: TenantStore;
  keys: KeyStore;
  /** Undefined when GANTRY_AUTH=off. */
  authenticator: Authenticator | undefined;
  stop: () => void;
}

export interface ControlPlaneOptions {
  redis: Redis;
  /** The API's subscriber connection (shared with replies and registry events). */
  subscriber: Redis;
  config: Config;
  logger: Logger;
  /**
   * Told what start-up did about the admin key: once at start, or once Redis first answers when it was away;
   * and again with `generated` should Redis lose the key later. The CLI shows a generated key (once).
   */
  onAdminKey: (outcome: AdminKeyOutcome) => void;
}

/**
 * The API's side of tenants and keys: the stores, the authenticator (with its cache invalidation), the default
 * tenant and the admin key. An API that starts before Redis answers sets the last two up once it does.
 */
export async function startControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  const { redis, config, logger } = options;
  const prefix = config.GANTRY_QUEUE_PREFIX;
  const tenants = new TenantStore(redis, prefix, config.GANTRY_MAX_TENANTS);
  const keys = new KeyStore(redis, prefix, config.GANTRY_MAX_KEYS_PER_TENANT);
  const setUp = async () => {
    await tenants.ensureDefaultTenant();
    options.onAdminKey(await ensureAdminKey(redis, prefix, config.GANTRY_ADMIN_KEY));
  };
  if (redis.status === 'ready') await setUp();
  else {
    redis.once(
      'ready',
      () => void setUp().catch((error: unknown) => logger.error({ err: (error as Error).message }, 'could not set up the default tenant and the admin key')),
    );
  }
  if (config.GANTRY_AUTH === 'off') {
    logger.warn('GANTRY_AUTH=off: every request is treated as the admin (allowed only because HOST is a loopback address)');
    return { tenants, keys, authenticator: undefined, stop: () => undefined };
  }
  const authenticator = new Authenticator(redis, prefix, keys, tenants, {
    ttlMs: config.GANTRY_AUTH_CACHE_TTL_MS,
    maxEntries: config.GANTRY_AUTH_CACHE_ENTRIES,
    ...(config.GANTRY_ADMIN_KEY === undefined ? {} : { configuredAdminKey: config.GANTRY_ADMIN_KEY }),
    onAdminKeyGenerated: (key) => options.onAdminKey({ kind: 'generated', key }),
  });
  tenants.onChange = (event) => authenticator.forget(event);
  keys.onChange = (event) => authenticator.forget(event);
  await authenticator.start(options.subscriber);
  return { tenants, keys, authenticator, stop: () => authenticator.stop() };
}
