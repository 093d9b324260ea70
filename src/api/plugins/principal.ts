import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { anonymousAdmin, type Principal } from '../../auth/principal.js';

/**
 * Resolves the caller of every request (`request.principal`) before any handler runs. Until keys exist
 * (issue 12's authentication), every caller is the admin of the default tenant.
 */
async function principalPlugin(app: FastifyInstance): Promise<void> {
  app.decorateRequest('principal', null as unknown as Principal);
  app.addHook('onRequest', async (request) => {
    request.principal = anonymousAdmin;
  });
}

export default fp(principalPlugin, { name: 'principal' });
