import { Counter, Histogram, type Registry } from 'prom-client';
import { latencyBucketsSeconds } from './buckets.js';

/** Outcomes of one webhook delivery attempt: each attempt is counted once, under exactly one of them. */
export type WebhookDeliveryOutcome = 'delivered' | 'failed_attempt' | 'refused' | 'gave_up';

/**
 * Webhook delivery metrics (issue 16), on the registry given (the API role's: API processes deliver webhooks).
 * `gantry_webhook_deliveries_total` counts attempts by outcome: `delivered` (the receiver answered 2xx),
 * `failed_attempt` (no answer or another status; a retry follows), `gave_up` (the last attempt failed: no retry
 * follows) and `refused` (the SSRF guard refused the callback URL: never retried).
 */
export function createWebhookMetrics(registry: Registry) {
  return {
    deliveries: new Counter({
      name: 'gantry_webhook_deliveries_total',
      help: 'Webhook delivery attempts by outcome (delivered, failed_attempt, refused, gave_up: the last attempt failed).',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    deliveryDuration: new Histogram({
      name: 'gantry_webhook_delivery_duration_seconds',
      help: 'Time one webhook delivery attempt took, from connecting to the end of the answer (or the timeout).',
      buckets: latencyBucketsSeconds,
      registers: [registry],
    }),
  };
}

export type WebhookMetrics = ReturnType<typeof createWebhookMetrics>;
