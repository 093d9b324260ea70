import type { Redis } from 'ioredis';
import { authEventsChannel } from '../redis-keys.js';

/**
 * What every API process must forget from its authentication caches, published on one channel whenever a
 * key, a tenant or the admin key changes, so a revocation holds on every process at once (the cache TTL is
 * only the fallback for a lost message).
 */
export type AuthEvent = { type: 'key'; keyId: string } | { type: 'tenant'; tenant: string } | { type: 'admin-key' };

/**
 * Announces a change to every API process. `local` hears it at once: the process that made the change must not
 * answer from its cache while its own message is still on the way back to it.
 */
export async function publishAuthEvent(redis: Redis, prefix: string, event: AuthEvent, local?: (event: AuthEvent) => void): Promise<void> {
  local?.(event);
  await redis.publish(authEventsChannel(prefix), JSON.stringify(event));
}

/** Hears the changes a store makes, in the process that makes them (the authenticator forgets them at once). */
export type AuthChangeListener = (event: AuthEvent) => void;

/** Parses a message from the channel; undefined for anything unreadable (the reader then forgets everything). */
export function parseAuthEvent(message: string): AuthEvent | undefined {
  try {
    const event = JSON.parse(message) as Partial<AuthEvent> & Record<string, unknown>;
    if (event.type === 'key' && typeof event.keyId === 'string') return { type: 'key', keyId: event.keyId };
    if (event.type === 'tenant' && typeof event.tenant === 'string') return { type: 'tenant', tenant: event.tenant };
    if (event.type === 'admin-key') return { type: 'admin-key' };
  } catch {
    // fall through
  }
  return undefined;
}
