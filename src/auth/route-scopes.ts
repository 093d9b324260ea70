import type { Scope } from './principal.js';

/**
 * What each route needs, in one table (method + Fastify route url), enforced by the authentication plugin
 * (src/api/plugins/principal.ts) and shown in the OpenAPI document. Route files declare nothing themselves; a
 * test checks that every registered route is listed here, and a route missing from it needs `admin` (closed
 * by default, never open).
 *
 * - `public`: no key (health probes, the API's own documentation).
 * - `any key`: any valid key, whatever its scopes (server metadata).
 * - a list of scopes: a key holding at least one of them (an admin key holds all).
 */
export type RouteRequirement = 'public' | 'any key' | readonly Scope[];

const readModels: readonly Scope[] = ['models:read'];
// Clients such as tritonclient read a model's metadata before they infer: a key that may infer may read it too.
const readOrInfer: readonly Scope[] = ['models:read', 'infer'];
const writeModels: readonly Scope[] = ['models:write'];

export const routeScopes: Readonly<Record<string, RouteRequirement>> = {
  // Open Inference Protocol: health and metadata
  'GET /v2/health/live': 'public',
  'GET /v2/health/ready': 'public',
  'GET /v2': 'any key',
  'GET /v2/models/:model': readOrInfer,
  'GET /v2/models/:model/versions/:version': readOrInfer,
  'GET /v2/models/:model/ready': readOrInfer,
  'GET /v2/models/:model/versions/:version/ready': readOrInfer,
  // Inference
  'POST /v2/models/:model/infer': ['infer'],
  'POST /v2/models/:model/versions/:version/infer': ['infer'],
  // Statistics and configuration (Triton extensions)
  'GET /v2/models/stats': readModels,
  'GET /v2/models/:model/stats': readModels,
  'GET /v2/models/:model/versions/:version/stats': readModels,
  'GET /v2/models/:model/config': readModels,
  'GET /v2/models/:model/versions/:version/config': readModels,
  // Repository (Triton extension): the index is a listing; load and unload change what runs
  'POST /v2/repository/index': readModels,
  'POST /v2/repository/models/:model/load': writeModels,
  'POST /v2/repository/models/:model/unload': writeModels,
  // Model management
  'GET /v1/models': readModels,
  'GET /v1/models/:model': readModels,
  'GET /v1/models/:model/versions/:version': readModels,
  'POST /v1/models/:model/versions': writeModels,
  'PUT /v1/models/:model/versions/:version': writeModels,
  'DELETE /v1/models/:model': writeModels,
  'DELETE /v1/models/:model/versions/:version': writeModels,
  'PUT /v1/models/:model/config': writeModels,
  // Aliases: reading them is reading the model; moving one changes which version serves, like managing versions
  'GET /v1/models/:model/aliases': readModels,
  'PUT /v1/models/:model/aliases/:alias': writeModels,
  'DELETE /v1/models/:model/aliases/:alias': writeModels,
  // Traffic policies: the same, since a split or shadow changes which version serves (or also runs)
  'GET /v1/models/:model/traffic': readModels,
  'PUT /v1/models/:model/traffic': writeModels,
  'DELETE /v1/models/:model/traffic': writeModels,
  'POST /v1/models/:model/versions/:version/warmup': writeModels,
  // Asynchronous jobs and batch files: a caller's own (the routes narrow them to the caller's tenant and key)
  'POST /v1/models/:model/jobs': ['infer'],
  'POST /v1/models/:model/versions/:version/jobs': ['infer'],
  'GET /v1/jobs': ['infer'],
  'GET /v1/jobs/:jobId': ['infer'],
  'GET /v1/jobs/:jobId/result': ['infer'],
  'DELETE /v1/jobs/:jobId': ['infer'],
  'POST /v1/models/:model/batches': ['infer'],
  'GET /v1/batches': ['infer'],
  'GET /v1/batches/:batchId': ['infer'],
  'GET /v1/batches/:batchId/results': ['infer'],
  'DELETE /v1/batches/:batchId': ['infer'],
  // Control plane: tenants are the admin's; keys are also a tenant's own (within its tenant, never more than it holds)
  'POST /v1/tenants': ['admin'],
  'GET /v1/tenants': ['admin'],
  'GET /v1/tenants/:tenant': ['admin'],
  'PATCH /v1/tenants/:tenant': ['admin'],
  'DELETE /v1/tenants/:tenant': ['admin'],
  'POST /v1/keys': ['keys:write'],
  'GET /v1/keys': ['keys:write'],
  'GET /v1/keys/:keyId': ['keys:write'],
  'PATCH /v1/keys/:keyId': ['keys:write'],
  'DELETE /v1/keys/:keyId': ['keys:write'],
  // Limits: a tenant's are the admin's; a key's also a keys:write key's of the same tenant (the route checks the tenant)
  'GET /v1/tenants/:tenant/limits': ['admin'],
  'PUT /v1/tenants/:tenant/limits': ['admin'],
  'GET /v1/keys/:keyId/limits': ['keys:write'],
  'PUT /v1/keys/:keyId/limits': ['keys:write'],
  // Usage: a tenant's key sees its own tenant's, the admin everyone's (the route narrows it)
  'GET /v1/usage': ['usage:read'],
  // Prometheus: every tenant's numbers, so not a tenant's to read (public on a loopback bind: GANTRY_METRICS_PUBLIC)
  'GET /metrics': ['metrics:read'],
  // The OpenAPI document and its UI describe the interface, not anyone's data.
  'GET /docs': 'public',
  'GET /docs/json': 'public',
  'GET /docs/yaml': 'public',
  // swagger-ui's own HEAD for its redirect from /docs/ (no GET /docs/ route of its own)
  'HEAD /docs/': 'public',
  'GET /docs/static/index.html': 'public',
  'GET /docs/static/swagger-initializer.js': 'public',
  'GET /docs/static/*': 'public',
  // CORS preflights (src/api/plugins/cors.ts): a browser sends them without the key, and they read nothing.
  'OPTIONS *': 'public',
  // The web console's files (it asks for a key and sends it itself) and the live stats its charts draw.
  'GET /console': 'public',
  'GET /console/*': 'public',
  'GET /v1/console/live-stats': readModels,
};

