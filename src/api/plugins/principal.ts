import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Authenticator } from '../../auth/authenticator.js';
import { presentedKey } from '../../auth/credentials.js';
import { anonymousAdmin, defaultTenant, hasScope, type Principal, type Scope } from '../../auth/principal.js';
import { describeRequirement, requirementOf, type RouteRequirement } from '../../auth/route-scopes.js';
import { ErrorCode, GantryError, errors } from '../../errors.js';

export interface PrincipalPluginOptions {
  /** Undefined when GANTRY_AUTH=off (loopback only): every caller is then the admin. */
  authenticator: Authenticator | undefined;
  /** /metrics answers without a key (GANTRY_METRICS_PUBLIC). */
  metricsPublic: boolean;
}

/** The principal of a request to a public route: nobody in particular, with no scope. */
export const publicPrincipal: Principal = Object.freeze({ tenant: defaultTenant, keyId: 'public', scopes: new Set<Scope>() });

// A request to no route at all still needs a key: only what is public answers without one.
const unmatchedRoute: RouteRequirement = 'any key';

/**
 * Resolves the caller of every request (`request.principal`) before any handler runs, and refuses it when the
 * route needs what the caller lacks: 401 (with `WWW-Authenticate: Bearer`) without a valid key, 403 naming the
 * missing scope. What each route needs is the table in src/auth/route-scopes.ts; nothing below the transports
 * reads an auth header.
 */
async function principalPlugin(app: FastifyInstance, options: PrincipalPluginOptions): Promise<void> {
  app.decorateRequest('principal', null as unknown as Principal);
  const { authenticator } = options;
  if (authenticator === undefined) {
    app.addHook('onRequest', async (request) => {
      request.principal = anonymousAdmin;
    });
    return;
  }
  // A callback hook, not an async one: a cached key is checked synchronously, and the request goes on without a
  // promise per request (docs/performance.md: the auth overhead bench).
  app.addHook('onRequest', (request, reply, done) => {
    const routeUrl = request.routeOptions.url;
    const requirement = routeUrl === undefined ? unmatchedRoute : requirementOf(request.method, routeUrl);
    if (requirement === 'public' || (options.metricsPublic && routeUrl === '/metrics')) {
      request.principal = publicPrincipal;
      done();
      return;
    }
    const refuse = (error: unknown) => {
      if (error instanceof GantryError && error.code === ErrorCode.Unauthenticated) void reply.header('www-authenticate', 'Bearer realm="gantry"');
      done(error as Error);
    };
    const admit = (principal: Principal) => {
      if (requirement !== 'any key' && !requirement.some((scope) => hasScope(principal, scope))) {
        refuse(errors.missingScope(describeRequirement(requirement), `${request.method} ${routeUrl}`));
        return;
      }
      request.principal = principal;
      done();
    };
    let principal: Principal | Promise<Principal>;
    try {
      principal = authenticator.authenticate(presentedKey(request.headers), (reason, keyId) => request.log.debug({ reason, keyId }, 'API key refused'));
    } catch (error) {
      refuse(error);
      return;
    }
    if (principal instanceof Promise) principal.then(admit, refuse);
    else admit(principal);
  });
}

export default fp(principalPlugin, { name: 'principal' });
