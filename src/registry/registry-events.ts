import type { Redis } from 'ioredis';
import { z } from 'zod';
import { subscribeWhenReady } from '../queue/redis-connection.js';
import { registryEventsChannel } from '../redis-keys.js';

/**
 * Registry events: what changed in the registry, announced on one pub/sub channel so every API process's
 * catalog (inference/model-catalog.ts) and every worker (worker-role.ts) follows within a message. The one module
 * that defines, publishes and parses them. An event is a hint to re-read, never the data itself: a missed one
 * heals when the catalog's cache expires.
 */
export const registryEventSchema = z.object({
  type: z.enum([
    'version-created',
    'version-changed',
    'version-deleted',
    'model-deleted',
    /** The model's run-time configuration (model-config.ts) changed. */
    'config-changed',
    /** Every version was made UNAVAILABLE ("unloaded"); workers drop the model's sessions. */
    'model-unloaded',
    /** A repository load request finished with the model READY. */
    'model-loaded',
    /** The model's aliases (model-aliases.ts) changed: which version serves may have changed. */
    'aliases-changed',
    /** The model's traffic policy (model-traffic.ts) changed: which version serves, and which shadows, may have changed. */
    'traffic-changed',
  ]),
  name: z.string(),
  version: z.string().optional(),
  /** The blob of a deleted version, so workers can release its sessions. */
  sha256: z.string().optional(),
});

export type RegistryEvent = z.infer<typeof registryEventSchema>;

/** Announces one registry change to every catalog and worker. */
export async function publishRegistryEvent(redis: Redis, prefix: string, event: RegistryEvent): Promise<void> {
  await redis.publish(registryEventsChannel(prefix), JSON.stringify(event));
}

/**
 * Reads one message of the registry channel.
 * @returns undefined for a message that is not a registry event this version knows (not JSON, another shape,
 *   a type a newer version added): followers then re-read everything rather than guess.
 */
export function parseRegistryEvent(message: Buffer | string): RegistryEvent | undefined {
  let json: unknown;
  try {
    json = JSON.parse(typeof message === 'string' ? message : message.toString('utf8'));
  } catch {
    return undefined;
  }
  const parsed = registryEventSchema.safeParse(json);
  return parsed.success ? parsed.data : undefined;
}

/**
 * Subscribes `subscriber` (a connection in subscriber mode, possibly shared with other channels) to the registry
 * channel and calls `listener` with each event, or with undefined for an unreadable message.
 */
export async function followRegistryEvents(subscriber: Redis, prefix: string, listener: (event: RegistryEvent | undefined) => void): Promise<void> {
  const channel = registryEventsChannel(prefix);
  // 'messageBuffer', not 'message': a 'message' listener makes ioredis decode every message on the connection to
  // a string, the multi-megabyte inference replies an API process receives on the same connection included.
  subscriber.on('messageBuffer', (from: Buffer, message: Buffer) => {
    if (from.toString() === channel) listener(parseRegistryEvent(message));
  });
  await subscribeWhenReady(subscriber, channel);
}