/** Needed by a route this table lacks: closed, never open. */
const unlisted: RouteRequirement = ['admin'];

/**
 * What each gRPC method needs (full method path, as grpc-js names it), mapped to what its REST twin needs above.
 * Kept apart from `routeScopes` because that table lists exactly the Fastify routes (a test checks both ways);
 * enforced by src/grpc/call-principal.ts. A method missing here needs `admin`, as an unlisted route does.
 * grpc.health.v1's Check and Watch are public like GET /v2/health/ready.
 */
export const grpcMethodScopes: Readonly<Record<string, RouteRequirement>> = {
  '/inference.GRPCInferenceService/ServerLive': 'public',
  '/inference.GRPCInferenceService/ServerReady': 'public',
  '/inference.GRPCInferenceService/ServerMetadata': 'any key',
  '/inference.GRPCInferenceService/ModelReady': readOrInfer,
  '/inference.GRPCInferenceService/ModelMetadata': readOrInfer,
  '/inference.GRPCInferenceService/ModelInfer': ['infer'],
  '/inference.GRPCInferenceService/ModelStreamInfer': ['infer'],
  '/inference.GRPCInferenceService/ModelConfig': readModels,
  '/inference.GRPCInferenceService/ModelStatistics': readModels,
  '/inference.GRPCInferenceService/RepositoryIndex': readModels,
  '/inference.GRPCInferenceService/RepositoryModelLoad': writeModels,
  '/inference.GRPCInferenceService/RepositoryModelUnload': writeModels,
  '/grpc.health.v1.Health/Check': 'public',
  '/grpc.health.v1.Health/Watch': 'public',
};

/** The requirement of a gRPC method by its full path (`/package.Service/Method`); unlisted ones need `admin`. */
export function grpcRequirementOf(methodPath: string): RouteRequirement {
  return grpcMethodScopes[methodPath] ?? unlisted;
}

/**
 * The requirement of a route by its method and Fastify url (`request.routeOptions.url`). HEAD is answered by a
 * GET route (Fastify adds one per GET) and needs what the GET needs.
 */
export function requirementOf(method: string, routeUrl: string): RouteRequirement {
  return listedRequirement(method, routeUrl) ?? unlisted;
}

/** True when the table has an entry for the route (the test of every registered route uses this). */
export function isListed(method: string, routeUrl: string): boolean {
  return listedRequirement(method, routeUrl) !== undefined;
}

function listedRequirement(method: string, routeUrl: string): RouteRequirement | undefined {
  return routeScopes[`${method} ${routeUrl}`] ?? (method === 'HEAD' ? routeScopes[`GET ${routeUrl}`] : undefined);
}

/** How the requirement reads in a message and in the OpenAPI description. */
export function describeRequirement(requirement: RouteRequirement): string {
  if (requirement === 'public') return 'no key needed';
  if (requirement === 'any key') return 'any valid key';
  return requirement.length === 1 ? `scope '${requirement[0]}'` : `one of the scopes ${requirement.map((scope) => `'${scope}'`).join(', ')}`;
}
