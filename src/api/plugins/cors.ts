import fastifyCors from '@fastify/cors';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { CorsOrigins } from '../../cors-origins.js';
import { ErrorCode, GantryError } from '../../errors.js';

/** What a browser app may send: every method a route takes (infer and management alike). */
const allowedMethods = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'];

/**
 * Answer headers a browser app may read: the request id to report, the retry and rate-limit hints, the binary
 * extension's header length, where an upload went, and the batch progress headers.
 */
const exposedHeaders = [
  'x-request-id',
  'retry-after',
  'ratelimit-limit',
  'ratelimit-remaining',
  'ratelimit-reset',
  'ratelimit-policy',
  'www-authenticate',
  'inference-header-content-length',
  'location',
  'gantry-batch-state',
  'gantry-batch-lines',
  'gantry-batch-total',
];

/** How long a browser may reuse a preflight's answer, in seconds (Chromium caps it at 7200). */
const preflightMaxAgeSeconds = 600;

/**
 * The answer to an OPTIONS request that is not a granted preflight: with CORS off, from an origin not listed,
 * or not a preflight at all. A clear error instead of "No route OPTIONS …": the browser refuses the cross-origin
 * call either way (no Access-Control-Allow-Origin), and whoever reads the network tab learns why.
 */
function refusal(request: FastifyRequest, corsOn: boolean): GantryError {
  if (request.headers.origin === undefined || request.headers['access-control-request-method'] === undefined) {
    return new GantryError(
      ErrorCode.InvalidArgument,
      'OPTIONS is answered only as a CORS preflight, with the Origin and Access-Control-Request-Method headers a browser sends.',
    );
  }
  return new GantryError(
    ErrorCode.PermissionDenied,
    corsOn
      ? 'Cross-origin requests from this origin are not allowed: GANTRY_CORS_ORIGINS on the server does not list it.'
      : 'Cross-origin requests are off on this server: GANTRY_CORS_ORIGINS lists the origins a browser app may call it from.',
  );
}

/**
 * CORS for browser apps on the origins GANTRY_CORS_ORIGINS lists (@fastify/cors), on every route: inference,
 * management, everything. Registered before the principal, so a preflight (which carries no key) is answered,
 * not refused with 401. Credentials (cookies) are not allowed: callers send their key in a header.
 *
 * Off by default: no CORS header on any answer, and an OPTIONS request is refused with a message saying so.
 */
async function corsPlugin(app: FastifyInstance, options: { origins: CorsOrigins }): Promise<void> {
  if (options.origins.length === 0) {
    // Without CORS nothing else answers OPTIONS; the route (public in src/auth/route-scopes.ts) says why.
    app.options('*', { schema: { hide: true } }, async (request) => {
      throw refusal(request, false);
    });
    return;
  }
  const anyOrigin = options.origins[0] === '*';
  const allowed = new Set(options.origins);
  await app.register(fastifyCors, {
    // A listed origin is echoed back (with Vary: Origin); an unlisted one gets no CORS header at all.
    origin: anyOrigin
      ? '*'
      : (origin: string | undefined, callback: (error: Error | null, allow: boolean) => void) => callback(null, origin !== undefined && allowed.has(origin)),
    methods: allowedMethods,
    exposedHeaders,
    maxAge: preflightMaxAgeSeconds,
    credentials: false,
    strictPreflight: false,
  });
  // @fastify/cors answers a granted preflight in its own onRequest hook, before this one; what reaches this hook
  // as OPTIONS was not granted (its route would answer 404).
  app.addHook('onRequest', (request: FastifyRequest, _reply: FastifyReply, done: (error?: Error) => void) => {
    if (request.method !== 'OPTIONS') done();
    else done(refusal(request, true));
  });
}

export default fp(corsPlugin, { name: 'gantry-cors' });
