import { createRequire } from 'node:module';
import type { Redis } from 'ioredis';
import type { RegistryGuardian } from '../registry/registry-guardian.js';

const packageJson = createRequire(import.meta.url)('../../../package.json') as { version: string };

/** Protocol extensions this server implements; only what is really there is listed. */
export const implementedExtensions: readonly string[] = [
  'binary_tensor_data',
  'classification',
  'model_configuration',
  'model_repository',
  'schedule_policy',
  'statistics',
];

/** The server metadata every transport answers (REST GET /v2, gRPC ServerMetadata). */
export interface ServerMetadata {
  name: string;
  version: string;
  extensions: string[];
}

/** The server's name, version and extensions. */
export function serverMetadata(): ServerMetadata {
  return { name: 'gantry', version: packageJson.version, extensions: [...implementedExtensions] };
}

/** What readiness looks at. */
export interface ReadinessSources {
  redis: Pick<Redis, 'status'>;
  guardian: Pick<RegistryGuardian, 'unreadyReason'>;
  /** False once shutdown began. */
  isAcceptingWork: () => boolean;
}

/**
 * Why this API is not ready, or undefined when it is: shutting down, Redis unreachable, or the registry in
 * Redis not this store's or not intact. REST's /v2/health/ready, gRPC's ServerReady and the gRPC health
 * service all answer from this, so probes of either transport agree.
 */
export function unreadyReason(sources: ReadinessSources): string | undefined {
  if (!sources.isAcceptingWork()) return 'The server is shutting down.';
  if (sources.redis.status !== 'ready') return 'Redis is unreachable.';
  return sources.guardian.unreadyReason();
}
