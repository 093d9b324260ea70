import type { FastifyInstance } from 'fastify';
import type { ApiServices } from '../services.js';

/** The web console at /console (issue 17). Placeholder until it is built. */
export async function consoleRoutes(_app: FastifyInstance, _services: ApiServices): Promise<void> {}
