import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { WorkerMetrics } from '../metrics/worker-metrics.js';

export interface WorkerHttpServer {
  port: number;
  close(): Promise<void>;
}

/**
 * The worker's own small HTTP server: /metrics for Prometheus, /health (the process is up) and /ready (it is
 * taking jobs and reaches Redis) for orchestrators. Plain node:http, since a worker serves nothing else.
 */
export async function startWorkerHttpServer(options: {
  host: string;
  port: number;
  metrics: WorkerMetrics;
  isReady: () => boolean;
  isRedisUp: () => boolean;
}): Promise<WorkerHttpServer> {
  const server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (path === '/metrics') {
      options.metrics.redisUp.set(options.isRedisUp() ? 1 : 0);
      options.metrics.registry.metrics().then(
        (text) => {
          response.writeHead(200, { 'content-type': options.metrics.registry.contentType });
          response.end(text);
        },
        () => {
          response.writeHead(500).end();
        },
      );
      return;
    }
    if (path === '/health') {
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      return;
    }
    if (path === '/ready') {
      const ready = options.isReady();
      response.writeHead(ready ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ ready }));
      return;
    }
    response.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
