import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { errorBodySchema } from '../../protocol/oip-schemas.js';
import { consoleAssets } from '../console/console-assets.js';
import { LiveStatsSampler } from '../console/live-stats-sampler.js';
import { LiveStatsStreams } from '../console/live-stats-streams.js';
import { maxModelsPerEvent } from '../console/live-stats-view.js';
import type { ApiServices } from '../services.js';

/** Fixed here, never by the client: a caller cannot make the API sample faster. */
const sampleIntervalMs = 1000;
/** The latency percentiles cover the last 10 samples (10 s). */
const windowIntervals = 10;

/**
 * The web console (issue 17): its static files at /console/ (public: the page asks for a key and sends it itself)
 * and the server-sent-event stream its Live view draws, GET /v1/console/live-stats (scope models:read). Both off
 * with GANTRY_CONSOLE=off.
 */
export async function consoleRoutes(app: FastifyInstance, services: ApiServices): Promise<void> {
  if (services.config.GANTRY_CONSOLE === 'off') return;
  await app.register(consoleAssets);

  const sampler = new LiveStatsSampler(services.metrics, { intervalMs: sampleIntervalMs, windowIntervals });
  const maxStreams = services.config.GANTRY_MAX_CONSOLE_STREAMS;
  const streams = new LiveStatsStreams(sampler, services.isAcceptingWork, maxStreams, () => services.metrics.limitRejections.inc({ limit: 'console_streams' }));
  // Before the server closes: it waits for open requests, and a stream never ends by itself.
  app.addHook('preClose', async () => {
    sampler.close();
    streams.closeAll();
  });
  // Untyped: the answer is a stream, which Fastify sends as it is (the 200 schema only documents it).
  app.get(
    '/v1/console/live-stats',
    {
      schema: {
        tags: ['console'],
        summary: "Live request rate, latency percentiles and queue depth of the caller's models (server-sent events)",
        description:
          `A text/event-stream with one \`stats\` event a second: per model, the requests this API process answered (total, ` +
          `per second, errors), the p50/p90/p99 latency of its successful requests over the last ${windowIntervals} s, and the ` +
          `jobs waiting or running in the model's queues (all processes'). At most ${maxModelsPerEvent} models per event ` +
          `(the busiest), and ${maxStreams} open streams per API process (GANTRY_MAX_CONSOLE_STREAMS; then 503).`,
        response: { 200: z.string().describe('text/event-stream'), '4xx': errorBodySchema, '5xx': errorBodySchema },
      },
    },
    (request, reply) => streams.serve(request, reply),
  );
}
