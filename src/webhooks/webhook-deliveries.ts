import type { Redis } from 'ioredis';
import type { FinishedSubject } from '../jobs/durable-writer.js';
import { webhookDeliveriesKey } from '../redis-keys.js';
import type { DeliveryAttempt } from './webhook-delivery.js';

/**
 * A subject's webhook delivery attempts, oldest first, as the dispatcher recorded them (webhook-dispatcher.ts
 * keeps the last maxRecordedDeliveries): what a job or batch shows as `deliveries`. An entry that is not JSON is
 * skipped rather than failing the read.
 */
export async function readDeliveries(redis: Redis, prefix: string, subject: FinishedSubject): Promise<DeliveryAttempt[]> {
  const entries = await redis.lrange(webhookDeliveriesKey(prefix, subject), 0, -1);
  return entries.flatMap((entry) => {
    try {
      return [JSON.parse(entry) as DeliveryAttempt];
    } catch {
      return [];
    }
  });
}
