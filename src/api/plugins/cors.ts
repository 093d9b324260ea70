import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

/** Cross-origin requests from the origins GANTRY_CORS_ORIGINS lists (issue 17). Placeholder until it is built. */
async function corsPlugin(_app: FastifyInstance, _options: { origins: string }): Promise<void> {}

export default fp(corsPlugin, { name: 'gantry-cors' });
