import type { Metadata } from '@grpc/grpc-js';
import type { Authenticator } from '../auth/authenticator.js';
import { presentedKey } from '../auth/credentials.js';
import { anonymousAdmin, defaultTenant, hasScope, type Principal, type Scope } from '../auth/principal.js';
import { describeRequirement, grpcRequirementOf } from '../auth/route-scopes.js';
import { errors } from '../errors.js';

/** The caller of a public method (health, liveness): nobody in particular, with no scope. */
export const publicGrpcPrincipal: Principal = Object.freeze({ tenant: defaultTenant, keyId: 'public', scopes: new Set<Scope>() });

/** The first value of a metadata key as text, or the values as a list when there are several (then refused as no key). */
function metadataValue(metadata: Metadata, key: string): string | string[] | undefined {
  const values = metadata.get(key).map((value) => (typeof value === 'string' ? value : value.toString('utf8')));
  if (values.length === 0) return undefined;
  return values.length === 1 ? values[0] : values;
}

/**
 * Resolves the caller of a gRPC call the way REST resolves a request's (src/api/plugins/principal.ts): the key
 * from `authorization: Bearer <key>` or `x-api-key: <key>` metadata, the method's requirement from the one scope
 * table (src/auth/route-scopes.ts, `grpcMethodScopes`), the same messages.
 * @param authenticator undefined when GANTRY_AUTH=off: every caller is then the admin.
 * @throws UNAUTHENTICATED without a valid key; PERMISSION_DENIED naming the missing scope (and for a disabled tenant).
 */
export function callPrincipal(
  authenticator: Authenticator | undefined,
  methodPath: string,
  metadata: Metadata,
  onRefused?: (reason: string, keyId?: string) => void,
): Principal | Promise<Principal> {
  if (authenticator === undefined) return anonymousAdmin;
  const requirement = grpcRequirementOf(methodPath);
  if (requirement === 'public') return publicGrpcPrincipal;
  const authorization = metadataValue(metadata, 'authorization');
  const apiKey = metadataValue(metadata, 'x-api-key');
  // Two authorization values are no one key; presentedKey refuses a list like a missing key.
  const presented = Array.isArray(authorization) ? undefined : presentedKey({ authorization, 'x-api-key': apiKey });
  const admit = (principal: Principal): Principal => {
    if (requirement !== 'any key' && !requirement.some((scope) => hasScope(principal, scope)))
      throw errors.missingScope(describeRequirement(requirement), `gRPC ${methodPath}`);
    return principal;
  };
  const principal = authenticator.authenticate(presented, onRefused);
  return principal instanceof Promise ? principal.then(admit) : admit(principal);
}
