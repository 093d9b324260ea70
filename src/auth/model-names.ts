import { errors } from '../errors.js';
import { isValidModelName } from '../queue/names.js';
import { defaultTenant, isAdmin, tenantIdPattern, type Principal } from './principal.js';

/**
 * Models belong to tenants. Inside Gantry (registry, queues, store, workers, metrics) a model is known by its
 * qualified name: the bare name for the default tenant (so models from before tenants keep their names), and
 * `<tenant>~<name>` for any other ('~' is in no model name and no tenant id, and is safe in URLs, Redis keys,
 * queue names and file names). Callers always see and send bare names; only an admin may address another
 * tenant's model, by its qualified name.
 */
export const tenantSeparator = '~';

export function qualifiedModelName(tenant: string, name: string): string {
  return tenant === defaultTenant ? name : `${tenant}${tenantSeparator}${name}`;
}

/** Splits a qualified name into its tenant and bare name. */
export function splitQualifiedName(qualified: string): { tenant: string; name: string } {
  const at = qualified.indexOf(tenantSeparator);
  if (at < 0) return { tenant: defaultTenant, name: qualified };
  return { tenant: qualified.slice(0, at), name: qualified.slice(at + 1) };
}

/** True for a bare model name or a qualified `<tenant>~<name>`. */
export function isValidQualifiedModelName(qualified: string): boolean {
  const at = qualified.indexOf(tenantSeparator);
  if (at < 0) return isValidModelName(qualified);
  return tenantIdPattern.test(qualified.slice(0, at)) && qualified.slice(0, at) !== defaultTenant && isValidModelName(qualified.slice(at + 1));
}

/**
 * The qualified name a caller's model name (from a path or body) refers to, or a 404 naming the model as the
 * caller wrote it: another tenant's model, and a model outside the key's allow-list, are "not found" (never 403),
 * so callers learn nothing about models that are not theirs. Bad names get the usual 400.
 */
export function resolveModelName(principal: Principal, nameAsWritten: string): string {
  if (nameAsWritten.includes(tenantSeparator)) {
    if (!isValidQualifiedModelName(nameAsWritten)) throw errors.invalidModelName(nameAsWritten);
    if (!isAdmin(principal)) throw errors.modelNotFound(nameAsWritten);
    return nameAsWritten;
  }
  if (!isValidModelName(nameAsWritten)) throw errors.invalidModelName(nameAsWritten);
  if (principal.models !== undefined && !principal.models.has(nameAsWritten)) throw errors.modelNotFound(nameAsWritten);
  return qualifiedModelName(principal.tenant, nameAsWritten);
}

/** The name to show a caller for a qualified name: bare within its own tenant, qualified for an admin looking elsewhere. */
export function displayModelName(principal: Principal, qualified: string): string {
  const { tenant, name } = splitQualifiedName(qualified);
  return tenant === principal.tenant ? name : qualified;
}
