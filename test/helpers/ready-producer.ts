import { createRedis, waitForReady, type Redis } from '../../src/queue/redis-connection.js';

/**
 * A producer connection (the API's kind) that is ready before the test uses it. Producers fail fast instead of
 * queueing commands while connecting (src/queue/redis-connection.ts), so a command sent before the connection is
 * ready is refused; on a loaded CI machine that happened, and a test that ignores a request's failure then waits for
 * a job that was never added.
 */
export async function readyProducerRedis(url: string, name: string): Promise<Redis> {
  const redis = createRedis(url, 'producer', name);
  await waitForReady(redis, 15_000);
  return redis;
}
