import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

export interface RegisteredRoute {
  method: string;
  url: string;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route of the app, HEAD routes included (what the scope-table test checks against). */
    registeredRoutes: readonly RegisteredRoute[];
  }
}

/**
 * Records every route as it is registered. Registered first, so that it sees all of them: the test that every
 * route has an entry in the scope table (src/auth/route-scopes.ts) reads this list.
 */
async function routeListPlugin(app: FastifyInstance): Promise<void> {
  const routes: RegisteredRoute[] = [];
  app.decorate('registeredRoutes', routes);
  app.addHook('onRoute', (route) => {
    for (const method of Array.isArray(route.method) ? route.method : [route.method]) routes.push({ method, url: route.url });
  });
}

export default fp(routeListPlugin, { name: 'gantry-route-list' });
