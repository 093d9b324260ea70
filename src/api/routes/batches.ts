import type { FastifyInstance } from 'fastify';
import type { ApiServices } from '../services.js';

/** Batch files (issue 16): POST /v1/models/{m}/batches, GET /v1/batches/{id}[/results], DELETE /v1/batches/{id}. */
export async function batchRoutes(app: FastifyInstance, services: ApiServices): Promise<void> {
  void app;
  void services;
}
