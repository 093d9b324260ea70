import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

/** One access line per answered request (issue 17). Placeholder until it is built. */
async function accessLogPlugin(_app: FastifyInstance, _options: { enabled: boolean }): Promise<void> {}

export default fp(accessLogPlugin, { name: 'gantry-access-log' });
