import type { FastifyInstance } from 'fastify';
import type { ApiServices } from '../services.js';

/** Asynchronous jobs (issue 16): POST /v1/models/{m}/jobs, GET /v1/jobs[/{id}[/result]], DELETE /v1/jobs/{id}. */
export async function jobRoutes(app: FastifyInstance, services: ApiServices): Promise<void> {
  void app;
  void services;
}
