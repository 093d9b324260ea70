import type { IncomingHttpHeaders } from 'node:http';

/**
 * The key a request presents: `Authorization: Bearer <key>`, else `x-api-key: <key>`. Undefined when there is
 * none, or when what is there is not one key (two x-api-key headers, another Authorization scheme): such a
 * request is refused like one without a key.
 */
export function presentedKey(headers: IncomingHttpHeaders): string | undefined {
  const authorization = headers.authorization;
  if (authorization !== undefined) {
    const match = /^Bearer[ \t]+([^\s]+)[ \t]*$/i.exec(authorization);
    return match === null ? undefined : match[1];
  }
  const apiKey = headers['x-api-key'];
  if (typeof apiKey !== 'string') return undefined;
  const trimmed = apiKey.trim();
  return trimmed.length === 0 ? undefined : trimmed;
}
